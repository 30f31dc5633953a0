"""The field registry (reconciler.fields) and what derives from it: the hub keeps any
field it has no column for, the Project's policy defaults, the schemas."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import filelock
import pytest

from reconciler import fields
from reconciler.cli.main import run
from reconciler.export.spec import without_defaults
from reconciler.fields import FIELD_ORDER, FIELDS, IGNORABLE_CHANGES, MUTABLE_FIELDS, SpecField
from reconciler.hub import serialize, validation
from reconciler.hub.errors import HubError
from reconciler.hub.records import COLUMN_FIELDS
from reconciler.hub.schema import SCHEMA_VERSION
from reconciler.hub.storage import HubStore
from reconciler.manifest.schemagen import build_manifest_schema, build_project_schema
from reconciler.model import Policy
from reconciler.runlock import lock_path

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


def _schema_1(path: Path) -> None:
    """A hub database as schema 1 wrote it (no ``extra_json``)."""
    HubStore(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE sessions DROP COLUMN extra_json")
        conn.execute("PRAGMA user_version = 1")
    conn.close()


def test_a_schema_1_database_gains_the_extra_column(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    _schema_1(path)
    store = HubStore(str(path))
    try:
        made = store.create_session("org", "u", validation.parse_create({"task": "t"}))
        assert store.get_session("org", made.session_id).extra == {}
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_two_openers_of_a_schema_1_database_migrate_it_once(tmp_path: Path) -> None:
    # Reading commands take no lock, so a `plan` may open an old file while `hub serve`
    # or an apply migrates it. Here the other opener has added the column but not yet
    # committed when this one looks: this one must wait and see it, not add it again
    # (that failed as "duplicate column name", reported as a corrupt database).
    path = tmp_path / "hub.sqlite3"
    _schema_1(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("ALTER TABLE sessions ADD COLUMN extra_json TEXT NOT NULL DEFAULT '{}'")
    opened: list[HubStore | BaseException] = []

    def open_store() -> None:
        try:
            opened.append(HubStore(str(path)))
        except BaseException as exc:
            opened.append(exc)

    thread = threading.Thread(target=open_store)
    thread.start()
    time.sleep(0.5)  # it reads the columns (or waits to) while the other holds them
    other.execute("PRAGMA user_version = 2")
    other.execute("COMMIT")
    other.close()
    thread.join(timeout=30)
    [store] = opened
    assert isinstance(store, HubStore), store
    try:
        made = store.create_session("org", "u", validation.parse_create({"task": "t"}))
        assert store.get_session("org", made.session_id).extra == {}
    finally:
        store.close()


def test_an_apply_waiting_for_the_lock_has_not_migrated_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The run lock comes before the embedded database is opened, so before its
    # migration too: an apply that gives up waiting leaves an old file as it was.
    path = tmp_path / "hub.sqlite3"
    _schema_1(path)
    manifests = tmp_path / "all.yaml"
    manifests.write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: p\n---\n"
        "apiVersion: reconciler/v1\nkind: Session\nname: s\nspec: {task: t}\n",
        encoding="utf-8",
    )
    argv = ["--api-url", "local", "--local-db", str(path), "apply", str(manifests), "--yes"]
    with filelock.FileLock(lock_path(str(path)), thread_local=False):
        code = run([*argv, "--lock-timeout", "0.2"])
    assert code == 1, capsys.readouterr().err
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        columns = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
    conn.close()
    assert "extra_json" not in columns
    assert run(argv) == 0, capsys.readouterr().err  # then it migrates, and applies


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
    # What ignoreChanges may name: the registry's mutable fields, then `status`.
    assert ignorable["items"]["enum"] == list(IGNORABLE_CHANGES) == [*MUTABLE_FIELDS, "status"]


def test_export_writes_empty_values_from_the_registry() -> None:
    out, inherited = without_defaults(
        {"task": "t"}, {"tags": ["a"], "env": {"A": "x"}, "label": "L"}
    )
    assert out == {"task": "t", "tags": [], "env": {}}
    assert inherited == ("label",)
