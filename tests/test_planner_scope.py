"""The planner's extras, pure: selectors, --replace, --destroy, forget (table-driven)."""

from __future__ import annotations

import pytest
from planner_fixtures import desired, marker, project, remote_for

from reconciler.errors import SafetyError, UsageError
from reconciler.planner import check_safety, plan, refusals
from reconciler.planner.core import ownership
from reconciler.planner.forget import check_forget, plan_forget
from reconciler.planner.scope import Scope, ScopeFlags, parse_selector, select_names
from reconciler.suggest import close_names, did_you_mean

A = desired("alpha", tags=["team-a", "backend"])
B = desired("beta", tags=["team-b"], prevent_destroy=True)
G = desired("gamma", tags=["team-a"], state="archived")
DESIRED = [A, B, G]


@pytest.mark.parametrize(
    ("selectors", "names"),
    [
        (["tag=team-a"], ("alpha", "gamma")),
        (["tag=backend"], ("alpha",)),
        (["tag=backend", "tag=team-b"], ("alpha", "beta")),
        (["tag=team-b", "tag=team-b"], ("beta",)),
        ([], ()),
    ],
)
def test_select_names(selectors: list[str], names: tuple[str, ...]) -> None:
    assert select_names(DESIRED, selectors) == names


def test_selectors_read_resolved_tags() -> None:
    d = desired("delta", tags=["${env:TEAM}"], resolved={"tags": ["team-d"]})
    assert select_names([d], ["tag=team-d"]) == ("delta",)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("tag=", "--selector tag=: expected tag=VALUE"),
        ("label=x", "--selector label=x: only tag=VALUE selects sessions"),
        ("tga=x", "--selector tga=x: only tag=VALUE selects sessions; did you mean tag=x?"),
        ("tag=team", "--selector tag=team: no declared session carries that tag; "
         "did you mean tag=team-a or tag=team-b?"),
    ],
)  # fmt: skip
def test_bad_selectors(given: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        select_names(DESIRED, [given])
    assert str(caught.value) == message
    if given.startswith("tag=team"):
        return
    with pytest.raises(UsageError):
        parse_selector(given)


def test_close_names() -> None:
    assert close_names("lable", ["label", "labels", "task"]) == ["label", "labels"]
    assert did_you_mean("agnet", ["agent", "task"], show=lambda n: f"`{n}`") == (
        "; did you mean `agent`?"
    )
    assert did_you_mean("zzz", ["agent"]) == ""


def test_replace_unchanged_session_and_its_safety() -> None:
    observed = [remote_for(A, "s_a"), remote_for(B, "s_b")]
    actions = plan(project(), [A, B], observed, scope=Scope(replace=("alpha",))).actions
    assert [(a.kind, a.name, a.reason, a.session_id) for a in actions] == [
        ("replace", "alpha", "replacement requested (--replace)", "s_a")
    ]
    assert actions[0].body is not None and actions[0].body["task"] == "Triage issues"
    guarded = plan(project(), [A, B], observed, scope=Scope(replace=("beta",)))
    with pytest.raises(SafetyError, match="preventDestroy"):
        check_safety(guarded, [A, B], force=True)


def test_replace_names_must_be_declared_active() -> None:
    with pytest.raises(UsageError) as caught:
        ScopeFlags(replace=("gamma", "alpah")).resolve(DESIRED)
    assert str(caught.value) == (
        "--replace gamma: no session of that name is declared active\n"
        "--replace alpah: no session of that name is declared active; did you mean alpha?"
    )


@pytest.mark.parametrize(("prune", "kind"), [("archive", "archive"), ("keep", "archive"),
                                             ("delete", "delete")])  # fmt: skip
def test_destroy_removes_every_live_managed_session(prune: str, kind: str) -> None:
    orphan = desired("old")
    observed = [
        remote_for(A, "s_a"),
        remote_for(B, "s_b"),
        remote_for(orphan, "s_old"),
        remote_for(desired("gone"), "s_gone", status="archived"),
    ]
    result = plan(project(prune=prune), DESIRED, observed, scope=Scope(destroy=True))
    assert [(a.kind, a.name, a.prevent_destroy) for a in result.actions] == [
        (kind, "alpha", False),
        (kind, "beta", True),
        (kind, "old", False),
    ]
    assert not any(a.kind == "create" for a in result.actions)


def test_forget_plans_one_tag_update_per_marked_session() -> None:
    observed = [
        remote_for(A, "s_a"),
        remote_for(A, "s_a_old", status="archived"),
        remote_for(B, "s_b"),
        remote_for(A, "s_other", project_name="other"),
    ]
    result = plan_forget(project(), ownership(project(), DESIRED, observed), "alpha")
    assert [(a.kind, a.session_id, a.body) for a in result.actions] == [
        ("update", "s_a", {"tags": ["team-a", "backend"]}),
        ("update", "s_a_old", {"tags": ["team-a", "backend"]}),
    ]
    # Every tag of the project's it takes off is shown: the marker, and the record.
    (found, record) = result.actions[0].changes[0].removed
    assert found == marker("alpha", A.spec_hash)
    assert record.startswith("reconciler:applied:platform=")
    check_safety(result, DESIRED, force=False)  # an update destroys nothing


def test_forget_takes_the_protection_off_with_the_marker() -> None:
    observed = [remote_for(B, "s_b")]
    assert "reconciler:protected:platform" in observed[0].tags
    result = plan_forget(project(), ownership(project(), DESIRED, observed), "beta")
    assert [a.body for a in result.actions] == [{"tags": ["team-b"]}]
    # Shown going: forget is how a protection is released without a plan declaring it.
    assert "reconciler:protected:platform" in result.actions[0].changes[0].removed


def test_forget_of_a_declared_name_needs_force() -> None:
    with pytest.raises(SafetyError) as caught:
        check_forget("alpha", DESIRED, force=False)
    assert caught.value.violations[0].rule == "stillDeclared"
    assert "still declared at sessions/alpha.yaml:1" in str(caught.value)
    check_forget("alpha", DESIRED, force=True)
    check_forget("undeclared", DESIRED, force=False)


def test_a_declaration_forgotten_lets_every_managed_session_go() -> None:
    # `state: forgotten`: what `forget` plans, from the manifests (so an applier that
    # reads them, CI or watch, does it; nothing races a command run by hand).
    gone = desired("beta", state="forgotten", tags=["team-b"], prevent_destroy=True)
    observed = [remote_for(B, "s_b"), remote_for(B, "s_b_old", status="archived")]
    result = plan(project(), [A, gone], [remote_for(A, "s_a"), *observed])
    assert [(a.kind, a.session_id, a.body) for a in result.actions] == [
        ("update", "s_b", {"tags": ["team-b"]}),
        ("update", "s_b_old", {"tags": ["team-b"]}),
    ]
    assert result.actions[0].reason.startswith("declared state: forgotten")
    check_safety(result, [A, gone], force=False)  # nothing destroyed, protected or not
    # Once let go, nothing is managed as beta: no create, no change.
    released = [remote_for(B, "s_b", tags=["team-b"])]
    assert plan(project(), [A, gone], [remote_for(A, "s_a"), *released]).actions == ()
    check_forget("beta", [A, gone], force=False)  # `forget beta` is not refused either


def test_destroy_lets_a_forgotten_declaration_go_and_destroys_nothing_of_it() -> None:
    from reconciler.planner import Scope

    gone = desired("beta", state="forgotten", tags=["team-b"])
    observed = [remote_for(A, "s_a"), remote_for(B, "s_b")]
    result = plan(project(prune="delete"), [A, gone], observed, scope=Scope(destroy=True))
    assert [(a.kind, a.session_id) for a in result.actions] == [
        ("delete", "s_a"),
        ("update", "s_b"),
    ]
    assert result.actions[1].body == {"tags": ["team-b"]}


def test_sessions_being_forgotten_do_not_dilute_remove_all() -> None:
    # Forgetting one and removing every other: after the plan the project manages
    # nothing, which is what removeAll catches.
    from reconciler.planner import Scope

    gone = desired("beta", state="forgotten", tags=["team-b"])
    observed = [remote_for(A, "s_a"), remote_for(B, "s_b")]
    for flags, declared in (({"destroy": True}, [A, gone]), ({}, [gone])):
        result = plan(project(), declared, observed, scope=Scope(**flags))
        assert result.managed_count == 1
        with pytest.raises(SafetyError) as caught:
            check_safety(result, declared, force=False)
        assert [v.rule for v in caught.value.violations] == ["removeAll"]


def test_a_declaration_adopts_an_existing_session_once() -> None:
    from dataclasses import replace as with_

    from reconciler.planner import needs_detail
    from reconciler.planner.body import create_body

    d = with_(desired("alpha", tags=["team-a"]), adopt="s_hand")
    made_by_hand = remote_for(d, "s_hand", tags=["x"], label="Old")
    detail = {"sessionId": "s_hand", **create_body("elsewhere", d)}
    detail.pop("metadata")  # made by hand: no record; the hub's report is compared
    assert needs_detail(project(), [d], [made_by_hand]) == ("s_hand",)
    (action,) = plan(project(), [d], [made_by_hand], details={"s_hand": detail}).actions
    assert (action.kind, action.session_id, action.reason) == (
        "update",
        "s_hand",
        "adopt: adopted as declared",
    )
    assert action.body["label"] == "Triage" and d.marker_tag("platform") in action.body["tags"]
    # Adopted: the marker is there, adopt is done with (no GET, no change).
    adopted = remote_for(d, "s_hand")
    assert needs_detail(project(), [d], [adopted]) == ()
    assert plan(project(), [d], [adopted]).actions == ()


@pytest.mark.parametrize(
    ("observed", "message"),
    [
        ([], "adopt: no session s_hand on the hub"),
        ([("archived", [])], "adopt: session s_hand is archived"),
        ([("active", ["reconciler:other/x@0123456789ab"])], "managed already (as other/x)"),
    ],
)
def test_adopt_refuses_what_it_cannot_adopt_as_it_is(observed: list, message: str) -> None:
    from dataclasses import replace as with_

    from reconciler.planner.body import create_body

    d = with_(desired("alpha"), adopt="s_hand")
    sessions, details = [], {}
    if observed:
        status, tags = observed[0]
        sessions = [remote_for(d, "s_hand", status=status, tags=tags)]
        body = create_body("elsewhere", d)
        body.pop("metadata")
        if "task" in observed[1:]:
            body["task"] = "Something else"
        details = {"s_hand": {"sessionId": "s_hand", **body}}
    with pytest.raises(UsageError) as caught:
        plan(project(), [d], sessions, details=details)
    assert message in str(caught.value)
    assert str(caught.value).startswith("sessions/alpha.yaml:1: adopt: ")


def test_adopt_refuses_differing_create_only_fields_as_import_does() -> None:
    from dataclasses import replace as with_

    from reconciler.planner.body import create_body

    d = with_(desired("alpha"), adopt="s_hand")
    body = create_body("elsewhere", d)
    body.pop("metadata")
    body["task"] = "Something else"
    details = {"s_hand": {"sessionId": "s_hand", **body}}
    # The plan is made, the other declarations planned, and refused (shown in full).
    found = plan(
        project(), [d, desired("beta")], [remote_for(d, "s_hand", tags=[])], details=details
    )
    assert [(a.kind, a.name) for a in found.actions] == [("create", "beta")]
    for force in (False, True):
        (violation,) = refusals(found, force=force)
        assert (violation.rule, violation.overridable) == ("createOnlyDiffers", False)
        assert "create-only fields differ from the manifest's (task)" in violation.message
        assert violation.sessions == ("alpha (s_hand, adopt at sessions/alpha.yaml:1)",)
    with pytest.raises(SafetyError):
        check_safety(found, force=True)


def test_adopt_is_done_with_once_the_name_was_managed_and_resumes_a_paused_one() -> None:
    from dataclasses import replace as with_

    from reconciler.planner.body import create_body

    d = with_(desired("alpha"), adopt="s_hand")
    # Adopted, then archived by hand: the usual rule (a new one), not an adopt error.
    archived = remote_for(d, "s_hand", status="archived")
    (action,) = plan(project(), [d], [archived]).actions
    assert (action.kind, action.reason) == ("create", "its last session is archived")
    # A paused session is adopted and resumed in the same plan.
    paused = remote_for(d, "s_hand", status="paused", tags=[])
    body = create_body("elsewhere", d)
    body.pop("metadata")
    details = {"s_hand": {"sessionId": "s_hand", **body}}
    result = plan(project(), [d], [paused], details=details)
    assert [(a.kind, a.session_id) for a in result.actions] == [
        ("update", "s_hand"),
        ("resume", "s_hand"),
    ]


def test_an_adopt_line_naming_another_session_than_the_managed_one_is_warned_about() -> None:
    from dataclasses import replace as with_

    from reconciler.planner import Scope, ownership, spent_adopt_lines

    d = with_(desired("alpha"), adopt="s_hand")

    def notes(observed: list, scope: Scope | None = None) -> tuple[str, ...]:
        index = ownership(project(), [d], observed)
        return spent_adopt_lines([d], observed, index, scope or Scope())

    managed = remote_for(d, "s_made")  # the name is managed, as another session
    assert plan(project(), [d], [managed, remote_for(d, "s_hand", tags=[])]).actions == ()
    assert notes([managed, remote_for(d, "s_hand", tags=[])]) == (
        "sessions/alpha.yaml:1: adopt: s_hand is not the session managed as alpha (s_made): "
        "the line does nothing; remove it, or to manage s_hand instead, forget alpha first",
    )
    # Gone from the hub (a replacement under prune: delete): only "remove it".
    (note,) = notes([managed])
    assert note.endswith("the line does nothing; remove it (s_hand is not on the hub, or archived)")
    # Out of scope (--target another, --exclude it): not this plan's concern.
    assert notes([managed], Scope(excludes=("alpha",))) == ()
    # Adopt beside `state: archived` on a name never managed: it does nothing, said so.
    archived = with_(d, state="archived")
    (note,) = spent_adopt_lines([archived], [], ownership(project(), [archived], []))
    assert "adopt: does nothing for a declaration `state: archived`" in note
    assert note.endswith(
        "to archive s_hand, declare it active first and apply, then change its state"
    )
    # Beside `state: forgotten` once the forget was applied (or never managed): nothing
    # to let go. The advice was to declare it active and apply, which adopts it again.
    forgotten = with_(d, state="forgotten")
    unmanaged = remote_for(d, "s_hand", tags=[])
    (note,) = spent_adopt_lines(
        [forgotten], [unmanaged], ownership(project(), [forgotten], [unmanaged])
    )
    assert note == (
        "sessions/alpha.yaml:1: adopt: does nothing for a declaration `state: forgotten`: "
        "s_hand is not managed as alpha; remove the line"
    )
    # The session adopted (archived since, or kept): the line may stay, without a word.
    assert notes([remote_for(d, "s_hand")]) == ()
    assert notes([remote_for(d, "s_hand", status="archived")]) == ()


def test_an_adoption_out_of_scope_is_left_out_not_refused() -> None:
    from dataclasses import replace as with_

    from reconciler.planner import Scope

    d = with_(desired("alpha"), adopt="s_gone")  # refused in scope: no such session
    with pytest.raises(UsageError, match="adopt: no session s_gone"):
        plan(project(), [d, B], [])
    for scope in (Scope(targets=("beta",)), Scope(excludes=("alpha",))):
        result = plan(project(), [d, B], [], scope=scope)
        assert [(a.kind, a.name) for a in result.actions] == [("create", "beta")]
        assert result.left_out == 1
