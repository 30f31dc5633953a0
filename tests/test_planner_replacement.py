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


# Sessions that record their declared form (metadata.reconciler.declared): nested paths.


def recorded_detail(old: Any) -> dict[str, Any]:
    """The GET of a session created from ``old`` by this version (its create body)."""
    [create] = plan(project(), [old], []).actions
    assert create.body is not None
    return detail(metadata=create.body["metadata"])


LOOPING = desired(
    "alpha",
    workflowMode="loop",
    loop={"goal": "Inbox zero", "maxIterations": 5},
    env={"GITHUB_TOKEN": "${env:RELEASE_GITHUB_TOKEN}", "CHANNEL": "${env:CHANNEL:-stable}"},
    savedSkillIds=["skill_1"],
)


def changes_from_record(new: Any, old: Any = LOOPING) -> tuple[FieldChange, ...]:
    details = {"s1": recorded_detail(old)}
    [action] = plan(project(), [new], [remote_for(old, "s1")], details=details).actions
    assert action.kind == "replace"
    return action.changes


def test_recorded_form_names_nested_paths_and_never_env_values() -> None:
    new = desired(
        "alpha",
        workflowMode="loop",
        loop={"goal": "Inbox zero", "maxIterations": 9},
        env={"GITHUB_TOKEN": "${env:GITHUB_TOKEN}", "CHANNEL": "${env:CHANNEL:-stable}"},
        savedSkillIds=["skill_1", "skill_2"],
    )
    changes = changes_from_record(new)
    assert changes == (
        FieldChange("loop.maxIterations", before=5, after=9),
        FieldChange("env.GITHUB_TOKEN", sensitive=True),
        FieldChange("savedSkillIds[1]", before=None, after="skill_2"),
    )
    [action] = plan(
        project(), [new], [remote_for(LOOPING, "s1")], details={"s1": recorded_detail(LOOPING)}
    ).actions
    assert action.reason == (
        "create-only fields changed: loop.maxIterations, env.GITHUB_TOKEN, savedSkillIds[1]"
    )


def test_recorded_form_names_a_field_left_out_and_a_removed_env_default() -> None:
    new = desired(
        "alpha",
        loop={"goal": "Inbox zero", "maxIterations": 5},
        env={"GITHUB_TOKEN": "${env:RELEASE_GITHUB_TOKEN}", "CHANNEL": "${env:CHANNEL}"},
        savedSkillIds=["skill_1"],
    )
    assert changes_from_record(new) == (
        FieldChange("workflowMode", before="loop", after=None),
        FieldChange("env.CHANNEL", sensitive=True),
    )


def test_a_literal_env_value_is_never_recorded_and_named_by_key_only() -> None:
    old = desired("alpha", env={"TOKEN": "literal-secret-1"})
    body = recorded_detail(old)["metadata"]["reconciler"]
    assert body["declared"]["env"] == {"TOKEN": None}
    assert "literal-secret" not in repr(body)
    new = desired("alpha", env={"TOKEN": "literal-secret-2"})
    changes = changes_from_record(new, old)
    assert changes == (FieldChange("env.TOKEN", sensitive=True),)
    assert "literal-secret" not in repr(changes)


def test_a_session_without_a_record_falls_back_to_the_hubs_report() -> None:
    # detail() has lineage without `declared` (made before the record existed).
    new = desired(
        "alpha",
        task="Other",
        repo=OLD.spec["repo"],
        env=OLD.spec["env"],
        metadata={"team": "platform"},
    )
    assert replace_changes(new, detail()) == (
        FieldChange("task", before="Triage issues", after="Other"),
    )
