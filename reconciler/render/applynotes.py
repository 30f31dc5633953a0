"""The lines an apply prints after its summary: duplicates settled, hub unreachable.

- triage codesess_9f2 archived: duplicate made by a concurrent apply; kept ...
Duplicates of this apply's sessions, made by a concurrent apply: 1 archived, ...
"""

from __future__ import annotations

from reconciler.model import ActionResult, ApplyReport

__all__ = ["AGAIN", "AGAIN_SAVED", "apply_notes", "next_step"]

_DONE = {"succeeded": "archived", "noop": "already archived"}


def _duplicate_line(result: ActionResult) -> str:
    action = result.action
    what = _DONE.get(result.outcome)
    if what is not None:
        return f"- {action.name} {result.session_id} {what}: {action.reason}"
    if result.outcome == "skipped":
        return f"- {action.name} {result.session_id} left alone: {result.error}"
    return f"- {action.name} {result.session_id} FAILED to archive: {result.error}"


# What to do after an apply that did part of its work. A saved plan partly applied is
# refused by `apply --plan` from then on (it is not what a fresh plan does), so its next
# step is a new plan; from manifests, the next apply finishes the work.
AGAIN = "apply again"
AGAIN_SAVED = (
    "this saved plan is now partly applied and `apply --plan` refuses it: make a new plan "
    "(`plan --out`), review it and apply that"
)


def next_step(saved: bool) -> str:
    return AGAIN_SAVED if saved else AGAIN


def apply_notes(report: ApplyReport, *, saved: bool = False) -> list[str]:
    """What a person must know beyond the per-action lines and the summary (``saved``:
    the run applied a saved plan)."""
    lines: list[str] = []
    if report.duplicates:
        lines += [_duplicate_line(r) for r in report.duplicates]
        outcomes = [r.outcome for r in report.duplicates]
        archived = outcomes.count("succeeded") + outcomes.count("noop")
        lines.append(
            "Duplicates of this apply's sessions, made by a concurrent apply: "
            f"{archived} archived, {outcomes.count('skipped')} left (live), "
            f"{outcomes.count('failed')} failed."
        )
    if report.duplicates_error:
        lines.append(f"Duplicates not settled: {report.duplicates_error}")
    if report.policy_overrides:
        lines.append(
            "Policies overridden for this apply (--override-policy): "
            + ", ".join(report.policy_overrides)
        )
    if report.unreachable:
        skipped = sum(1 for r in report.results if r.outcome == "skipped")
        lines.append(
            f"Hub unreachable: connections kept failing, so {skipped} actions were not "
            "started (nothing was sent for those that could not connect); once the hub "
            f"answers, {next_step(saved)}."
        )
    return lines
