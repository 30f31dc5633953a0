"""Settling duplicates of concurrent applies: the oldest of a marker is kept (createdAt,
then id, the rule the planner keeps by too), the others archived, live ones left alone
under protectLive."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from planner_fixtures import desired, item_for, project, remote_for

from reconciler.applier import apply_plan
from reconciler.applier.duplicates import find_duplicates, settle_duplicates
from reconciler.errors import ConflictError, ServerError, TransportError
from reconciler.model import RemoteSession, legacy_create_only_hash
from reconciler.planner import plan

A = "reconciler:team/alpha@0123456789ab"
B = "reconciler:team/beta@0123456789ab"


def item(sid: str, tag: str, created: str, **extra: Any) -> dict[str, Any]:
    return {"sessionId": sid, "status": "active", "tags": ["x", tag], "createdAt": created, **extra}


def remote(*items: dict[str, Any]) -> list[RemoteSession]:
    return [RemoteSession.from_api(i) for i in items]


def test_the_oldest_is_kept_and_every_younger_one_is_a_duplicate() -> None:
    observed = remote(
        item("s3", A, "2026-01-01T00:00:03Z"),
        item("s1", A, "2026-01-01T00:00:01Z"),
        item("s2", A, "2026-01-01T00:00:02Z"),
        item("b1", B, "2026-01-01T00:00:09Z"),  # alone: not a duplicate
    )
    found = find_duplicates(observed, {A, B})
    assert [(d.session.session_id, d.kept.session_id, d.marker_tag) for d in found] == [
        ("s2", "s1", A),
        ("s3", "s1", A),
    ]


def test_ties_on_created_at_are_broken_by_id_so_every_runner_agrees() -> None:
    same = "2026-01-01T00:00:00Z"
    one = find_duplicates(remote(item("s_b", A, same), item("s_a", A, same)), {A})
    other = find_duplicates(remote(item("s_a", A, same), item("s_b", A, same)), {A})
    assert [d.kept.session_id for d in one] == [d.kept.session_id for d in other] == ["s_a"]
    assert [d.session.session_id for d in one] == ["s_b"]


def test_only_the_markers_written_and_only_sessions_not_archived_count() -> None:
    observed = remote(
        item("old", A, "2026-01-01T00:00:00Z", status="archived"),
        item("new", A, "2026-01-02T00:00:00Z"),
        item("b1", B, "2026-01-01T00:00:00Z"),
        item("b2", B, "2026-01-02T00:00:00Z"),
        item("other", A + "x", "2026-01-03T00:00:00Z"),  # a different tag
    )
    assert find_duplicates(observed, {A}) == []
    assert [d.session.session_id for d in find_duplicates(observed, {B})] == ["b2"]


def test_the_planner_and_the_settlement_keep_the_same_session_whatever_a_run_sees() -> None:
    # Four sessions of one name made by concurrent applies (two in one millisecond); the
    # oldest by an older version, its marker hashed as written (the declaration spells
    # out a default), which the declaration still matches. A run may see any of them:
    # whatever it sees, planning and settling keep the same one, by one notion of
    # matching, and neither ever archives the first of all four (so the name keeps it).
    alpha = desired("alpha", workflowMode="standard")
    legacy = legacy_create_only_hash(alpha.spec)
    assert legacy != alpha.spec_hash and alpha.matches(legacy)
    made = [
        remote_for(alpha, "s-c", created_at="2026-01-01T00:00:01.000Z"),
        remote_for(alpha, "s-b", created_at="2026-01-01T00:00:01.000Z", hash_=legacy),
        remote_for(alpha, "s-d", created_at="2026-01-01T00:00:02.000Z"),
        remote_for(alpha, "s-a", created_at="2026-01-01T00:00:03.000Z"),
    ]
    tag = alpha.marker_tag(project().name)
    for size in range(2, len(made) + 1):
        for seen in itertools.permutations(made, size):
            planned = plan(project(), [alpha], list(seen))
            by_planner = {a.session_id for a in planned.actions if a.kind == "archive"}
            settled = find_duplicates(seen, {tag}, {alpha.name: alpha.matches})
            assert by_planner == {d.session.session_id for d in settled}, seen
            assert len({d.kept.session_id for d in settled}) <= 1
            assert "s-b" not in by_planner


def test_the_settlement_leaves_sessions_of_the_name_that_do_not_match() -> None:
    # The old side of a replacement (another declaration's hash) is the plan's to
    # archive, not the settlement's; without a declaration (a saved plan) only the
    # marker's own hash matches.
    alpha = desired("alpha", workflowMode="standard")
    legacy = legacy_create_only_hash(alpha.spec)
    old = desired("alpha", task="Something else")
    observed = [
        remote_for(old, "s-old", created_at="2026-01-01T00:00:00Z"),
        remote_for(alpha, "s-leg", created_at="2026-01-01T00:00:01Z", hash_=legacy),
        remote_for(alpha, "s-new", created_at="2026-01-01T00:00:02Z"),
        remote_for(alpha, "s-twin", created_at="2026-01-01T00:00:03Z"),
    ]
    tag = alpha.marker_tag(project().name)
    declared = find_duplicates(observed, {tag}, {alpha.name: alpha.matches})
    assert [(d.session.session_id, d.kept.session_id) for d in declared] == [
        ("s-new", "s-leg"),
        ("s-twin", "s-leg"),
    ]
    saved = find_duplicates(observed, {tag})
    assert [(d.session.session_id, d.kept.session_id) for d in saved] == [("s-twin", "s-new")]


class SettlementFake:
    def __init__(self, *items: dict[str, Any]) -> None:
        self.items = {i["sessionId"]: dict(i) for i in items}
        self.archived: list[str] = []
        self.listings = 0
        self.fail_archive: dict[str, Exception] = {}
        self.fail_list: Exception | None = None

    async def list_all_sessions(
        self, *, include_archived: bool = False, search: str | None = None
    ) -> list[dict[str, Any]]:
        self.listings += 1
        if self.fail_list is not None:
            raise self.fail_list
        return [dict(i) for i in self.items.values()]

    async def archive_session(self, session_id: str) -> Any:
        if session_id in self.fail_archive:
            raise self.fail_archive[session_id]
        self.archived.append(session_id)
        return {"sessionId": session_id}

    async def get_session(self, session_id: str) -> Any:
        return dict(self.items[session_id])


async def test_settle_archives_the_younger_and_reports_each() -> None:
    hub = SettlementFake(
        item("s1", A, "2026-01-01T00:00:01Z"), item("s2", A, "2026-01-01T00:00:02Z")
    )
    [result] = await settle_duplicates(hub, {A}, protect_live=True)  # type: ignore[arg-type]
    assert hub.archived == ["s2"]
    assert (result.outcome, result.session_id, result.action.name) == ("succeeded", "s2", "alpha")
    assert result.action.kind == "archive" and "kept s1, the oldest" in result.action.reason


async def test_protect_live_leaves_a_live_duplicate_and_says_so() -> None:
    hub = SettlementFake(
        item("s1", A, "2026-01-01T00:00:01Z"),
        item("s2", A, "2026-01-01T00:00:02Z", loopStatus="running"),
    )
    [result] = await settle_duplicates(hub, {A}, protect_live=True)  # type: ignore[arg-type]
    assert hub.archived == [] and result.outcome == "skipped"
    assert "live" in (result.error or "") and "protectLive" in (result.error or "")
    [forced] = await settle_duplicates(hub, {A}, protect_live=True, force=True)  # type: ignore[arg-type]
    assert hub.archived == ["s2"] and forced.outcome == "succeeded"
    [unguarded] = await settle_duplicates(hub, {A}, protect_live=False)  # type: ignore[arg-type]
    assert unguarded.outcome == "succeeded"


async def test_a_live_copy_made_while_this_apply_ran_is_the_races_and_archived() -> None:
    # A loop session runs from its creation: under protectLive every race copy was left,
    # and every later plan refused. One made since this apply's first create is the race's.
    from datetime import datetime

    hub = SettlementFake(
        item("s1", A, "2026-01-01T00:00:01Z", loopStatus="running"),
        item("s2", A, "2026-01-01T00:00:02Z", loopStatus="running"),
        item("s3", A, "2026-01-01T00:00:03Z", loopStatus="running"),
    )
    since = datetime.fromisoformat("2026-01-01T00:00:02.500Z")
    results = await settle_duplicates(hub, {A}, protect_live=True, race_since=since)  # type: ignore[arg-type]
    # s3 is the race's; s2 was made before this apply created anything: the runner that
    # made s1 (or s2) settles it, or a person does.
    assert hub.archived == ["s3"]
    assert {r.session_id: r.outcome for r in results} == {"s2": "skipped", "s3": "succeeded"}
    # Made since, but not as the kept one is (a person's, with its label), or joined by
    # someone: not the race's, left alone.
    hub = SettlementFake(
        item("s1", A, "2026-01-01T00:00:01Z", loopStatus="running"),
        item("s4", A, "2026-01-01T00:00:04Z", loopStatus="running", label="my own work"),
        item("s5", A, "2026-01-01T00:00:05Z", participantCount=1),
    )
    results = await settle_duplicates(hub, {A}, protect_live=True, race_since=since)  # type: ignore[arg-type]
    assert hub.archived == [] and {r.outcome for r in results} == {"skipped"}


async def test_archived_by_the_other_runner_first_is_already_done_and_errors_are_failures() -> None:
    hub = SettlementFake(
        item("s1", A, "2026-01-01T00:00:01Z"),
        item("s2", A, "2026-01-01T00:00:02Z"),
        item("b1", B, "2026-01-01T00:00:01Z"),
        item("b2", B, "2026-01-01T00:00:02Z"),
    )
    hub.fail_archive = {
        "s2": ConflictError("archived", status=409, code="CODER_SESSION_ARCHIVED"),
        "b2": ServerError("boom", status=500),
    }
    results = await settle_duplicates(hub, {A, B}, protect_live=True)  # type: ignore[arg-type]
    assert {r.session_id: r.outcome for r in results} == {"s2": "noop", "b2": "failed"}


async def test_nothing_written_nothing_listed_and_a_failed_listing_raises() -> None:
    hub = SettlementFake()
    assert await settle_duplicates(hub, set(), protect_live=True) == ()  # type: ignore[arg-type]
    assert hub.listings == 0
    hub.fail_list = TransportError("dropped")
    with pytest.raises(TransportError):
        await settle_duplicates(hub, {A}, protect_live=True)  # type: ignore[arg-type]


async def test_a_planned_duplicate_whose_kept_twin_went_meanwhile_is_not_archived() -> None:
    alpha, beta = desired("alpha"), desired("beta")
    made = {
        "a1": item_for(alpha, "a1", created_at="2026-01-01T00:00:01Z"),
        "a2": item_for(alpha, "a2", created_at="2026-01-01T00:00:02Z"),
        "a3": item_for(alpha, "a3", created_at="2026-01-01T00:00:03Z"),
        "b1": item_for(beta, "b1", created_at="2026-01-01T00:00:01Z"),
        "b2": item_for(beta, "b2", created_at="2026-01-01T00:00:02Z"),
    }
    planned = plan(project(), [alpha, beta], remote(*made.values()))
    assert sorted(a.session_id or "" for a in planned.actions) == ["a2", "a3", "b2"]
    # Before it runs, a1 (the alpha kept) is archived by someone else; b1 stays.
    hub = SettlementFake(*(i for sid, i in made.items() if sid != "a1"))
    report = await apply_plan(planned, hub, environ={})  # type: ignore[arg-type]
    outcomes = {r.session_id: (r.outcome, r.error) for r in report.results}
    assert hub.archived == ["a3", "b2"] and hub.listings == 1
    assert outcomes["a2"][0] == "skipped"
    assert "last active session of alpha" in (outcomes["a2"][1] or "")


async def test_planned_duplicates_fail_when_the_listing_before_them_fails() -> None:
    alpha = desired("alpha")
    a1 = remote_for(alpha, "a1", created_at="2026-01-01T00:00:01Z")
    a2 = remote_for(alpha, "a2", created_at="2026-01-01T00:00:02Z")
    hub = SettlementFake()
    hub.fail_list = TransportError("dropped")
    report = await apply_plan(plan(project(), [alpha], [a1, a2]), hub, environ={})  # type: ignore[arg-type]
    [result] = report.results
    assert result.outcome == "failed" and hub.archived == []
    assert "listing the sessions" in (result.error or "")
