"""The field registry (reconciler.fields) and what derives from it: the hub keeps any
field it has no column for, the Project's policy defaults, the schemas."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reconciler import fields
from reconciler.export.spec import without_defaults
from reconciler.fields import FIELD_ORDER, FIELDS, MUTABLE_FIELDS, SpecField
from reconciler.hub import serialize, validation
from reconciler.hub.errors import HubError
from reconciler.hub.records import COLUMN_FIELDS
from reconciler.hub.schema import SCHEMA_VERSION
from reconciler.hub.storage import HubStore
from reconciler.manifest.schemagen import build_manifest_schema, build_project_schema
from reconciler.model import Policy

PRIORITY = SpecField(
    "priority",
    mutable=True,
    shape="enum",
    compare="enum",
    reported_as="priorityLevel",
    enum=("low", "normal", "high"),
    enum_aliases={"hi": "high"},
    description="A field the hub has no column for.",
)


@pytest.fixture(name="with_priority")
def with_priority_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub as if ``priority`` were declared in the registry (tuples derived from it
    at import are patched where the hub reads them)."""
    monkeypatch.setitem(fields._BY_NAME, "priority", PRIORITY)
    monkeypatch.setattr(validation, "_EXTRA_FIELDS", (PRIORITY,))
    monkeypatch.setattr(validation, "_UPDATABLE", (*validation._UPDATABLE, "priority"))


def test_the_hub_has_a_column_for_every_field_declared_today() -> None:
    assert set(FIELD_ORDER) == COLUMN_FIELDS


def test_the_hub_keeps_a_field_it_has_no_column_for(with_priority: None) -> None:
    store = HubStore(":memory:")
    try:
        made = store.create_session(
            "org", "u", validation.parse_create({"task": "t", "priority": "hi"})
        )
        assert made.extra == {"priority": "high"}  # the alias, long
        item = serialize.session_body(made)
        assert item["priorityLevel"] == "high"  # under the name the hub reports it
        changes = validation.parse_update({"priority": "low"})
        updated = store.update_session("org", made.session_id, changes)
        assert serialize.update_body(updated)["priorityLevel"] == "low"
        [summary], _ = store.list_sessions("org")
        assert serialize.list_item(summary)["priorityLevel"] == "low"
        with pytest.raises(HubError, match="priority must be one of low, normal, high"):
            validation.parse_update({"priority": "urgent"})
    finally:
        store.close()


def test_a_schema_1_database_gains_the_extra_column(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    HubStore(str(path)).close()
    with sqlite3.connect(path) as conn:  # back to what schema 1 wrote
        conn.execute("ALTER TABLE sessions DROP COLUMN extra_json")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    store = HubStore(str(path))
    try:
        made = store.create_session("org", "u", validation.parse_create({"task": "t"}))
        assert store.get_session("org", made.session_id).extra == {}
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_policy_defaults_are_defined_once() -> None:
    default = Policy()
    assert Policy.from_manifest({}) == default
    assert Policy.from_manifest(default.to_manifest()) == default
    assert Policy().to_manifest() == {
        "prune": "archive",
        "maxDestroyPercent": 30,
        "protectLive": True,
    }
    schema = build_project_schema()["properties"]["policy"]["properties"]
    assert {k: v["default"] for k, v in schema.items()} == default.to_manifest()


def test_the_schemas_follow_the_registry() -> None:
    spec = build_manifest_schema()["$defs"]["spec"]["properties"]
    assert [k for k in spec if k != "state"] == list(FIELD_ORDER)
    for declared in FIELDS:
        assert declared.description in str(build_manifest_schema()["$defs"]), declared.name
    ignorable = build_manifest_schema()["$defs"]["lifecycle"]["properties"]["ignoreChanges"]
    assert ignorable["items"]["enum"] == list(MUTABLE_FIELDS)


def test_export_writes_empty_values_from_the_registry() -> None:
    out, inherited = without_defaults(
        {"task": "t"}, {"tags": ["a"], "env": {"A": "x"}, "label": "L"}
    )
    assert out == {"task": "t", "tags": [], "env": {}}
    assert inherited == ("label",)
