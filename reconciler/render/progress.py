"""The text of apply progress: one line per finished action, a bar, a summary.

Pure formatting; the CLI decides where it goes (stderr) and whether a bar is drawn.

    [3/40] + nightly-triage created codesess_9f2 0.4s
    [4/40] ~ docs-sweep updated codesess_1a7 0.1s
    [5/40] + flaky-tests FAILED: POST /hub/session HTTP 400 ... 0.0s
"""

from __future__ import annotations

from collections import Counter

from reconciler.model import ActionKind, ActionResult, ApplyReport
from reconciler.render.text import SYMBOLS  # the plan's symbols, so lines match it
from reconciler.render.values import escape_controls

__all__ = ["VERBS", "format_bar", "format_result", "format_summary"]

VERBS: dict[ActionKind, str] = {
    "create": "created",
    "update": "updated",
    "replace": "replaced",
    "resume": "resumed",
    "archive": "archived",
    "delete": "deleted",
}
_NOOP_VERBS: dict[ActionKind, str] = {
    "archive": "already archived",
    "delete": "already deleted",
}


def _what(result: ActionResult) -> str:
    kind = result.action.kind
    if result.outcome == "failed":
        return f"FAILED: {result.error}"
    if result.outcome == "skipped":
        return result.error or "skipped"
    if result.outcome == "noop":
        return _NOOP_VERBS.get(kind, "nothing to do")
    verb = VERBS[kind]
    if result.outcome == "adopted":
        # The create's answer was lost but the session was found by its marker.
        verb += " (adopted after a lost answer)"
    return verb


def format_result(result: ActionResult, done: int, total: int) -> str:
    """``[done/total] <symbol> <name> <what> [<session id>] <seconds>s``.

    The hub's error text and the session id come from the network: control and bidi
    characters in them are escaped, as in plans.
    """
    parts = [f"[{done}/{total}]", SYMBOLS[result.action.kind], result.action.name, _what(result)]
    if result.session_id and result.outcome not in ("failed", "skipped"):
        parts.append(result.session_id)
    parts.append(f"{result.duration_s:.1f}s")
    return escape_controls(" ".join(parts))


def format_bar(done: int, total: int, *, width: int = 30) -> str:
    """``[#########.....................]  9/30`` (for a terminal, redrawn in place)."""
    filled = width if total == 0 else (width * done) // total
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def format_summary(report: ApplyReport, elapsed_s: float) -> str:
    """``Apply complete: 38 succeeded, 1 adopted, 1 failed, 0 skipped (40 actions, 4.2s).``"""
    counts = Counter(r.outcome for r in report.results)
    head = (
        "Apply interrupted"
        if report.interrupted
        else ("Apply finished with failures" if counts["failed"] else "Apply complete")
    )
    parts = [f"{counts['succeeded']} succeeded"]
    for outcome in ("adopted", "noop"):
        if counts[outcome]:
            parts.append(f"{counts[outcome]} {'already done' if outcome == 'noop' else outcome}")
    parts += [f"{counts['failed']} failed", f"{counts['skipped']} skipped"]
    n = len(report.results)
    noun = "action" if n == 1 else "actions"
    return f"{head}: {', '.join(parts)} ({n} {noun}, {elapsed_s:.1f}s)."
