"""Twins two applies of the same manifests made stay exempt from maxDestroyPercent
whatever happened to the declaration since (the record is not rewritten while no field
differs): they are told from a copied marker by carrying the same record as each other."""

from __future__ import annotations

from planner_fixtures import desired, item_for, project

from reconciler.model import RemoteSession
from reconciler.planner import check_safety, plan
from reconciler.planner.applied import APPLIED_PREFIX


def _twins(ds, tag_of=None, label_of=None):
    out = []
    for d in ds:
        for sid, at in (
            (f"id-{d.name}", "2025-01-01T00:00:00Z"),
            (f"id2-{d.name}", "2025-01-02T00:00:00Z"),
        ):
            item = item_for(d, sid, created_at=at)
            if tag_of is not None:
                item["tags"] = [tag_of(d, t) for t in item["tags"]]
            if label_of is not None:
                item["label"] = label_of(d)
            out.append(RemoteSession.from_api(item))
    return out


def _duplicate_archives(p):
    return [a for a in p.actions if a.kind == "archive"]


def test_twins_of_a_plain_env_label_changed_since_are_exempt() -> None:
    """12 twin pairs two applies of the same manifests made with GIT_BRANCH=main; the
    next apply runs with GIT_BRANCH=dev (label: "Triage ${env:GIT_BRANCH}")."""
    written = [desired(f"s{i:02d}", label="Triage main") for i in range(12)]
    now = [
        desired(
            f"s{i:02d}", label="Triage ${env:GIT_BRANCH}", resolved=dict(d.spec, label="Triage dev")
        )
        for i, d in enumerate(written)
    ]
    observed = _twins(written)
    p = plan(project(max_destroy_percent=10), now, observed)
    archives = _duplicate_archives(p)
    assert len(archives) == 12
    reasons = {a.reason for a in archives}
    assert reasons == {"duplicate"}, reasons
    check_safety(p, now, force=False)


def test_twins_whose_record_predates_the_protection_note_are_exempt() -> None:
    """Twins an older version (before 6337359: records without preventDestroy.N) made;
    nothing differs, so no update ever rewrites the record."""
    ds = [desired(f"s{i:02d}") for i in range(12)]

    def old(d, t):
        if t.startswith(APPLIED_PREFIX):
            return t.replace(",preventDestroy.0", "")
        return t

    observed = _twins(ds, tag_of=old)
    p = plan(project(max_destroy_percent=10), ds, observed)
    assert [a.kind for a in p.actions] == ["archive"] * 12  # no update refreshes the record
    reasons = {a.reason for a in p.actions}
    assert reasons == {"duplicate"}, reasons
    check_safety(p, ds, force=False)


def test_twins_after_ignore_changes_added_are_exempt() -> None:
    """Twins made; the declaration then adds ignoreChanges: [label] (nothing to update,
    so the record, which names label, is never rewritten)."""
    written = [desired(f"s{i:02d}") for i in range(12)]
    now = [desired(f"s{i:02d}", ignore=("label",)) for i in range(12)]
    observed = _twins(written)
    p = plan(project(max_destroy_percent=10), now, observed)
    assert [a.kind for a in p.actions] == ["archive"] * 12
    reasons = {a.reason for a in p.actions}
    assert reasons == {"duplicate"}, reasons
    check_safety(p, now, force=False)
