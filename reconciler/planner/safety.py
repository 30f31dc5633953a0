"""Safety rules, checked on a Plan (at plan time, and again by apply).

- ``preventDestroy``: any archive, delete or replace of a session whose manifest says
  ``lifecycle.preventDestroy``, or, no longer declared, whose last apply recorded it
  (``planner.applied``'s protection tag). ``--force`` cannot lift it.
- ``maxDestroyPercent``: destroying actions (archive, delete, replace) above
  ``policy.maxDestroyPercent`` of the managed sessions, when 10 or more are managed.
- ``removeAll``: the plan archives or deletes every managed session (replacements
  leave a successor, so they do not count here).
- ``protectLive``: an archive, delete or replace of a live session (loop running,
  starting or awaiting input, or participants connected).
- ``policy <name>``: a ``deny`` rule of a ``kind: Policy`` document that the plan's
  ``findings`` hold and no ``--override-policy`` lifted. ``--force`` cannot lift it.
- ``createOnlyDiffers``: an ``adopt:`` line naming a session whose create-only fields
  differ from the declaration (``Plan.refused_adoptions``), as ``import`` refuses it.
  ``--force`` cannot lift it.

Archiving a duplicate counts towards every rule, except one kind for
``maxDestroyPercent``: an identical duplicate, a session whose marker (same name, same
create-only hash) a session that stays carries too. The tool made both (two applies at
once); archiving one loses nothing. ``preventDestroy`` still counts it: the marker
cannot tell the protected session from a copy that carries its tag. "Managed sessions"
are this project's sessions that are not archived-like.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from reconciler.errors import SafetyError, SafetyViolation
from reconciler.model import (
    Action,
    DesiredSession,
    Marker,
    Plan,
    PolicyFinding,
)
from reconciler.planner.core import REASON_DUPLICATE
from reconciler.planner.replacement import create_only_violation

__all__ = [
    "check_safety",
    "identical_duplicates",
    "policy_violations",
    "refusals",
    "safety_violations",
]

_MIN_MANAGED_FOR_PERCENT = 10


def _label(action: Action) -> str:
    return f"{action.name} ({action.session_id})" if action.session_id else action.name


def identical_duplicates(plan: Plan, desired: Sequence[DesiredSession]) -> list[Action]:
    """The plan's archives of duplicates of a declaration that a session which stays
    still carries: its marker matches the declaration the way the keep rule matches it
    (``DesiredSession.matches``: this version's hash, or the one older versions wrote
    for the same declaration). Every plan that is checked (a saved one too: ``apply
    --plan`` plans again from the manifests) has its declarations at hand.
    """
    duplicates = [a for a in plan.actions if a.kind == "archive" and a.reason == REASON_DUPLICATE]
    if not duplicates:  # the usual plan: no declaration to look up
        return []
    active = {d.name: d for d in desired if d.state == "active"}

    def identical(tag: str | None) -> bool:
        marker = Marker.parse(tag) if tag is not None else None
        if marker is None or marker.project != plan.project or marker.name not in active:
            return False
        return active[marker.name].matches(marker.hash)

    return [a for a in duplicates if identical(a.marker_tag)]


def safety_violations(plan: Plan, desired: Sequence[DesiredSession] = ()) -> list[SafetyViolation]:
    """Every rule the plan breaks, whether or not ``--force`` would lift it."""
    destroying = [a for a in plan.actions if a.destroys]
    # Only what the plan destroys is looked up (a plan without changes: nothing).
    guarded = {d.name for d in desired if d.lifecycle.prevent_destroy} if destroying else set()
    identical = {id(a) for a in identical_duplicates(plan, desired)}
    counted = [a for a in destroying if id(a) not in identical]
    violations: list[SafetyViolation] = []

    # Even an identical duplicate: which of two sessions carrying the same marker is the
    # protected one, the marker cannot say (anyone can copy a tag onto an older session,
    # which the keep rule would then keep). The settlement right after an apply archives
    # the twins that apply made; a later one is archived by hand.
    hit = [a for a in destroying if a.prevent_destroy or a.name in guarded]
    if hit:
        message = "the plan would archive, delete or replace a protected session"
        declared = {d.name for d in desired}
        if any(a.name not in declared for a in hit):
            message += (
                " (one no longer declared keeps the preventDestroy its last apply recorded: "
                "declare it again without preventDestroy, or forget it)"
            )
        violations.append(
            SafetyViolation(
                rule="preventDestroy",
                message=message,
                sessions=tuple(_label(a) for a in hit),
                overridable=False,
            )
        )

    managed = plan.managed_count
    limit = plan.policy.max_destroy_percent
    if managed >= _MIN_MANAGED_FOR_PERCENT and len(counted) * 100 > limit * managed:
        violations.append(
            SafetyViolation(
                rule="maxDestroyPercent",
                message=(
                    f"{len(counted)} of {managed} managed sessions would be archived, "
                    f"deleted or replaced, above the limit of {limit:g}%"
                ),
                sessions=tuple(_label(a) for a in counted),
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
    violations.extend(create_only_violation(r.label, r.fields) for r in plan.refused_adoptions)
    violations.extend(policy_violations(plan.findings))
    return violations


def policy_violations(findings: Iterable[PolicyFinding]) -> list[SafetyViolation]:
    """One violation per deny finding that no ``--override-policy`` lifted."""
    return [_policy_violation(f) for f in findings if f.refuses]


def _policy_violation(finding: PolicyFinding) -> SafetyViolation:
    """``refused by policy NAME (rule file:line): message: session (file:line)``."""
    rule = f"policy {finding.policy}"
    if finding.rule_source is not None:
        rule += f" ({finding.rule_source})"
    message = finding.message
    if finding.overridable:
        # plan and apply take it alike (a plan saved with --out lifts it for its apply).
        message += f" [--override-policy {finding.policy} lifts it]"
    if finding.session is None:
        sessions: tuple[str, ...] = ("the plan",)
    elif finding.session_source is not None:
        sessions = (f"{finding.session} ({finding.session_source})",)
    else:
        sessions = (finding.session,)
    lifted_by = f"--override-policy {finding.policy}" if finding.overridable else None
    return SafetyViolation(
        rule=rule, message=message, sessions=sessions, overridable=False, lifted_by=lifted_by
    )


def check_safety(
    plan: Plan,
    desired: Sequence[DesiredSession] = (),
    *,
    force: bool,
) -> None:
    """Raise :class:`SafetyError` naming every rule broken and every session it hits.

    ``force`` lifts every rule but ``preventDestroy``.
    """
    violations = refusals(plan, desired, force=force)
    if violations:
        raise SafetyError(violations)


def refusals(
    plan: Plan, desired: Sequence[DesiredSession] = (), *, force: bool
) -> list[SafetyViolation]:
    """The rules that refuse the plan: every one it breaks that ``force`` does not lift
    (what :func:`check_safety` raises, and `plan --format json` shows)."""
    return [v for v in safety_violations(plan, desired) if not force or not v.overridable]
