"""maxDestroyPercent and twins: a marker copied onto a real session is never a twin, a
real twin is one whatever an interrupted apply updated (planner.core._a_twin)."""

from __future__ import annotations

import pytest
from planner_fixtures import PROJECT, desired, item_for, project

from reconciler.errors import SafetyError
from reconciler.model import RemoteSession
from reconciler.planner import check_safety, plan


def _at(i: int) -> str:
    return f"2025-01-{i + 1:02d}T00:00:00Z"


def test_a_marker_prepended_onto_a_younger_real_session_counts() -> None:
    """F1: 12 real sessions with different tasks (same label/agent/visibility/tags, so
    the same record). A member prepends s(i)'s marker onto the younger session s(i+1):
    the plan keeps s(i) (one marker, its own record) and archives the real s(i+1) as a
    duplicate; it holds two of the project's markers, which no apply leaves: counted,
    so 6 of 12 real sessions archived is refused under maxDestroyPercent 10."""
    ds = [desired(f"s{i:02d}", task=f"task {i}") for i in range(12)]
    items = [item_for(d, f"id-{d.name}", created_at=_at(i)) for i, d in enumerate(ds)]
    for i in range(0, 12, 2):
        items[i + 1]["tags"] = [ds[i].marker_tag(PROJECT), *items[i + 1]["tags"]]
    p = plan(project(max_destroy_percent=10), ds, [RemoteSession.from_api(x) for x in items])
    archives = [a for a in p.actions if a.kind == "archive"]
    assert sorted(a.session_id for a in archives) == [f"id-s{i:02d}" for i in range(1, 12, 2)]
    assert "duplicate" not in {a.reason for a in archives}
    with pytest.raises(SafetyError):
        check_safety(p, ds, force=False)


def _twin_pairs(written, kept_as=None, project_name=PROJECT, dup_project=PROJECT):
    """Twin pairs of ``written`` (id-: kept, oldest; id2-: duplicate). ``kept_as``: the
    declaration the kept one was last updated to (its record rewritten by phase 1 of an
    apply whose archive phase then did not run)."""
    out = []
    for i, d in enumerate(written):
        k = kept_as[i] if kept_as else d
        out.append(
            RemoteSession.from_api(
                item_for(
                    k, f"id-{d.name}", created_at="2025-01-01T00:00:00Z", project_name=project_name
                )
            )
        )
        out.append(
            RemoteSession.from_api(
                item_for(
                    d, f"id2-{d.name}", created_at="2025-01-02T00:00:00Z", project_name=dup_project
                )
            )
        )
    return out


def test_twins_are_exempt_after_an_apply_updated_the_kept_but_not_archived() -> None:
    """12 twin pairs, a plainEnv label changed (main -> dev). The
    apply runs phase 1 (12 updates: kept's record becomes dev's) and then its archive
    phase does not run (interrupted, or keep_last_copies' re-listing failed, which
    fails every duplicate archive). The kept carries the record an apply of the
    declaration writes now: still twins, exempt."""
    written = [desired(f"s{i:02d}", label="Triage main") for i in range(12)]
    now = [
        desired(
            f"s{i:02d}", label="Triage ${env:GIT_BRANCH}", resolved=dict(d.spec, label="Triage dev")
        )
        for i, d in enumerate(written)
    ]
    updated = [desired(f"s{i:02d}", label="Triage dev") for i in range(12)]
    p = plan(project(max_destroy_percent=10), now, _twin_pairs(written, kept_as=updated))
    assert [a.kind for a in p.actions] == ["archive"] * 12
    check_safety(p, now, force=False)
