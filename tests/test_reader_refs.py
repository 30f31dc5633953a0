"""The reader's record of where each ``${env:`` string is agrees with a walk of the value.

``RawDocument.reference_strings`` answers from what the reader collected while it built
the value (no second walk) whenever that record is complete; the secrecy checks, the
positions kept after ``release`` and the model builder rely on it. These tests hold it
to :func:`reconciler.manifest.envref.ref_strings` over arbitrary documents, written in
block and flow style, and check that documents where an alias or a merge key can repeat
or move a value fall back to the walk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import ManifestError
from reconciler.manifest import yamlread
from reconciler.manifest.budget import ExpansionBudget
from reconciler.manifest.envref import ref_strings
from reconciler.manifest.yamlread import RawDocument, iter_documents

TEXTS = st.sampled_from(["plain", "${env:TOKEN}", "a ${env:A} b ${env:B:-x}", "${env:", "42"])
KEYS = st.sampled_from(["spec", "env", "task", "tags", "a", "b", "c"])
VALUES = st.recursive(
    TEXTS | st.integers(0, 9) | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=25,
)


def _read(path: Path, text: str) -> list[RawDocument]:
    path.write_text(text, encoding="utf-8")
    errors: list[ManifestError] = []
    docs = list(iter_documents(str(path), "m.yaml", errors, ExpansionBudget()))
    assert errors == []
    return docs


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.dictionaries(KEYS, VALUES, min_size=1, max_size=5), flow=st.booleans())
def test_reader_paths_equal_a_walk(tmp_path: Path, value: dict[str, Any], flow: bool) -> None:
    text = yaml.safe_dump(value, default_flow_style=flow, sort_keys=False)
    (doc,) = _read(tmp_path / "m.yaml", text)
    assert doc.value == value
    assert doc.refs_complete
    walked = list(ref_strings(doc.value))
    assert list(doc.reference_strings()) == walked
    # And each recorded position is the string's own: the node at its path.
    for ref, (path, _) in zip(doc.refs, walked, strict=True):
        assert doc.position(path) == (ref.line, ref.column)
    doc.release()
    for ref in doc.refs:
        assert doc.position(ref.path) == (ref.line, ref.column)


def test_paths_through_lists_and_flow_on_one_line(tmp_path: Path) -> None:
    text = "spec:\n  tags: [a, '${env:X}', [b, '${env:Y}']]\n  env: {K: '${env:Z}'}\n"
    (doc,) = _read(tmp_path / "m.yaml", text)
    assert [ref.path for ref in doc.refs] == [
        ("spec", "tags", 1),
        ("spec", "tags", 2, 1),
        ("spec", "env", "K"),
    ]
    assert [(ref.line, ref.column) for ref in doc.refs] == [(2, 13), (2, 29), (3, 12)]


def test_an_alias_or_a_merge_key_falls_back_to_the_walk(tmp_path: Path) -> None:
    aliased = "a: &x '${env:X}'\nb: *x\n"
    (doc,) = _read(tmp_path / "a.yaml", aliased)
    assert not doc.refs_complete
    assert len(doc.refs) == 1  # one node, met twice
    assert list(doc.reference_strings()) == [(("a",), "${env:X}"), (("b",), "${env:X}")]
    merged = "spec:\n  <<: {task: '${env:T}'}\n  label: x\n"
    (doc,) = _read(tmp_path / "m.yaml", merged)
    assert not doc.refs_complete
    assert list(doc.reference_strings()) == [(("spec", "task"), "${env:T}")]


SPEC_KEYS = st.sampled_from(["task", "label", "agent", "visibility", "loop", "metadata", "env"])
TOP_KEYS = st.sampled_from(["name", "spec", "kind", "previously", "plainEnv"])


def _walked_positions(doc: RawDocument) -> dict[tuple[str | int, ...], tuple[int, int]]:
    """KEPT_PATHS' positions found by the general walk (as before the one-pass read)."""
    assert doc.node is not None
    found: dict[tuple[str | int, ...], tuple[int, int]] = {}
    mappings: dict[int, Any] = {}
    for path in yamlread.KEPT_PATHS:
        node = yamlread._exactly_at(doc.node, path, mappings)
        if node is not None:
            found[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    return found


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    top=st.dictionaries(
        TOP_KEYS, VALUES | st.dictionaries(SPEC_KEYS, VALUES, max_size=6), max_size=5
    ),
    flow=st.booleans(),
)
def test_kept_positions_in_one_pass_equal_the_walk(
    tmp_path: Path, top: dict[str, Any], flow: bool
) -> None:
    text = yaml.safe_dump(top or {"name": "x"}, default_flow_style=flow, sort_keys=False)
    (doc,) = _read(tmp_path / "m.yaml", text)
    assert doc.refs_complete
    expected = _walked_positions(doc)
    kept: dict[tuple[str | int, ...], tuple[int, int]] = {}
    yamlread._kept_positions(doc.node, kept)  # type: ignore[arg-type]
    assert kept == expected


@pytest.mark.parametrize(
    "text",
    [
        "name: a\nname: b\nspec: {task: t, task: u}\n",  # the first of a key written twice
        "[name, spec]\n",  # not a mapping
        "name: a\nspec: [task, label]\n",  # a spec that is no mapping
        "? [a, b]\n: c\nname: n\nspec:\n  ? {x: 1}\n  : 2\n  label: L\n",  # keys not scalars
        "spec: {}\nname:\n",
    ],
)
def test_kept_positions_in_one_pass_on_odd_documents(tmp_path: Path, text: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    docs = list(iter_documents(str(path), "m.yaml", [], ExpansionBudget()))
    (doc,) = docs
    expected = _walked_positions(doc)
    kept: dict[tuple[str | int, ...], tuple[int, int]] = {}
    yamlread._kept_positions(doc.node, kept)  # type: ignore[arg-type]
    assert kept == expected and (not text.startswith("name: a\nname") or kept[("name",)] == (1, 7))


def test_kept_positions_share_their_paths_across_documents(tmp_path: Path) -> None:
    # A key tuple made per document and path cost 5 MiB of a 10,000-session plan's peak:
    # every document's positions use KEPT_PATHS' own tuples as keys.
    text = "---\n".join(f"name: s{i}\nspec: {{task: t, label: L}}\n" for i in range(3))
    docs = _read(tmp_path / "m.yaml", text)
    shared = {id(path) for path in yamlread.KEPT_PATHS}
    for doc in docs:
        doc.release()
        kept = [key for key in doc.positions if key in yamlread.KEPT_PATHS]
        assert sorted(kept) == [("name",), ("spec",), ("spec", "label"), ("spec", "task")]
        assert all(id(key) in shared for key in kept)
