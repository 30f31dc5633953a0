"""jsonschema-rs, the fast yes/no, never accepts a document that jsonschema rejects.

A document the fast check accepts is never shown to jsonschema, so a disagreement that
way would let an invalid manifest through without a message.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from reconciler.manifest.validation import fast_check, load_schema
from tests.test_validate import INVALID

VALID_SESSION: dict[str, Any] = {
    "apiVersion": "reconciler/v1",
    "kind": "Session",
    "name": "nightly-triage",
    "spec": {
        "task": "Triage",
        "label": "Nightly",
        "agent": "claude-code",
        "visibility": "org",
        "workflowMode": "loop",
        "loop": {"goal": "g", "maxIterations": 20, "autoContinue": True, "allowDetached": False},
        "tags": ["a", "b"],
        "savedSkillIds": ["x"],
        "skillBucketIds": [],
        "skills": [{"skillId": "s", "repo": "acme/skills", "name": "n", "url": "u"}],
        "repo": {"fullName": "acme/api", "branch": "main"},
        "repos": [{"fullName": "acme/web"}],
        "workspaceId": "ws_1",
        "env": {"TOKEN": "${env:TOKEN}"},
        "metadata": {"team": "p", "n": [1, {"x": None}]},
        "state": "active",
    },
    "lifecycle": {"preventDestroy": True, "ignoreChanges": ["label", "tags"]},
}
VALID_PROJECT: dict[str, Any] = {
    "apiVersion": "reconciler/v1",
    "kind": "Project",
    "name": "team",
    "orgId": "org_1",
    "defaults": {"visibility": "${env:VIS}", "tags": ["t"]},
    "policy": {"prune": "keep", "maxDestroyPercent": 12.5, "protectLive": False},
}

_JSONSCHEMA = Draft202012Validator(load_schema("manifest"))

# Values that probe type edges: bools vs ints, 1.0 vs 1, nesting, odd strings.
_LEAVES = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        1,
        -1,
        1.0,
        0.5,
        101,
        "",
        "x",
        "org",
        "loop",
        "Bad_Name",
        "${env:X}",
        "${env:1}",
        "reconciler",
        "a-b",
        [],
        {},
        ["a", "a"],
        [1, True],
        {"k": "v"},
    ]
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], op: str, leaf: Any) -> Any:
    doc = copy.deepcopy(doc)
    if not path:
        return leaf
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if op == "replace":
        parent[last] = leaf
    elif op == "delete":
        del parent[last]
    elif op == "add" and isinstance(parent[last], dict):
        parent[last]["extraField"] = leaf
    elif op == "add" and isinstance(parent[last], list):
        parent[last].append(leaf)
    return doc


@st.composite
def _documents(draw: st.DrawFn) -> Any:
    doc = draw(st.sampled_from([VALID_SESSION, VALID_PROJECT]))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        doc = _mutate(doc, path, op, draw(_LEAVES))
    return doc


@settings(max_examples=400, deadline=None)
@given(_documents())
def test_the_fast_check_agrees_with_jsonschema(doc: Any) -> None:
    assert fast_check().is_valid(doc) == _JSONSCHEMA.is_valid(doc)


def test_valid_documents_pass_the_fast_path() -> None:
    assert fast_check().is_valid(VALID_SESSION)
    assert fast_check().is_valid(VALID_PROJECT)


@pytest.mark.parametrize("content", [c[1] for c in INVALID], ids=[c[0] for c in INVALID])
def test_fast_check_rejects_every_schema_invalid_case(content: str) -> None:
    import yaml

    try:
        docs = list(yaml.safe_load_all(content))
    except (yaml.YAMLError, ValueError, KeyError, OverflowError):
        # A syntax error, an explicit tag on text it cannot take (`!!int yes`, which
        # PyYAML raises as a bare error), or a base-60 float past a float's range never
        # reaches the schema.
        return
    for doc in docs:
        try:
            json.dumps(doc)
        except (TypeError, ValueError):
            continue  # bytes, dates, cycles: our reader never builds them (test_validate)
        if not _JSONSCHEMA.is_valid(doc):
            assert not fast_check().is_valid(doc)
