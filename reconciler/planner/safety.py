"""Safety rules, checked on a Plan (at plan time, and again by apply).

- ``preventDestroy``: any archive, delete or replace of a session whose manifest says
  ``lifecycle.preventDestroy``. ``--force`` cannot lift it.
- ``maxDestroyPercent``: destroying actions (archive, delete, replace) above
  ``policy.maxDestroyPercent`` of the managed sessions, when 10 or more are managed.
- ``removeAll``: the plan archives or deletes every managed session (replacements
  leave a successor, so they do not count here).
- ``protectLive``: an archive, delete or replace of a live session (loop running,
  starting or awaiting input, or participants connected).

Archiving a duplicate is an archive like any other: it counts towards every rule.
"Managed sessions" are this project's sessions that are not archived-like.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.errors import SafetyError, SafetyViolation
from reconciler.model import Action, DesiredSession, Plan

__all__ = ["check_safety", "safety_violations"]

_MIN_MANAGED_FOR_PERCENT = 10


def _label(action: Action) -> str:
    return f"{action.name} ({action.session_id})" if action.session_id else action.name


def safety_violations(plan: Plan, desired: Sequence[DesiredSession] = ()) -> list[SafetyViolation]:
    """Every rule the plan breaks, whether or not ``--force`` would lift it."""
    guarded = {d.name for d in desired if d.lifecycle.prevent_destroy}
    destroying = [a for a in plan.actions if a.destroys]
    violations: list[SafetyViolation] = []

    hit = [a for a in destroying if a.prevent_destroy or a.name in guarded]
    if hit:
        violations.append(
            SafetyViolation(
                rule="preventDestroy",
                message="the plan would archive, delete or replace a protected session",
                sessions=tuple(_label(a) for a in hit),
                overridable=False,
            )
        )

    managed = plan.managed_count
    limit = plan.policy.max_destroy_percent
    if managed >= _MIN_MANAGED_FOR_PERCENT and len(destroying) * 100 > limit * managed:
        violations.append(
            SafetyViolation(
                rule="maxDestroyPercent",
                message=(
                    f"{len(destroying)} of {managed} managed sessions would be archived, "
                    f"deleted or replaced, above the limit of {limit:g}%"
                ),
                sessions=tuple(_label(a) for a in destroying),
                overridable=True,
            )
        )

    removed = [a for a in plan.actions if a.kind in ("archive", "delete")]
    if managed >= 1 and len({a.session_id for a in removed}) >= managed:
        violations.append(
            SafetyViolation(
                rule="removeAll",
                message=f"the plan would remove every managed session ({managed})",
                sessions=tuple(_label(a) for a in removed),
                overridable=True,
            )
        )

    if plan.policy.protect_live:
        touching = [a for a in destroying if a.live]
        if touching:
            violations.append(
                SafetyViolation(
                    rule="protectLive",
                    message="the plan would archive, delete or replace a live session",
                    sessions=tuple(_label(a) for a in touching),
                    overridable=True,
                )
            )
    return violations


def check_safety(plan: Plan, desired: Sequence[DesiredSession] = (), *, force: bool) -> None:
    """Raise :class:`SafetyError` naming every rule broken and every session it hits.

    ``force`` lifts every rule but ``preventDestroy``.
    """
    violations = [v for v in safety_violations(plan, desired) if not force or not v.overridable]
    if violations:
        raise SafetyError(violations)
