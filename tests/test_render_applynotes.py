"""What an apply says after its summary, in text and in the JSON report."""

from __future__ import annotations

from reconciler.model import Action, ActionResult, ApplyReport
from reconciler.render.applynotes import apply_notes
from reconciler.render.jsondoc import report_to_dict


def _dup(sid: str, outcome: str, error: str | None = None) -> ActionResult:
    action = Action(
        "archive",
        "alpha",
        reason="duplicate made by a concurrent apply; kept s1, the oldest",
        session_id=sid,
    )
    return ActionResult(action, outcome, session_id=sid, error=error)  # type: ignore[arg-type]


def test_duplicates_are_listed_then_counted() -> None:
    report = ApplyReport(
        results=(),
        duplicates=(
            _dup("s2", "succeeded"),
            _dup("s3", "noop"),
            _dup("s4", "skipped", "not archived: the session is live and protectLive forbids it"),
            _dup("s5", "failed", "HTTP 500"),
        ),
    )
    assert apply_notes(report) == [
        "- alpha s2 archived: duplicate made by a concurrent apply; kept s1, the oldest",
        "- alpha s3 already archived: duplicate made by a concurrent apply; kept s1, the oldest",
        "- alpha s4 left alone: not archived: the session is live and protectLive forbids it",
        "- alpha s5 FAILED to archive: HTTP 500",
        "Duplicates of this apply's sessions, made by a concurrent apply: 2 archived, "
        "1 left (live), 1 failed.",
    ]
    document = report_to_dict(report)
    assert [(d["sessionId"], d["outcome"]) for d in document["duplicates"]] == [
        ("s2", "succeeded"),
        ("s3", "noop"),
        ("s4", "skipped"),
        ("s5", "failed"),
    ]
    assert document["hubUnreachable"] is False and document["duplicatesError"] is None
    assert [r.session_id for r in report.failed] == ["s5"]


def test_unreachable_and_a_failed_settlement_are_said() -> None:
    create = Action("create", "a")
    report = ApplyReport(
        results=(
            ActionResult(create, "failed", error="hub unreachable: cannot connect"),
            ActionResult(create, "skipped", error="not started: hub unreachable"),
        ),
        unreachable=True,
        duplicates_error="GET /hub/sessions: HTTP 500",
    )
    notes = apply_notes(report)
    assert notes[0] == "Duplicates not settled: GET /hub/sessions: HTTP 500"
    assert notes[1].startswith("Hub unreachable: connections kept failing, so 1 actions were")
    document = report_to_dict(report)
    assert document["hubUnreachable"] is True
    assert document["duplicatesError"] == "GET /hub/sessions: HTTP 500"
    assert apply_notes(ApplyReport(results=())) == []
