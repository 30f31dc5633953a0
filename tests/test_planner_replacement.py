"""Replacement explanations from the single-session GET; ignoreChanges on create-only fields."""

from __future__ import annotations

from typing import Any

from planner_fixtures import desired, project, remote_for

from reconciler.model import FieldChange
from reconciler.planner import plan
from reconciler.planner.replacement import FINGERPRINT_FIELD

OLD = desired(
    "alpha",
    repo={"fullName": "acme/api", "branch": "main"},
    env={"GITHUB_TOKEN": "${env:GITHUB_TOKEN}", "OLD_KEY": "x"},
    metadata={"team": "platform"},
)


def detail(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sessionId": "s1",
        "status": "active",
        "task": "Triage issues",
        "workflowMode": "standard",
        "repo": {
            "fullName": "acme/api",
            "branch": "main",
            "repoId": "r_1",
            "cloneUrl": "https://example.test/acme/api.git",
        },
        "env": {"GITHUB_TOKEN": "hub-secret-value", "OLD_KEY": "x"},
        "metadata": {"team": "platform", "reconciler": {"project": "platform", "hash": "x"}},
    }
    base.update(overrides)
    return base


def replace_changes(new: Any, det: dict[str, Any] | None) -> tuple[FieldChange, ...]:
    details = {"s1": det} if det is not None else {}
    [action] = plan(project(), [new], [remote_for(OLD, "s1")], details=details).actions
    assert action.kind == "replace"
    return action.changes


def test_task_change_is_named() -> None:
    new = desired(
        "alpha",
        task="Triage every issue",
        repo=OLD.spec["repo"],
        env=OLD.spec["env"],
        metadata={"team": "platform"},
    )
    assert replace_changes(new, detail()) == (
        FieldChange("task", before="Triage issues", after="Triage every issue"),
    )


def test_env_keys_only_and_sensitive() -> None:
    new = desired(
        "alpha",
        repo=OLD.spec["repo"],
        env={"GITHUB_TOKEN": "${env:GITHUB_TOKEN}", "NEW_KEY": "${env:NEW}"},
        metadata={"team": "platform"},
    )
    [change] = replace_changes(new, detail())
    assert change == FieldChange("env", added=("NEW_KEY",), removed=("OLD_KEY",), sensitive=True)
    assert "hub-secret-value" not in repr(change)


def test_repo_derived_fields_are_not_differences_but_branch_is() -> None:
    new = desired(
        "alpha",
        repo={"fullName": "acme/api", "branch": "dev"},
        env=OLD.spec["env"],
        metadata={"team": "platform"},
    )
    assert replace_changes(new, detail()) == (
        FieldChange(
            "repo",
            before={"fullName": "acme/api", "branch": "main"},
            after={"fullName": "acme/api", "branch": "dev"},
        ),
    )


def test_metadata_minus_lineage() -> None:
    new = desired("alpha", repo=OLD.spec["repo"], env=OLD.spec["env"], metadata={"team": "infra"})
    assert replace_changes(new, detail()) == (
        FieldChange("metadata", before={"team": "platform"}, after={"team": "infra"}),
    )


def test_without_detail_names_the_fingerprint() -> None:
    new = desired("alpha", task="Other")
    [change] = replace_changes(new, None)
    assert change.field == FINGERPRINT_FIELD
    assert (change.before, change.after) == (OLD.spec_hash, new.spec_hash)


def test_hidden_field_difference_falls_back_to_fingerprint() -> None:
    # loop is not in the GET; every reported field matches.
    new = desired(
        "alpha",
        repo=OLD.spec["repo"],
        env=OLD.spec["env"],
        metadata={"team": "platform"},
        loop={"goal": "x"},
    )
    [change] = replace_changes(new, detail())
    assert change.field == FINGERPRINT_FIELD


def test_ignore_changes_on_a_create_only_field_prevents_the_replace() -> None:
    new = desired(
        "alpha",
        task="Edited task",
        repo=OLD.spec["repo"],
        env=OLD.spec["env"],
        metadata={"team": "platform"},
        ignore=("task",),
    )
    result = plan(project(), [new], [remote_for(OLD, "s1")], details={"s1": detail()})
    assert result.actions == ()


def test_ignore_changes_does_not_hide_other_create_only_fields() -> None:
    new = desired(
        "alpha",
        task="Edited task",
        repo={"fullName": "acme/web"},
        env=OLD.spec["env"],
        metadata={"team": "platform"},
        ignore=("task",),
    )
    [action] = plan(project(), [new], [remote_for(OLD, "s1")], details={"s1": detail()}).actions
    assert action.kind == "replace"
    assert [c.field for c in action.changes] == ["repo"]
