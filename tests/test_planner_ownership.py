"""Property: sessions without this project's marker never appear in any action."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from planner_fixtures import PROJECT, desired, marker, project, remote_for

from reconciler.errors import SafetyError
from reconciler.model import RemoteSession
from reconciler.planner import check_safety, needs_detail, plan
from reconciler.planner.applied import applied_tag

NAMES = ["alpha", "beta", "gamma"]
STATUSES = ["active", "paused", "archived", "stopped", "shutdown", "creating", "error"]

hashes = st.sampled_from(["0" * 12, "a" * 12, desired("alpha").spec_hash])
own_tag = st.builds(marker, st.sampled_from(NAMES), hashes)
foreign_tag = st.one_of(
    st.builds(lambda n, h: marker(n, h, "other-team"), st.sampled_from(NAMES), hashes),
    st.sampled_from(["triage", "reconciler:", f"reconciler:{PROJECT}/alpha", "reconciler:x/y@z"]),
    st.text(max_size=12),
)


@st.composite
def remote(draw: st.DrawFn, index: int) -> tuple[RemoteSession, bool]:
    owned = draw(st.booleans())
    tags = draw(st.lists(foreign_tag, max_size=3))
    if owned:
        tags.insert(draw(st.integers(0, len(tags))), draw(own_tag))
    item = {
        "sessionId": f"{'own' if owned else 'foreign'}-{index}",
        "status": draw(st.sampled_from(STATUSES)),
        "label": draw(st.sampled_from(["Triage", "x", None])),
        "tags": tags,
        "loopStatus": draw(st.sampled_from(["running", "idle", None])),
        "createdAt": f"2025-01-0{draw(st.integers(1, 9))}T00:00:00Z",
    }
    return RemoteSession.from_api({k: v for k, v in item.items() if v is not None}), owned


@st.composite
def observed_states(draw: st.DrawFn) -> list[tuple[RemoteSession, bool]]:
    n = draw(st.integers(0, 8))
    return [draw(remote(i)) for i in range(n)]


declared = st.lists(
    st.builds(
        lambda name, task, state: desired(name, task=task, state=state),
        st.sampled_from(NAMES),
        st.sampled_from(["Triage issues", "Other"]),
        st.sampled_from(["active", "archived"]),
    ),
    max_size=3,
    unique_by=lambda d: d.name,
)


@settings(max_examples=300, deadline=None)
@given(observed_states(), declared, st.sampled_from(["archive", "delete", "keep"]))
def test_foreign_sessions_never_in_any_action(state, ds, prune) -> None:  # type: ignore[no-untyped-def]
    observed = [r for r, _ in state]
    foreign = {r.session_id for r, owned in state if not owned}
    result = plan(project(prune=prune), ds, observed)
    touched = {a.session_id for a in result.actions}
    assert not touched & foreign
    for a in result.actions:
        if a.body is not None:
            replaces = a.body.get("metadata", {}).get("reconciler", {}).get("replaces")
            assert replaces not in foreign
    assert not set(needs_detail(project(), ds, observed)) & foreign
    try:
        check_safety(result, ds, force=False)
    except SafetyError as exc:
        for v in exc.violations:
            assert not any(s.split(" (")[-1].rstrip(")") in foreign for s in v.sessions)


def test_a_renamed_session_is_found_under_its_old_name_and_retagged() -> None:
    old = desired("old-name")
    new = replace(desired("new-name"), previously=("old-name",))
    remote = remote_for(old, "s1")
    result = plan(project(), [new], [remote])
    [action] = result.actions
    digest = new.spec_hash
    assert (action.kind, action.name, action.session_id) == ("update", "new-name", "s1")
    assert action.reason == "renamed from old-name"
    assert action.marker_tag == marker("new-name", digest)
    record = applied_tag(PROJECT, new)  # the last-applied record stays (planner.applied)
    assert action.body == {"tags": ["triage", marker("new-name", digest), record]}
    [change] = action.changes
    assert (change.added, change.removed) == (
        (marker("new-name", digest),),
        (marker("old-name", digest),),
    )
    # Without previously the same manifests replace nothing but destroy the old session.
    kinds = sorted(a.kind for a in plan(project(), [desired("new-name")], [remote]).actions)
    assert kinds == ["archive", "create"]
