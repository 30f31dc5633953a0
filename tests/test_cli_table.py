"""The plain-text table helper shared by commands."""

from __future__ import annotations

from reconciler.cli.table import cell, epoch_ms, lookup, render_fields, render_table


def test_render_table_aligns_columns() -> None:
    rows = [{"id": "a", "owner": {"name": "Jane"}, "tags": ["x", "y"]}, {"id": "bbbb"}]
    out = render_table(rows, [("ID", "id"), ("OWNER", "owner.name"), ("TAGS", "tags")])
    assert out.splitlines() == [
        "ID    OWNER  TAGS",
        "a     Jane   x, y",
        "bbbb  -      -",
    ]


def test_render_table_empty_and_callables() -> None:
    assert render_table([], [("A", "a")], empty="(none here)") == "(none here)"
    assert render_table([{"a": 2}], [("DOUBLE", lambda r: r["a"] * 2)]) == "DOUBLE\n4"


def test_cells_are_one_line_and_bounded() -> None:
    assert cell(None) == "-"
    assert cell("") == "-"
    assert cell(True) == "yes"
    assert cell({"b": 1, "a": [1]}) == '{"a":[1],"b":1}'
    assert cell("two\nlines\there") == "two lines here"
    assert cell("x" * 100, width=10) == "xxxxxxx..."
    assert cell([]) == "-"


def test_cells_escape_control_and_bidi_characters() -> None:
    assert cell("Deploy \u202egnp.exe\u202c") == "Deploy \\u202egnp.exe\\u202c"
    assert cell(["a\u2066b\u2069", "\x1b[31mred"]) == "a\\u2066b\\u2069, \\u001b[31mred"
    assert cell("rtl\u200f\u061c\u200e") == "rtl\\u200f\\u061c\\u200e"
    out = render_table([{"label": "x\u202ey"}], [("LABEL", "label")])
    assert out.splitlines()[1] == "x\\u202ey"


def test_fields() -> None:
    assert render_fields([("a", 1), ("long", None)]) == "a     1\nlong  -"
    assert render_fields([]) == ""


def test_lookup_and_epoch() -> None:
    assert lookup({"a": {"b": 1}}, "a.b") == 1
    assert lookup({"a": "s"}, "a.b") is None
    assert epoch_ms(0) == "1970-01-01T00:00:00Z"
    assert epoch_ms("2025-01-01") == "2025-01-01"
    # Microseconds where milliseconds belong, NaN, or far out of range: shown as sent,
    # where each crashed `sessions loop` and `sessions replay`.
    for odd in (1796595778164000, float("nan"), -1e15, 1e20, float("inf")):
        shown = epoch_ms(odd)
        assert shown is odd
    assert epoch_ms(True) is True
