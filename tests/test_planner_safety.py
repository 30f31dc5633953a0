"""Safety rules: each rule, every session it hits, and what --force lifts."""

from __future__ import annotations

import pytest
from planner_fixtures import PROJECT, desired, item_for, project, remote_for

from reconciler.errors import SafetyError
from reconciler.model import Plan, RemoteSession, legacy_create_only_hash
from reconciler.planner import check_safety, plan


def names(n: int) -> list[str]:
    return [f"s{i:02d}" for i in range(n)]


def fleet(n: int) -> tuple[list, list]:
    ds = [desired(name) for name in names(n)]
    return ds, [remote_for(d, f"id-{d.name}") for d in ds]


def rules(exc: SafetyError) -> dict[str, tuple[str, ...]]:
    return {v.rule: v.sessions for v in exc.violations}


def refuse(p: Plan, ds: list, *, force: bool = False) -> dict[str, tuple[str, ...]]:
    with pytest.raises(SafetyError) as info:
        check_safety(p, ds, force=force)
    assert info.value.exit_code == 3
    return rules(info.value)


def test_prevent_destroy_even_with_force() -> None:
    d = desired("alpha", state="archived", prevent_destroy=True)
    p = plan(
        project(), [d, desired("beta")], [remote_for(d, "s1"), remote_for(desired("beta"), "s2")]
    )
    assert refuse(p, [d], force=True) == {"preventDestroy": ("alpha (s1)",)}


def test_prevent_destroy_covers_replace() -> None:
    old = desired("alpha", prevent_destroy=True)
    new = desired("alpha", task="New", prevent_destroy=True)
    other = desired("beta")
    p = plan(project(), [new, other], [remote_for(old, "s1"), remote_for(other, "s2")])
    assert refuse(p, [new])["preventDestroy"] == ("alpha (s1)",)


def test_prevent_destroy_is_carried_by_the_action() -> None:
    # A saved plan is re-checked without manifests.
    d = desired("alpha", state="archived", prevent_destroy=True)
    p = plan(project(), [d, desired("b")], [remote_for(d, "s1"), remote_for(desired("b"), "s2")])
    assert refuse(p, [], force=True) == {"preventDestroy": ("alpha (s1)",)}


def test_max_destroy_percent_with_ten_or_more_managed() -> None:
    ds, observed = fleet(10)
    p = plan(project(max_destroy_percent=30), ds[:6], observed)  # 4 of 10 archived
    hit = refuse(p, ds)
    assert hit == {"maxDestroyPercent": tuple(f"{n} (id-{n})" for n in names(10)[6:])}
    check_safety(p, ds, force=True)
    # At the limit exactly: allowed.
    check_safety(plan(project(max_destroy_percent=30), ds[:7], observed), ds, force=False)


def test_max_destroy_percent_ignored_below_ten_managed() -> None:
    ds, observed = fleet(9)
    check_safety(plan(project(max_destroy_percent=10), ds[:5], observed), ds, force=False)


def test_replacements_count_as_destroying() -> None:
    ds, observed = fleet(10)
    changed = [desired(d.name, task="new task") for d in ds[:4]] + ds[4:]
    p = plan(project(max_destroy_percent=30), changed, observed)
    assert p.count("replace") == 4
    assert "maxDestroyPercent" in refuse(p, changed)


def test_removing_every_managed_session() -> None:
    ds, observed = fleet(2)
    p = plan(project(), [], observed)
    assert refuse(p, []) == {"removeAll": ("s00 (id-s00)", "s01 (id-s01)")}
    check_safety(p, [], force=True)


def test_remove_all_not_triggered_with_nothing_managed() -> None:
    check_safety(plan(project(), [], []), [], force=False)


def test_protect_live() -> None:
    a, b = desired("alpha"), desired("beta")
    observed = [remote_for(a, "s1", participantCount=2), remote_for(b, "s2")]
    p = plan(project(), [b], observed)
    assert refuse(p, [b]) == {"protectLive": ("alpha (s1)",)}
    check_safety(p, [b], force=True)
    check_safety(plan(project(protect_live=False), [b], observed), [b], force=False)


def test_duplicates_count_as_archives() -> None:
    a = desired("alpha")
    observed = [
        remote_for(a, "s1", created_at="2025-01-01T00:00:00Z", loopStatus="running"),
        remote_for(a, "s2", created_at="2025-01-02T00:00:00Z"),
    ]
    p = plan(project(), [a], observed)
    assert [(x.kind, x.reason, x.session_id) for x in p.actions] == [("archive", "duplicate", "s2")]
    check_safety(p, [a], force=False)  # s2 is not live; 1 of 2 managed
    observed[0], observed[1] = (
        remote_for(a, "s1", created_at="2025-01-01T00:00:00Z"),
        remote_for(a, "s2", created_at="2025-01-02T00:00:00Z", loopStatus="running"),
    )
    assert refuse(plan(project(), [a], observed), [a]) == {"protectLive": ("alpha (s2)",)}


def test_every_rule_reported_together() -> None:
    ds, observed = fleet(10)
    observed[0] = remote_for(ds[0], "id-s00", loopStatus="awaiting_input")
    guarded = desired("s01", state="archived", prevent_destroy=True)
    p = plan(project(), [guarded], observed)
    hit = refuse(p, [guarded])
    assert set(hit) == {"preventDestroy", "maxDestroyPercent", "removeAll", "protectLive"}
    assert hit["protectLive"] == ("s00 (id-s00)",)
    assert len(hit["removeAll"]) == 10
    assert refuse(p, [guarded], force=True) == {"preventDestroy": ("s01 (id-s01)",)}


def _doubled(n: int) -> tuple[list, list]:
    """``n`` sessions, each created twice as written (two applies at once)."""
    ds, observed = fleet(n)
    twins = [remote_for(d, f"id2-{d.name}", created_at="2025-01-02T00:00:00Z") for d in ds]
    return ds, observed + twins


def test_identical_duplicates_do_not_count_against_max_destroy_percent() -> None:
    ds, observed = _doubled(10)
    p = plan(project(max_destroy_percent=30), ds, observed)
    assert [a.reason for a in p.actions] == ["duplicate"] * 10  # 10 of 20 managed
    check_safety(p, ds, force=False)
    with pytest.raises(SafetyError):  # without the declarations, they count as any archive
        check_safety(p, [], force=False)


def test_duplicates_kept_in_favour_of_a_copied_marker_count() -> None:
    """Anyone who can edit tags can copy a name's marker onto an older session of their
    own; the keep rule keeps the older, so every real session would be archived as a
    duplicate. Twins two applies made both carry the project's record of an apply; a
    copied marker alone does not: those archives count for maxDestroyPercent."""
    ds, observed = fleet(12)
    impostors = []
    for d in ds:
        item = item_for(d, f"imp-{d.name}", created_at="2024-06-01T00:00:00Z")
        item["tags"] = [t for t in item["tags"] if t == d.marker_tag(PROJECT)]
        impostors.append(RemoteSession.from_api(item))
    p = plan(project(max_destroy_percent=10), ds, observed + impostors)
    archives = [a for a in p.actions if a.kind == "archive"]
    assert {a.session_id for a in archives} == {f"id-{d.name}" for d in ds}
    assert {a.reason for a in archives} == {
        "duplicate: the session kept is not as this project's applies leave one (no "
        "record of them, or another name's marker too: a marker copied onto it?)"
    }
    assert set(refuse(p, ds)) == {"maxDestroyPercent"}
    check_safety(p, ds, force=True)  # --force lifts it, as for any destroy
    # A marker prepended onto another name's session (its record is of that name): the
    # session kept for the copied name holds two of the project's markers: it counts.
    items = [
        item_for(d, f"id-{d.name}", created_at=f"2025-01-{i + 1:02d}T00:00:00Z")
        for i, d in enumerate(ds)
    ]
    for i in range(0, 12, 2):
        items[i]["tags"] = [ds[i + 1].marker_tag(PROJECT), *items[i]["tags"]]
    p = plan(project(max_destroy_percent=10), ds, [RemoteSession.from_api(x) for x in items])
    archives = [a for a in p.actions if a.kind == "archive"]
    assert len(archives) == 6 and all(a.reason != "duplicate" for a in archives)
    assert set(refuse(p, ds)) == {"maxDestroyPercent"}
    # A marker swapped in place of the session's own (one marker, a genuine record, of
    # the other name's values): the record is not the one an apply of this name writes.
    labelled = [desired(f"s{i:02d}", label=f"Session {i}") for i in range(12)]
    items = [
        item_for(d, f"id-{d.name}", created_at=f"2025-01-{i + 1:02d}T00:00:00Z")
        for i, d in enumerate(labelled)
    ]
    for i in range(0, 12, 2):
        own = labelled[i].marker_tag(PROJECT)
        swapped = labelled[i + 1].marker_tag(PROJECT)
        items[i]["tags"] = [swapped if t == own else t for t in items[i]["tags"]]
    observed_swapped = [RemoteSession.from_api(x) for x in items]
    p = plan(project(max_destroy_percent=10), labelled, observed_swapped)
    archives = [a for a in p.actions if a.kind == "archive"]
    assert len(archives) == 6 and all(a.reason != "duplicate" for a in archives)
    assert set(refuse(p, labelled)) == {"maxDestroyPercent"}
    # Twins that both carry the record: exempt as before (12 of 24 archived).
    twins = [remote_for(d, f"id2-{d.name}", created_at="2025-01-02T00:00:00Z") for d in ds]
    p = plan(project(max_destroy_percent=10), ds, observed + twins)
    assert [a.reason for a in p.actions] == ["duplicate"] * 12
    check_safety(p, ds, force=False)


def test_old_sides_of_an_older_hash_still_count() -> None:
    ds, observed = fleet(10)
    stale = [remote_for(d, f"old-{d.name}", hash_="aaaaaaaaaaaa") for d in ds]
    p = plan(project(max_destroy_percent=30), ds, observed + stale)
    assert all(a.reason.startswith("superseded by ") for a in p.actions)
    assert len(p.actions) == 10
    assert set(refuse(p, ds)) == {"maxDestroyPercent"}


def test_duplicates_marked_by_an_older_version_of_the_same_declaration_do_not_count() -> None:
    # Each declaration spells out a default, so an older version's marker for it carries
    # another hash that the declaration still matches (the keep rule keeps such a copy):
    # archiving its twin is no more a destroy than archiving an identical duplicate.
    ds = [desired(name, workflowMode="standard") for name in names(10)]
    # The copies this version made are older: kept; the older version's are archived.
    observed = [remote_for(d, f"id-{d.name}") for d in ds] + [
        remote_for(
            d,
            f"old-{d.name}",
            hash_=legacy_create_only_hash(d.spec),
            created_at="2025-01-02T00:00:00Z",
        )
        for d in ds
    ]
    assert all(d.spec_hash != legacy_create_only_hash(d.spec) for d in ds)
    p = plan(project(max_destroy_percent=30), ds, observed)
    assert [a.reason for a in p.actions] == ["duplicate"] * 10  # 10 of 20 managed
    assert {a.session_id for a in p.actions} == {f"old-{d.name}" for d in ds}
    check_safety(p, ds, force=False)


def test_identical_duplicates_still_meet_protect_live() -> None:
    ds, observed = _doubled(10)
    # The planner keeps the oldest twin; the younger one, archived, is live.
    observed[19] = remote_for(
        ds[9], "id-live", created_at="2025-01-02T00:00:00Z", loopStatus="running"
    )
    p = plan(project(max_destroy_percent=30), ds, observed)
    hit = refuse(p, ds)
    assert set(hit) == {"protectLive"}


GUARD = "reconciler:protected:platform"  # planner_fixtures' project


def test_a_protected_declaration_s_session_carries_the_protection_tag() -> None:
    guarded, plain_ = desired("a", prevent_destroy=True), desired("a")
    assert GUARD in remote_for(guarded, "s1").tags  # as the create wrote it
    assert GUARD not in remote_for(plain_, "s2").tags
    # The declaration changed: the tag follows, a change the manifest made.
    for d, made_as in ((guarded, plain_), (plain_, guarded)):
        (action,) = plan(project(), [d], [remote_for(made_as, "s1")]).actions
        assert action.kind == "update"
        assert (GUARD in action.body["tags"]) is d.lifecycle.prevent_destroy
        assert [(c.field, c.cause) for c in action.changes] == [("tags", "manifest")]
        assert plan(project(), [d], [remote_for(d, "s1")]).actions == ()
    # The tag taken off on the hub: drift, put back.
    edited = remote_for(
        guarded, "s1", tags=[t for t in remote_for(guarded, "s1").tags if t != GUARD]
    )
    (action,) = plan(project(), [guarded], [edited]).actions
    assert [(c.field, c.cause) for c in action.changes] == [("tags", "drift")]
    # A session written before records held the protection: the cause is unknown.
    older = [t.replace(",preventDestroy.0", "") for t in remote_for(plain_, "s1").tags]
    (action,) = plan(project(), [guarded], [remote_for(plain_, "s1", tags=older)]).actions
    assert [(c.field, c.cause) for c in action.changes] == [("tags", None)]


@pytest.mark.parametrize("flags", [{}, {"destroy": True}])
def test_a_session_no_longer_declared_keeps_its_recorded_protection(flags: dict) -> None:
    from reconciler.planner import Scope

    kept, gone = desired("kept"), desired("gone", prevent_destroy=True)
    observed = [remote_for(kept, "s1"), remote_for(gone, "s2")]
    result = plan(project(), [kept], observed, scope=Scope(**flags))
    archived = [a for a in result.actions if a.session_id == "s2"]
    assert [a.prevent_destroy for a in archived] == [True]
    for force in (False, True):
        found = refuse(result, [kept], force=force)
        assert found["preventDestroy"] == ("gone (s2)",)
    # Unprotected, the same plan only archives it.
    unguarded = [remote_for(kept, "s1"), remote_for(desired("gone"), "s2")]
    check_safety(plan(project(), [kept], unguarded, scope=Scope(**flags)), [kept], force=True)


def _as_written_before_tags(d, session_id: str):  # type: ignore[no-untyped-def]
    """The session an earlier version created for ``d``: no protection tag, and a
    last-applied record without the protection note; ``metadata`` as it wrote it."""
    from reconciler.planner.body import create_body

    body = create_body("platform", d)
    tags = [
        t.replace(",preventDestroy.1", "").replace(",preventDestroy.0", "") for t in body["tags"]
    ]
    tags = [t for t in tags if t != GUARD]
    return remote_for(d, session_id, tags=tags), {
        "sessionId": session_id,
        "metadata": body["metadata"],
    }


def test_a_session_from_before_the_tag_is_protected_by_its_create_time_record() -> None:
    from reconciler.planner import Scope, needs_detail

    kept, gone = desired("kept"), desired("gone", prevent_destroy=True)
    old_gone, detail = _as_written_before_tags(gone, "s2")
    old_plain, plain_detail = _as_written_before_tags(desired("plain"), "s3")
    observed = [remote_for(kept, "s1"), old_gone, old_plain]
    # Their tags cannot say, so the plan asks the hub for both (and for nothing else).
    assert needs_detail(project(), [kept], observed) == ("s2", "s3")
    assert needs_detail(project(prune="keep"), [kept], observed) == ()
    assert needs_detail(project(prune="keep"), [kept], observed, destroy=True) == ("s2", "s3")
    details = {"s2": detail, "s3": plain_detail}
    for flags in ({}, {"destroy": True}):
        result = plan(project(), [kept], observed, details=details, scope=Scope(**flags))
        guards = {a.session_id: a.prevent_destroy for a in result.actions if a.destroys}
        assert guards["s2"] is True and guards["s3"] is False
    # A session written by this version says it in its tags: no GET needed.
    assert needs_detail(project(), [kept], [remote_for(gone, "s4")]) == ()


def test_a_duplicate_of_a_protected_session_is_refused_even_when_identical() -> None:
    # An older session carrying a copy of the marker is what the keep rule keeps: were
    # identical duplicates exempt, the protected session itself would be archived.
    d = desired("vault", prevent_destroy=True)
    copy = remote_for(d, "s0", created_at="2024-12-31T00:00:00Z", tags=[d.marker_tag("platform")])
    real = remote_for(d, "s1")
    result = plan(project(), [d], [copy, real])
    assert [(a.kind, a.session_id) for a in result.actions if a.destroys] == [("archive", "s1")]
    assert refuse(result, [d], force=True) == {"preventDestroy": ("vault (s1)",)}
