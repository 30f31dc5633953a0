"""Readable plain-text tables for command output (no colours, no terminal needed).

    render_table(rows, [("SESSION", "sessionId"), ("OWNER", "owner.name"), ("N", len_of)])
    render_fields([("status", "active"), ("tags", ["a", "b"])])

A column reads a (dotted) key of a row or calls a function on it. Cells: ``None`` and
missing values show as ``-``, lists comma-joined, objects as compact JSON, control
characters escaped, long values cut with ``...`` so one row stays one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from reconciler.render.values import escape_controls

__all__ = ["Column", "cell", "epoch_ms", "lookup", "render_fields", "render_table"]

Column = tuple[str, "str | Callable[[Mapping[str, Any]], Any]"]
MISSING = "-"


def lookup(row: Mapping[str, Any], path: str) -> Any:
    """``row["a"]["b"]`` for ``"a.b"``; None when any step is missing."""
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def cell(value: Any, *, width: int | None = 60) -> str:
    """One value as a single line of text."""
    if value is None or value == "":
        text = MISSING
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, list | tuple):
        text = ", ".join(cell(v, width=None) for v in value) or MISSING
    elif isinstance(value, Mapping):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    # Newlines and tabs would break the row; other controls are shown, never obeyed.
    text = escape_controls(" ".join(text.split()))
    if width is not None and len(text) > width:
        text = text[: max(1, width - 3)] + "..."
    return text


def epoch_ms(value: Any) -> Any:
    """Epoch milliseconds (loop and replay timestamps) as ISO-8601; others unchanged."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            moment = datetime.fromtimestamp(value / 1000, tz=UTC)
        except (ValueError, OverflowError, OSError):  # NaN, or no date a calendar holds
            return value  # shown as the hub sent it
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    return value


def render_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    width: int | None = 60,
    empty: str = "(none)",
) -> str:
    """Left-aligned columns separated by two spaces; ``empty`` when there are no rows."""
    if not rows:
        return empty
    grid = [[header for header, _ in columns]]
    for row in rows:
        grid.append(
            [
                cell(get(row) if callable(get) else lookup(row, get), width=width)
                for _, get in columns
            ]
        )
    widths = [max(len(line[i]) for line in grid) for i in range(len(columns))]
    return "\n".join(
        "  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip()
        for line in grid
    )


def render_fields(pairs: Sequence[tuple[str, Any]], *, width: int | None = 100) -> str:
    """``name  value`` lines, names aligned."""
    if not pairs:
        return ""
    pad = max(len(name) for name, _ in pairs)
    return "\n".join(
        f"{name.ljust(pad)}  {cell(value, width=width)}".rstrip() for name, value in pairs
    )
