"""Replacement explanations from the single-session GET; ignoreChanges on create-only fields."""

from __future__ import annotations

from typing import Any

from planner_fixtures import desired, hub_report, project, remote_for, spec

from reconciler.model import FieldChange
from reconciler.planner import plan

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


def replace_action(new: Any, det: dict[str, Any] | None) -> Any:
    details = {"s1": det} if det is not None else {}
    [action] = plan(project(), [new], [remote_for(OLD, "s1")], details=details).actions
    assert action.kind == "replace"
    return action


def replace_changes(new: Any, det: dict[str, Any] | None) -> tuple[FieldChange, ...]:
    return replace_action(new, det).changes  # type: ignore[no-any-return]


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


def test_without_detail_says_why_no_field_is_named() -> None:
    new = desired("alpha", task="Other")
    action = replace_action(new, None)
    assert action.changes == ()
    assert action.reason == (
        "create-only fields changed: the session's details could not be read, "
        "so no field can be named"
    )
    assert "fingerprint" not in action.reason


def test_hidden_field_difference_says_what_was_compared_and_why_no_more() -> None:
    # savedSkillIds is not in the GET; every reported field matches, and the session
    # records no declaration (detail() has lineage without `declared`).
    new = desired(
        "alpha",
        repo=OLD.spec["repo"],
        env=OLD.spec["env"],
        metadata={"team": "platform"},
        savedSkillIds=["skill_9"],
    )
    action = replace_action(new, detail())
    assert action.changes == ()
    assert "compared with the hub's report of task, workflowMode, repo" in action.reason
    assert "no reported field differs" in action.reason
    assert "made before the record existed" in action.reason
    assert "savedSkillIds" in action.reason and "env values" in action.reason


def test_loop_declared_against_a_standard_session_names_the_mode() -> None:
    # loop is not in the GET, but declaring it makes the mode loop, which is reported.
    new = desired(
        "alpha",
        repo=OLD.spec["repo"],
        env=OLD.spec["env"],
        metadata={"team": "platform"},
        loop={"goal": "x"},
    )
    assert replace_changes(new, detail()) == (
        FieldChange("workflowMode", before="standard", after="loop"),
    )


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
    """The GET of a session created from ``old`` by this version: what the hub reports
    of its create body (env values resolved), the record in its metadata."""
    [create] = plan(project(), [old], []).actions
    assert create.body is not None
    return {"sessionId": "s1", "status": "active", **hub_report(create.body)}


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
        FieldChange("savedSkillIds[1]", before=None, after="skill_2"),
        FieldChange("env.GITHUB_TOKEN", sensitive=True),
    )
    [action] = plan(
        project(), [new], [remote_for(LOOPING, "s1")], details={"s1": recorded_detail(LOOPING)}
    ).actions
    assert action.reason == (
        "create-only fields changed: loop.maxIterations, savedSkillIds[1], env.GITHUB_TOKEN"
    )


def test_recorded_form_names_a_removed_env_default_not_a_default_left_out() -> None:
    new = desired(
        "alpha",
        loop={"goal": "Inbox zero", "maxIterations": 5},
        env={"GITHUB_TOKEN": "${env:RELEASE_GITHUB_TOKEN}", "CHANNEL": "${env:CHANNEL}"},
        savedSkillIds=["skill_1"],
    )
    # Leaving out workflowMode: loop next to loop settings means the same (loop).
    assert changes_from_record(new) == (FieldChange("env.CHANNEL", sensitive=True),)


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


def test_a_literal_moved_to_a_reference_is_replaced_whatever_the_variable_holds() -> None:
    # The record holds no literal; comparing the variable's value would make every later
    # plan depend on the secret (docs/concepts/secrets.md): the move replaces, once.
    old = desired("alpha", env={"TOKEN": "canary-literal-4417"})
    new = desired("alpha", env={"TOKEN": "${env:API_TOKEN}"})
    [action] = plan(
        project(), [new], [remote_for(old, "s1")], details={"s1": recorded_detail(old)}
    ).actions
    assert action.kind == "replace"
    assert action.changes == (FieldChange("env.TOKEN", sensitive=True),)
    assert "canary-literal" not in repr(action)


# A field too large for the record (``unrecorded``): the hash still says it changed.
BIG_ENV = {f"K{i:03}": f"${{env:SOME_RATHER_LONG_VARIABLE_NAME_{i:03}}}" for i in range(400)}


def test_a_change_in_a_field_too_large_for_the_record_is_a_replacement() -> None:
    old = desired("alpha", env={"L": "canary-big-1", **BIG_ENV})
    detail = recorded_detail(old)
    assert "env" in detail["metadata"]["reconciler"]["unrecorded"]
    for env in (
        {"L": "canary-big-2", **BIG_ENV},  # a literal changed
        {"L": "canary-big-1", **BIG_ENV, "K001": "${env:OTHER}"},  # a variable renamed
    ):
        new = desired("alpha", env=env)
        [action] = plan(project(), [new], [remote_for(old, "s1")], details={"s1": detail}).actions
        assert action.kind == "replace"
        assert "env" in action.reason and "canary-big" not in action.reason + repr(action.changes)
    # Unchanged (the same values in another order): no replacement.
    same = desired("alpha", env={**BIG_ENV, "L": "canary-big-1"})
    assert plan(project(), [same], [remote_for(old, "s1")], details={"s1": detail}).actions == ()


def test_a_change_in_skills_too_many_for_the_record_is_a_replacement() -> None:
    many = [f"skill_{i:04d}_with_a_rather_long_identifier" for i in range(450)]
    old = desired("alpha", savedSkillIds=many)
    detail = recorded_detail(old)
    assert "savedSkillIds" in detail["metadata"]["reconciler"]["unrecorded"]
    new = desired("alpha", savedSkillIds=[*many[:-1], "skill_other"])
    [action] = plan(project(), [new], [remote_for(old, "s1")], details={"s1": detail}).actions
    assert action.kind == "replace"
    assert "savedSkillIds" in action.reason


def test_a_change_beside_a_literal_in_a_field_too_large_names_both_suspects() -> None:
    # The record holds the literal as null and not the skills at all: the re-hash says
    # one of them changed, not which (it named only the literal, which had not).
    many = [f"skill_{i:04d}_with_a_rather_long_identifier" for i in range(450)]
    old = desired("alpha", env={"SMALLLIT": "canary-lit"}, savedSkillIds=many)
    detail = recorded_detail(old)
    assert detail["metadata"]["reconciler"]["unrecorded"] == ["savedSkillIds"]
    new = desired("alpha", env={"SMALLLIT": "canary-lit"}, savedSkillIds=[*many[:-1], "other"])
    [action] = plan(project(), [new], [remote_for(old, "s1")], details={"s1": detail}).actions
    assert action.kind == "replace"
    assert action.reason.endswith(
        "shows the values of env.SMALLLIT, savedSkillIds, so the change is in one of them"
    )
    # Neither changed (the skills reordered): nothing to do.
    same = desired("alpha", env={"SMALLLIT": "canary-lit"}, savedSkillIds=many[::-1])
    assert plan(project(), [same], [remote_for(old, "s1")], details={"s1": detail}).actions == ()


def test_a_large_field_with_a_plain_reference_never_reads_as_the_change() -> None:
    # task over the record's budget, holding a plainEnv reference: the hub holds it
    # resolved. It read as changed beside the real change (env.MODE), hiding it.
    long_task = "On ${env:BR}. " + "Review the code. " * 1100
    resolved_task = long_task.replace("${env:BR}", "main")
    old = desired("alpha", task=long_task, resolved=spec(task=resolved_task), env={"MODE": "one"})
    detail = recorded_detail(old)
    assert detail["metadata"]["reconciler"]["unrecorded"] == ["task"]
    detail["task"] = resolved_task  # as the hub holds it
    new_spec = spec(task=long_task, env={"MODE": "two"})
    new = desired(
        "alpha",
        task=long_task,
        resolved={**new_spec, "task": resolved_task},
        env={"MODE": "two"},
    )
    [action] = plan(project(), [new], [remote_for(old, "s1")], details={"s1": detail}).actions
    assert action.kind == "replace"
    assert action.changes == (FieldChange("env.MODE", sensitive=True),)
