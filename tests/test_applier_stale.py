"""Staleness of a saved plan: every action checked against a fresh listing."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.applier import check_stale, stale_actions
from reconciler.errors import StalePlanError
from reconciler.model import Action, Plan, RemoteSession
from reconciler.planner.fingerprint import fingerprint

PROJECT = "team"


def remote(sid: str, name: str, *, digest: str = "0123456789ab", **fields: Any) -> RemoteSession:
    item = {
        "sessionId": sid,
        "status": "active",
        "label": name,
        "tags": [f"reconciler:{PROJECT}/{name}@{digest}"],
        **fields,
    }
    return RemoteSession.from_api(item)


def on(kind: str, s: RemoteSession, **kw: Any) -> Action:
    return Action(kind, s.label or "", session_id=s.session_id, precondition=fingerprint(s), **kw)  # type: ignore[arg-type]


def test_unchanged_hub_is_not_stale() -> None:
    a, b = remote("s1", "a"), remote("s2", "b")
    plan = Plan(
        PROJECT,
        (
            on("update", a, body={"label": "x"}),
            on("archive", b),
            Action("create", "c", marker_tag=f"reconciler:{PROJECT}/c@0123456789ab"),
        ),
    )
    assert stale_actions(plan, [a, b]) == []
    check_stale(plan, [a, b])


def test_each_stale_action_is_named_with_its_reason() -> None:
    a, b, c = remote("s1", "a"), remote("s2", "b"), remote("s3", "c")
    plan = Plan(
        PROJECT,
        (
            on("update", a, body={"label": "x"}),
            on("archive", b),
            on("delete", c),
            Action("create", "n", marker_tag=f"reconciler:{PROJECT}/n@0123456789ab"),
            Action("create", "fresh"),
        ),
    )
    now = [
        remote("s1", "a", tags=["changed", f"reconciler:{PROJECT}/a@0123456789ab"]),
        remote("s2", "b", loopStatus="running"),  # became live; fingerprint unchanged
        remote("s9", "n", digest="ffffffffffff"),  # another apply created "n"
    ]
    with pytest.raises(StalePlanError) as info:
        check_stale(plan, now)
    assert info.value.stale == (
        "update a: session s1 changed since the plan was made",
        "archive b: session s2 is live now",
        "delete c: session s3 no longer exists",
        "create n: session s9 of that name now exists",
    )
    assert info.value.exit_code == 4


def test_archived_session_of_the_name_does_not_make_a_recreation_stale() -> None:
    old = remote("s1", "a", status="archived")
    plan = Plan(PROJECT, (Action("create", "a"),))
    assert stale_actions(plan, [old]) == []


def test_replacement_is_stale_once_its_new_session_exists() -> None:
    old = remote("s1", "r")
    new_tag = f"reconciler:{PROJECT}/r@bbbbbbbbbbbb"
    # As the planner makes it: marker_tag is the new session's, as in the body.
    action = on(
        "replace",
        old,
        marker_tag=new_tag,
        replace_with="archive",
        body={"tags": ["x", new_tag]},
    )
    plan = Plan(PROJECT, (action,))
    assert stale_actions(plan, [old]) == []
    made = remote("s2", "r", digest="bbbbbbbbbbbb")
    assert stale_actions(plan, [old, made]) == ["replace r: its new session s2 already exists"]


def test_other_projects_sessions_of_the_same_name_do_not_matter() -> None:
    theirs = RemoteSession.from_api(
        {"sessionId": "x", "status": "active", "tags": ["reconciler:other/a@0123456789ab"]}
    )
    assert stale_actions(Plan(PROJECT, (Action("create", "a"),)), [theirs]) == []
