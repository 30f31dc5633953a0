"""`reconciler status`: one row per managed session, with its sync word."""

from __future__ import annotations

import json

from reconciler import planner
from reconciler.cli.status import render_status_text
from reconciler.status import status_rows, status_to_dict
from tests.planner_fixtures import PROJECT, desired, project, remote_for, sample_plan_inputs


def _rows(proj, desired_, observed, details=None):  # type: ignore[no-untyped-def]
    plan = planner.plan(proj, desired_, observed, details=details or {})
    return status_rows(proj.name, plan, desired_, observed)


def test_every_sync_word_from_the_plan() -> None:
    proj, desired_, observed, details = sample_plan_inputs()
    rows = _rows(proj, desired_, observed, details)
    assert [(r.name, r.session_id, r.sync) for r in rows] == [
        ("api-fix", None, "missing"),
        ("docs-bot", "codesess_docs", "drifted"),
        ("nightly", "codesess_nightly", "replace"),
        ("old-report", "codesess_old", "orphan"),
        ("worker", "codesess_worker", "drifted"),
    ]
    # The other team's session is never listed.
    assert all(r.session_id != "codesess_foreign" for r in rows)


def test_in_sync_and_loop_columns() -> None:
    d = desired("triage")
    r = remote_for(
        d,
        "codesess_t",
        loopStatus="running",
        loopIteration=3,
        lastActivityAt="2025-01-02T00:00:00Z",
    )
    (row,) = _rows(project(), [d], [r])
    assert (row.sync, row.loop_status, row.loop_iteration, row.last_activity_at) == (
        "in-sync",
        "running",
        3,
        "2025-01-02T00:00:00Z",
    )


def test_declared_archived_is_in_sync_when_absent_or_archived_and_pending_when_live() -> None:
    d = desired("old", state="archived")
    (absent,) = _rows(project(), [d], [])
    assert (absent.sync, absent.session_id) == ("in-sync", None)
    archived = remote_for(d, "codesess_a", status="archived")
    (done,) = _rows(project(), [d], [archived])
    assert (done.sync, done.status) == ("in-sync", "archived")
    live = remote_for(d, "codesess_l")
    (pending,) = _rows(project(), [d], [live])
    # The manifests declare the archive: a pending change, not the hub's.
    assert (pending.sync, pending.session_id) == ("pending", "codesess_l")


def test_prune_keep_still_shows_orphans_and_archived_history_is_hidden() -> None:
    gone = desired("gone")
    live = remote_for(gone, "codesess_live")
    history = remote_for(gone, "codesess_hist", status="archived")
    rows = _rows(project(prune="keep"), [], [live, history])
    assert [(r.session_id, r.sync) for r in rows] == [("codesess_live", "orphan")]


def test_duplicates_show_the_kept_one_and_orphans() -> None:
    d = desired("dup")
    old = remote_for(d, "codesess_old", created_at="2025-01-01T00:00:00Z")
    new = remote_for(d, "codesess_new", created_at="2025-02-01T00:00:00Z")
    rows = _rows(project(), [d], [old, new])
    assert [(r.session_id, r.sync) for r in rows] == [
        ("codesess_old", "in-sync"),
        ("codesess_new", "orphan"),
    ]


def test_text_and_json_forms() -> None:
    proj, desired_, observed, details = sample_plan_inputs()
    rows = _rows(proj, desired_, observed, details)
    text = render_status_text(rows)
    lines = text.splitlines()
    assert lines[0].split() == [
        "NAME",
        "SESSION",
        "STATUS",
        "LOOP",
        "ITERATION",
        "LAST",
        "ACTIVITY",
        "SYNC",
    ]
    assert lines[1].split() == ["api-fix", "-", "-", "-", "-", "-", "missing"]
    assert lines[-1] == "5 session(s): 2 drifted, 1 replace, 1 missing, 1 orphan"
    doc = json.loads(json.dumps(status_to_dict(PROJECT, rows)))
    assert doc["summary"] == {
        "in-sync": 0,
        "pending": 0,
        "drifted": 2,
        "differs": 0,
        "replace": 1,
        "missing": 1,
        "orphan": 1,
    }
    assert doc["sessions"][1]["sessionId"] == "codesess_docs"
