"""Apply reports as JSON documents (``apply --format json``).

The plan's own document (``plan --format json``, saved plans) is
:mod:`reconciler.planfile`; a report carries the same format version.
"""

from __future__ import annotations

from typing import Any

from reconciler.model import ActionResult, ApplyReport
from reconciler.planfile import FORMAT_VERSION

__all__ = ["report_to_dict"]


def _result_to_dict(r: ActionResult) -> dict[str, Any]:
    return {
        "kind": r.action.kind,
        "name": r.action.name,
        "reason": r.action.reason,
        "sessionId": r.session_id or r.action.session_id,
        "outcome": r.outcome,
        "durationS": round(r.duration_s, 3),
        "error": r.error,
    }


def report_to_dict(report: ApplyReport) -> dict[str, Any]:
    """An apply report as JSON: one entry per action, outcome counts, interrupted flag;
    ``hubUnreachable`` when connections kept failing, and ``duplicates``: archives of
    sessions a concurrent apply made with this run's markers (one entry each)."""
    outcomes = ("succeeded", "adopted", "failed", "skipped", "noop")
    return {
        "formatVersion": FORMAT_VERSION,
        "interrupted": report.interrupted,
        "hubUnreachable": report.unreachable,
        "summary": {o: sum(1 for r in report.results if r.outcome == o) for o in outcomes},
        "results": [_result_to_dict(r) for r in report.results],
        "duplicates": [_result_to_dict(r) for r in report.duplicates],
        "duplicatesError": report.duplicates_error,
        # Policies lifted by --override-policy for this run (names).
        "policyOverrides": list(report.policy_overrides),
    }
