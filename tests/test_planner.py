"""Table-driven planner tests: desired + observed -> expected actions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from planner_fixtures import PROJECT, desired, marker, project, remote_for

from reconciler.errors import UsageError
from reconciler.model import (
    MARKER_PREFIX,
    FieldChange,
    Plan,
    Project,
    RemoteSession,
    create_only_hash,
)
from reconciler.planner import fingerprint, needs_detail, plan
from reconciler.planner.applied import applied_tag
from reconciler.planner.body import RECORD_BUDGET_BYTES, RECORD_MAX_DEPTH
from reconciler.planner.scope import Scope, ScopeFlags

A = desired("alpha")
B = desired("beta", task="Review docs", label="Docs")
A_NEW_TASK = desired("alpha", task="Triage every issue")
A_ARCHIVED = desired("alpha", state="archived")


@dataclass
class Case:
    id: str
    desired: list[Any]
    observed: list[RemoteSession]
    expected: list[tuple[str, str, str | None, str]]  # kind, name, session id, reason
    policy: dict[str, Any] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()


CASES = [
    Case("nothing declared, nothing observed", [], [], []),
    Case(
        "create when not on the hub",
        [A],
        [],
        [("create", "alpha", None, "declared, not on the hub")],
    ),
    Case("in sync: no action", [A], [remote_for(A, "s1")], []),
    Case(
        "update: label drifted",
        [A],
        [remote_for(A, "s1", label="Old")],
        [("update", "alpha", "s1", "drift: label")],
    ),
    Case(
        "update: agent vs defaultAgent",
        [A],
        [remote_for(A, "s1", defaultAgent="codex")],
        [("update", "alpha", "s1", "drift: agent")],
    ),
    Case(
        "visibility aliases are normalised: no action",
        [desired("alpha", visibility="org")],
        [remote_for(desired("alpha", visibility="org"), "s1", visibility="organization")],
        [],
    ),
    Case(
        "tags compare as a set: order is not drift",
        [desired("alpha", tags=["a", "b"])],
        [
            remote_for(
                desired("alpha", tags=["a", "b"]),
                "s1",
                tags=[
                    "b",
                    marker("alpha", create_only_hash(desired("alpha", tags=["a", "b"]).spec)),
                    "a",
                ],
            )
        ],
        [],
    ),
    Case(
        "update: tag removed on the hub",
        [A],
        [remote_for(A, "s1", tags=[marker("alpha", A.spec_hash), applied_tag(PROJECT, A)])],
        [("update", "alpha", "s1", "drift: tags")],
    ),
    Case(
        "skills compare as a set of canonical items",
        [desired("alpha", skills=[{"skillId": "x", "repo": "r"}, {"repo": "r", "skillId": "y"}])],
        [
            remote_for(
                desired(
                    "alpha", skills=[{"skillId": "x", "repo": "r"}, {"repo": "r", "skillId": "y"}]
                ),
                "s1",
                skills=[{"skillId": "y", "repo": "r"}, {"repo": "r", "skillId": "x"}],
            )
        ],
        [],
    ),
    Case(
        "update: skill missing",
        [desired("alpha", skills=[{"skillId": "x", "repo": "r"}])],
        [remote_for(desired("alpha", skills=[{"skillId": "x", "repo": "r"}]), "s1", skills=[])],
        [("update", "alpha", "s1", "drift: skills")],
    ),
    Case(
        "a field the spec leaves out is not managed",
        [desired("alpha", label=None, agent=None)],
        [
            remote_for(
                desired("alpha", label=None, agent=None), "s1", label="Hand-set", defaultAgent="x"
            )
        ],
        [],
    ),
    Case(
        "ignoreChanges: drift in an ignored field is left alone",
        [desired("alpha", ignore=("label",))],
        [remote_for(desired("alpha"), "s1", label="Hand-set")],
        [],
    ),
    Case(
        "replace: create-only hash differs",
        [A_NEW_TASK],
        [remote_for(A, "s1")],
        [("replace", "alpha", "s1", "create-only fields changed: the session's details could not")],
    ),
    Case(
        "resume: declared active, remote paused",
        [A],
        [remote_for(A, "s1", status="paused")],
        [("resume", "alpha", "s1", "paused")],
    ),
    Case(
        "update then resume on one paused session",
        [A],
        [remote_for(A, "s1", status="paused", label="Old")],
        [("update", "alpha", "s1", "drift: label"), ("resume", "alpha", "s1", "paused")],
    ),
    Case(
        "ignoreChanges: [status]: a paused session is never resumed",
        [desired("alpha", ignore=("status",))],
        [remote_for(A, "s1", status="paused")],
        [],
    ),
    Case(
        "ignoreChanges: [status] still corrects the fields it does not name",
        [desired("alpha", ignore=("status",))],
        [remote_for(A, "s1", status="paused", label="Old")],
        [("update", "alpha", "s1", "drift: label")],
    ),
    Case(
        "archive: declared state archived",
        [A_ARCHIVED],
        [remote_for(A, "s1")],
        [("archive", "alpha", "s1", "declared state: archived")],
    ),
    Case("state archived and absent: nothing", [A_ARCHIVED], [], []),
    Case(
        "state archived and already archived: nothing",
        [A_ARCHIVED],
        [remote_for(A, "s1", status="archived")],
        [],
    ),
    Case(
        "its last session stopped: created again",
        [A],
        [remote_for(A, "s1", status="stopped")],
        [("create", "alpha", None, "its last session is stopped")],
    ),
    Case(
        "prune archive: no longer declared",
        [],
        [remote_for(A, "s1")],
        [("archive", "alpha", "s1", "no longer declared")],
    ),
    Case(
        "prune delete: no longer declared",
        [],
        [remote_for(A, "s1")],
        [("delete", "alpha", "s1", "no longer declared")],
        policy={"prune": "delete"},
    ),
    Case("prune keep: nothing", [], [remote_for(A, "s1")], [], policy={"prune": "keep"}),
    Case(
        "prune leaves archived-like history alone",
        [],
        [remote_for(A, "s1", status="shutdown")],
        [],
        policy={"prune": "delete"},
    ),
    Case(
        "duplicates: keep the one whose hash matches; the other is an old side",
        [A],
        [
            remote_for(A, "s-old", created_at="2025-01-01T00:00:00Z"),
            remote_for(A, "s-new", hash_="0" * 12, created_at="2025-02-01T00:00:00Z"),
        ],
        [
            (
                "archive",
                "alpha",
                "s-new",
                "superseded by s-old: it no longer matches the declaration",
            )
        ],
    ),
    Case(
        "duplicates: both match, keep the oldest (the rule settlement keeps by)",
        [A],
        [
            remote_for(A, "s-new", created_at="2025-02-01T00:00:00Z"),
            remote_for(A, "s-old", created_at="2025-01-01T00:00:00Z"),
        ],
        [("archive", "alpha", "s-new", "duplicate")],
    ),
    Case(
        "duplicates: made in one millisecond, the smaller id is kept",
        [A],
        [
            remote_for(A, "s-b", created_at="2025-01-01T00:00:00.000Z"),
            remote_for(A, "s-a", created_at="2025-01-01T00:00:00.000Z"),
        ],
        [("archive", "alpha", "s-b", "duplicate")],
    ),
    Case(
        "duplicates: none matches, keep the oldest and replace it",
        [A_NEW_TASK],
        [
            remote_for(A, "s-old", created_at="2025-01-01T00:00:00Z"),
            remote_for(A, "s-new", created_at="2025-02-01T00:00:00Z"),
        ],
        [
            ("replace", "alpha", "s-old", "create-only fields changed"),
            ("archive", "alpha", "s-new", "duplicate"),
        ],
    ),
    Case(
        "other projects' and unmarked sessions are never touched",
        [A],
        [
            remote_for(A, "foreign", project_name="other-team", label="x"),
            RemoteSession.from_api({"sessionId": "plain", "status": "active", "label": "Triage"}),
        ],
        [("create", "alpha", None, "declared, not on the hub")],
    ),
    Case(
        "--target narrows by name",
        [A, B],
        [],
        [("create", "beta", None, "declared, not on the hub")],
        targets=("beta",),
    ),
    Case(
        "--exclude narrows by name, prune included",
        [B],
        [remote_for(A, "s1")],
        [("create", "beta", None, "declared, not on the hub")],
        excludes=("alpha",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_actions_table(case: Case) -> None:
    result = plan(
        project(**case.policy),
        case.desired,
        case.observed,
        scope=Scope(case.targets, case.excludes),
    )
    got = [(a.kind, a.name, a.session_id, a.reason) for a in result.actions]
    assert [g[:3] for g in got] == [e[:3] for e in case.expected]
    for (_, _, _, reason), (_, _, _, want) in zip(got, case.expected, strict=True):
        assert reason.startswith(want), (reason, want)


def test_create_body_carries_marker_lineage_and_refs_unresolved() -> None:
    d = desired(
        "alpha",
        env={"TOKEN": "${env:GITHUB_TOKEN}"},
        metadata={"team": "platform"},
        resolved=None,
    )
    old = remote_for(d, "s-old", status="archived")
    [action] = plan(project(), [d], [old], commit="abc123").actions
    body = action.body
    assert body is not None
    # The marker, and the record of the mutable values applied (planner.applied).
    assert body["tags"] == ["triage", d.marker_tag(PROJECT), applied_tag(PROJECT, d)]
    assert body["env"] == {"TOKEN": "${env:GITHUB_TOKEN}"}
    assert body["metadata"] == {
        "team": "platform",
        "reconciler": {
            "project": PROJECT,
            "name": "alpha",
            "hash": d.spec_hash,
            "source": "sessions/alpha.yaml:1",
            "commit": "abc123",
            "replaces": "s-old",
            # The declared create-only fields, references unresolved (planner.body).
            "declared": {
                "task": "Triage issues",
                "env": {"TOKEN": "${env:GITHUB_TOKEN}"},
                "metadata": {"team": "platform"},
            },
            "envForm": "references",  # env holds bare references only: nothing literal
        },
    }
    # The marker hash covers only the user's metadata, not the lineage.
    assert d.spec_hash == create_only_hash({k: v for k, v in d.spec.items()})
    assert action.marker_tag == f"reconciler:{PROJECT}/alpha@{d.spec_hash}"
    assert action.precondition == ""


def test_create_without_tags_still_carries_marker() -> None:
    d = desired("alpha", tags=None)
    [action] = plan(project(), [d], []).actions
    assert action.body is not None
    assert action.body["tags"] == [d.marker_tag(PROJECT), applied_tag(PROJECT, d)]


def test_update_body_and_changes_field_by_field() -> None:
    d = desired("alpha", tags=["triage", "new"], visibility="collab", label="${env:LABEL}")
    d = desired(
        "alpha",
        tags=["triage", "new"],
        visibility="collab",
        label="${env:LABEL}",
        resolved={**d.spec, "label": "Nightly"},
    )
    r = remote_for(
        d,
        "s1",
        label="Old",
        visibility="private",
        tags=["triage", "gone", marker("alpha", d.spec_hash), marker("x", "1" * 12, "other")],
    )
    [action] = plan(project(), [d], [r]).actions
    assert action.kind == "update"
    assert action.changes == (
        FieldChange("label", before="Old", after="Nightly"),
        FieldChange("visibility", before="private", after="collaborate"),
        FieldChange(
            "tags",
            before=["gone", "triage"],
            after=["new", "triage"],
            added=("new",),
            removed=("gone",),
        ),
    )
    # PATCH as the plan shows it: the (plain) reference resolved, tags replace the whole
    # set and keep our marker and the other project's marker.
    assert action.body == {
        "label": "Nightly",
        "visibility": "collaborate",
        "tags": [
            "triage",
            "new",
            marker("x", "1" * 12, "other"),
            marker("alpha", d.spec_hash),
            applied_tag(PROJECT, d),
        ],
    }
    assert action.precondition == fingerprint(r)


def test_replace_uses_prune_policy_for_the_old_session() -> None:
    r = remote_for(A, "s1")
    [archive_old] = plan(project(), [A_NEW_TASK], [r]).actions
    [delete_old] = plan(project(prune="delete"), [A_NEW_TASK], [r]).actions
    [keep_old] = plan(project(prune="keep"), [A_NEW_TASK], [r]).actions
    assert (archive_old.replace_with, delete_old.replace_with, keep_old.replace_with) == (
        "archive",
        "delete",
        "archive",
    )
    assert archive_old.body is not None
    assert archive_old.body["metadata"]["reconciler"]["replaces"] == "s1"
    assert archive_old.body["task"] == "Triage every issue"


def test_needs_detail_names_only_sessions_whose_hash_differs() -> None:
    observed = [remote_for(A, "s1"), remote_for(B, "s2", hash_="f" * 12)]
    assert needs_detail(project(), [A, B], observed) == ("s2",)
    # An excluded session too: whether it is replaced (counted in left_out) is known
    # only from its details.
    excluded = plan(project(), [A, B], observed, scope=Scope(excludes=("beta",)))
    assert (excluded.actions, excluded.left_out) == ((), 1)


def test_managed_count_counts_live_managed_only() -> None:
    observed = [
        remote_for(A, "s1"),
        remote_for(B, "s2", status="archived"),
        remote_for(A, "s3", project_name="other"),
    ]
    result = plan(project(), [A, B], observed)
    assert isinstance(result, Plan)
    assert result.managed_count == 1


def test_action_order_is_by_name_then_kind() -> None:
    c = desired("charlie")
    result = plan(project(), [c, A_NEW_TASK], [remote_for(A, "s1"), remote_for(B, "s2")])
    assert [(a.name, a.kind) for a in result.actions] == [
        ("alpha", "replace"),
        ("beta", "archive"),
        ("charlie", "create"),
    ]


def test_summary_line() -> None:
    result = plan(
        project(), [A_NEW_TASK, desired("charlie")], [remote_for(A, "s1"), remote_for(B, "s2")]
    )
    assert result.summary() == (
        "Plan: 1 to create, 0 to update, 1 to replace, 0 to resume, 1 to archive, 0 to delete."
    )


def test_live_flag_follows_the_remote() -> None:
    r = remote_for(A, "s1", loopStatus="running")
    [action] = plan(project(), [], [r]).actions
    assert action.live is True


def test_a_second_marker_of_this_project_is_removed_keeping_other_projects_markers() -> None:
    d = desired("alpha", tags=["triage"])
    ours = marker("alpha", d.spec_hash)
    stale = marker("alpha", "aaaaaaaaaaaa")
    theirs = marker("alpha", "bbbbbbbbbbbb", project_name="other-team")
    remote = remote_for(d, "s1", tags=["triage", ours, stale, theirs])
    [action] = plan(project(), [d], [remote]).actions
    assert (action.kind, action.session_id) == ("update", "s1")
    assert action.body == {"tags": ["triage", theirs, ours, applied_tag(PROJECT, d)]}
    [change] = action.changes
    assert change.field == "tags" and change.removed == (stale,) and change.added == ()


def test_a_project_rename_swaps_marker_and_record_keeping_other_projects_tags() -> None:
    """``previously`` on the Project: the old name's marker and last-applied record go,
    this project's come in the same PATCH; another project's marker and record stay."""
    d = desired("alpha", tags=["triage"])
    old_marker = marker("alpha", d.spec_hash, project_name="platform-team")
    old_record = applied_tag("platform-team", d)
    theirs = marker("alpha", "bbbbbbbbbbbb", project_name="other-team")
    their_record = applied_tag("other-team", d)
    assert old_record is not None and their_record is not None
    tags = ["triage", old_marker, old_record, theirs, their_record]
    remote = remote_for(d, "s1", tags=tags)
    renamed = Project(name=PROJECT, org_id="org_test", previously=("platform-team",))
    [action] = plan(renamed, [d], [remote]).actions
    assert (action.kind, action.reason) == ("update", "project renamed from platform-team")
    new_marker = marker("alpha", d.spec_hash)
    assert action.body == {
        "tags": ["triage", theirs, their_record, new_marker, applied_tag(PROJECT, d)]
    }
    [change] = action.changes
    assert (change.added, change.removed) == ((new_marker,), (old_marker,))
    assert change.cause == "manifest"  # the rename is the manifests' doing


def test_after_a_project_rename_the_old_record_still_tells_drift_from_manifest() -> None:
    d = desired("alpha", label="Triage", agent="claude-code")
    applied = desired("alpha", label="Triage", agent="old-agent")  # the manifest changed it
    old_record = applied_tag("platform-team", applied)
    assert old_record is not None
    old_marker = marker("alpha", d.spec_hash, project_name="platform-team")
    # label edited on the hub; agent as last applied (the manifest changed since).
    remote = remote_for(
        d, "s1", label="By hand", defaultAgent="old-agent", tags=["triage", old_marker, old_record]
    )
    renamed = Project(name=PROJECT, org_id="org_test", previously=("platform-team",))
    [action] = plan(renamed, [d], [remote]).actions
    causes = {c.field: c.cause for c in action.changes}
    assert causes == {"label": "drift", "agent": "manifest", "tags": "manifest"}
    assert action.reason == "project renamed from platform-team; manifest: agent; drift: label"


def test_a_second_marker_is_removed_even_when_the_spec_leaves_tags_alone() -> None:
    d = desired("alpha", tags=None)
    ours = marker("alpha", d.spec_hash)
    remote = remote_for(d, "s1", tags=["hand-made", ours, marker("beta", "aaaaaaaaaaaa")])
    [action] = plan(project(), [d], [remote]).actions
    assert action.kind == "update"
    assert action.body == {"tags": ["hand-made", ours, applied_tag(PROJECT, d)]}


def test_the_declared_record_is_bounded_and_keeps_the_small_fields() -> None:
    deep: Any = "x"
    for _ in range(RECORD_MAX_DEPTH + 1):
        deep = {"k": deep}
    d = desired(
        "alpha",
        task="t" * (RECORD_BUDGET_BYTES + 1),
        env={"TOKEN": "${env:GITHUB_TOKEN}"},
        metadata={"deep": deep},
    )
    [action] = plan(project(), [d], []).actions
    assert action.body is not None
    lineage = action.body["metadata"]["reconciler"]
    # Too large (task) or too deep (metadata): listed, read back from the hub instead.
    assert lineage["declared"] == {"env": {"TOKEN": "${env:GITHUB_TOKEN}"}}
    assert lineage["unrecorded"] == ["task", "metadata"]
    assert len(json.dumps(lineage)) < 1024


def test_targets_count_what_they_leave_out() -> None:
    observed = [remote_for(A, "s1", label="Old"), remote_for(B, "s2", hash_="f" * 12)]
    gone = remote_for(desired("gone"), "s3")
    whole = plan(project(), [A, B, desired("charlie")], [*observed, gone])
    assert (len(whole.actions), whole.left_out) == (4, 0)
    targeted = plan(
        project(), [A, B, desired("charlie")], [*observed, gone], scope=Scope(("alpha",))
    )
    assert [a.name for a in targeted.actions] == ["alpha"]
    assert targeted.left_out == 3
    # A name only managed on the hub (no longer declared) can be targeted or excluded.
    excluded = plan(project(), [A], [*observed, gone], scope=Scope(excludes=("gone", "beta")))
    assert ([a.name for a in excluded.actions], excluded.left_out) == (["alpha"], 2)


@pytest.mark.parametrize(
    ("targets", "excludes", "message"),
    [
        (
            ("alpah",),
            (),
            "--target alpah: no session of that name is declared or managed; did you mean alpha?",
        ),
        (
            (),
            ("bet",),
            "--exclude bet: no session of that name is declared or managed; did you mean beta?",
        ),
        (("alpha", "zzz"), (), "--target zzz: no session of that name is declared or managed"),
    ],
)
def test_an_unknown_target_or_exclude_is_a_usage_error(
    targets: tuple[str, ...], excludes: tuple[str, ...], message: str
) -> None:
    with pytest.raises(UsageError) as info:
        plan(project(), [A], [remote_for(B, "s2")], scope=Scope(targets, excludes))
    assert str(info.value) == message
    assert info.value.exit_code == 64


def test_an_old_name_as_target_or_exclude_names_the_session_it_is_renamed_to() -> None:
    """A session being renamed is planned under its declared name: its old one, given
    to --target or --exclude, is a usage error that says which name to give instead."""
    from dataclasses import replace as with_

    renamed = with_(desired("new"), previously=("old",))
    observed = [_renamed(desired("new"), "old", "s-old", "2026-01-01T00:00:01Z")]
    for flag, scope in (("--target", Scope(("old",))), ("--exclude", Scope(excludes=("old",)))):
        with pytest.raises(UsageError) as info:
            plan(project(), [renamed], observed, scope=scope)
        assert str(info.value) == (
            f"{flag} old: renamed to new (whose previously names old), its session is "
            f"planned as new: use {flag} new"
        )
    # --replace, checked against the declarations before the hub is read, says the same.
    with pytest.raises(UsageError) as info:
        ScopeFlags(replace=("old",)).resolve([renamed])
    assert str(info.value) == (
        "--replace old: renamed to new (whose previously names old), its session is "
        "planned as new: use --replace new"
    )
    # Under the declared name, the rename is planned: the session re-tagged.
    [action] = plan(project(), [renamed], observed, scope=Scope(("new",))).actions
    assert (action.kind, action.session_id) == ("update", "s-old")


def test_a_field_too_deep_for_the_record_is_left_out_even_when_everything_is_small() -> None:
    # The record sits three levels under the body: recording a deep field would make
    # the body deeper than the manifest that validate checked.
    deep: Any = "x"
    for _ in range(RECORD_MAX_DEPTH + 5):
        deep = {"k": deep}
    d = desired("alpha", task="t", metadata={"deep": deep})
    [action] = plan(project(), [d], []).actions
    assert action.body is not None
    lineage = action.body["metadata"]["reconciler"]
    assert lineage["declared"] == {"task": "t"} and lineage["unrecorded"] == ["metadata"]


@pytest.mark.parametrize(("prune", "kind"), [("delete", "delete"), ("archive", "archive")])
def test_the_old_side_of_an_unfinished_replacement_goes_as_the_replacement_would(
    prune: str, kind: str
) -> None:
    # An apply killed after creating the new session, before the old one went: the next
    # plan finishes the replacement (deleted under prune: delete), not a "duplicate".
    old = desired("alpha", task="Old task")
    new = desired("alpha", task="New task")
    observed = [
        remote_for(old, "s-old", created_at="2026-01-01T00:00:01Z"),
        remote_for(new, "s-new", created_at="2026-01-01T00:00:02Z"),
    ]
    (action,) = plan(project(prune=prune), [new], observed).actions
    assert (action.kind, action.session_id) == (kind, "s-old")
    assert action.reason == "superseded by s-new: it no longer matches the declaration"
    # Two copies of the declaration: the younger is a duplicate, archived whatever prune.
    twins = [
        remote_for(new, "s1", created_at="2026-01-01T00:00:01Z"),
        remote_for(new, "s2", created_at="2026-01-01T00:00:02Z"),
    ]
    (action,) = plan(project(prune=prune), [new], twins).actions
    assert (action.kind, action.session_id, action.reason) == ("archive", "s2", "duplicate")


def _renamed(d: Any, old: str, session_id: str, created_at: str, **options: Any) -> RemoteSession:
    """A session of ``d`` under its old name ``old`` (its marker says ``old``)."""
    from dataclasses import replace as with_

    return remote_for(with_(d, name=old), session_id, created_at=created_at, **options)


def test_a_rename_with_sessions_under_both_names_is_refused_whichever_matches() -> None:
    # `old` renamed to `new` with a changed task, and an apply killed between the create
    # and the archive, looks just like two teams' sessions of one name: neither is
    # destroyed by a plan; a person says which goes.
    from dataclasses import replace as with_

    new = with_(desired("new", task="v2"), previously=("old",))
    for old_task in ("v1", "v2"):
        observed = [
            _renamed(desired("new", task=old_task), "old", "s-old", "2026-01-01T00:00:01Z"),
            remote_for(new, "s-new", created_at="2026-01-01T00:00:02Z"),
        ]
        with pytest.raises(UsageError, match=r"the old one\), or drop the previously line"):
            plan(project(), [new], observed)


def test_a_rename_clash_is_refused_only_for_the_names_in_scope() -> None:
    from dataclasses import replace as with_

    from reconciler.planner.scope import Scope

    c = with_(desired("c"), previously=("b",))
    other = desired("other")
    observed = [
        _renamed(desired("c"), "b", "s-b", "2026-01-01T00:00:01Z"),
        remote_for(c, "s-c", created_at="2026-01-01T00:00:02Z"),
    ]
    with pytest.raises(UsageError, match=rf"c: previously names {PROJECT}/b, which has a live"):
        plan(project(), [c, other], observed)
    targeted = plan(project(), [c, other], observed, scope=Scope(targets=("other",)))
    assert [(a.kind, a.name) for a in targeted.actions] == [("create", "other")]


@pytest.mark.parametrize("state", ["archived", "forgotten"])
def test_a_rename_clash_is_no_refusal_when_the_name_is_let_go(state: str) -> None:
    # Archived or forgotten, every session of the name goes the same way, under the old
    # name or the new: nothing is kept, so there is nothing to choose between them.
    from dataclasses import replace as with_

    c = with_(desired("c"), previously=("b",), state=state)
    observed = [
        _renamed(desired("c"), "b", "s-b", "2026-01-01T00:00:01Z"),
        remote_for(desired("c"), "s-c", created_at="2026-01-01T00:00:02Z"),
    ]
    result = plan(project(), [c], observed)
    kind = "archive" if state == "archived" else "update"  # forgetting drops the tags
    assert sorted((a.kind, a.session_id) for a in result.actions) == [
        (kind, "s-b"),
        (kind, "s-c"),
    ]
    if state == "forgotten":
        for action in result.actions:
            assert action.body is not None
            assert not [t for t in action.body["tags"] if t.startswith(MARKER_PREFIX)]


def test_a_project_rename_clash_points_at_the_project() -> None:
    from reconciler.model import SourceLocation

    renamed = Project(
        name=PROJECT, previously=("oldp",), source=SourceLocation("project.yaml", 4, 1)
    )
    d = desired("s")
    observed = [
        remote_for(d, "s-old", project_name="oldp", created_at="2026-01-01T00:00:01Z"),
        remote_for(d, "s-new", created_at="2026-01-01T00:00:02Z"),
    ]
    with pytest.raises(UsageError, match=r"^project.yaml:4: s: previously names oldp/s"):
        plan(renamed, [d], observed)
