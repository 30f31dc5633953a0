"""``forget NAME``: a plan that stops managing a session and changes nothing else.

Like ``terraform state rm``: every session the plan owns as NAME (archived ones
included, so no later plan reads them as "its last session is archived") gets one
``update`` whose PATCH body is its tags without this project's markers, last-applied
record and protection tag. Ownership is the plan's own (``planner.core.ownership``): a
session still tagged under one of the Project's ``previously`` names, or under a name
a declaration says it had before, is found and forgotten as the plan would manage it.
Label, task, loop and participants are untouched; the session stays where it is.

A NAME still declared in the manifests is refused (rule ``stillDeclared``, exit 3)
unless ``--force``: the next plan would create a new session under that name, which
is rarely what a user forgetting it wants. The manifest entry goes first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from reconciler.errors import SafetyError, SafetyViolation
from reconciler.model import (
    Action,
    DesiredSession,
    FieldChange,
    Marker,
    Plan,
    Project,
    SourceLocation,
)
from reconciler.planner.applied import is_applied_tag, is_protected_tag
from reconciler.planner.fingerprint import fingerprint
from reconciler.planner.ownership import Managed

__all__ = ["REASON_FORGET", "check_forget", "forget_actions", "plan_forget"]

REASON_FORGET = "forget: marker removed, no longer managed"


def forget_actions(
    project: Project,
    name: str,
    entries: Sequence[Managed],
    *,
    reason: str = REASON_FORGET,
    source: SourceLocation | None = None,
) -> list[Action]:
    """One tag update per session of ``entries`` (those managed as ``name``): off go
    this project's markers (its old names' too), its protection and its last-applied
    record; nothing else changes. What ``forget`` plans, and a declaration with
    ``state: forgotten``."""
    names = {project.name, *project.previously}
    actions = []
    for managed in entries:
        remote = managed.remote
        markers = tuple(t for t in remote.tags if _ours(Marker.parse(t), names))
        # The protection and the last-applied record go with the markers: nothing
        # manages the session any more. The plan shows each tag going.
        guards = tuple(t for t in remote.tags if is_protected_tag(t, names))
        records = tuple(t for t in remote.tags if any(is_applied_tag(t, n) for n in names))
        ours = (*markers, *guards, *records)
        actions.append(
            Action(
                kind="update",
                name=name,
                reason=reason,
                session_id=remote.session_id,
                body={"tags": [t for t in remote.tags if t not in ours]},
                changes=(FieldChange("tags", removed=ours),),
                precondition=fingerprint(remote),
                marker_tag=managed.marker.tag,
                live=remote.live,
                source=source,
            )
        )
    return actions


def plan_forget(project: Project, index: Mapping[str, Sequence[Managed]], name: str) -> Plan:
    """One tag update per session ``index`` (``planner.core.ownership``) owns as
    ``name``; no other change."""
    return Plan(
        project=project.name,
        actions=tuple(forget_actions(project, name, index.get(name, []))),
        org_id=project.org_id,
        managed_count=sum(1 for v in index.values() for m in v if not m.remote.archived_like),
        policy=project.policy,
    )


def _ours(marker: Marker | None, names: set[str]) -> bool:
    return marker is not None and marker.project in names


def check_forget(name: str, desired: Sequence[DesiredSession], *, force: bool) -> None:
    """Raise :class:`SafetyError` (exit 3) when ``name`` is still declared active or
    archived, unless ``force`` (declared ``state: forgotten``, no plan would create it)."""
    declared = [d for d in desired if d.name == name and d.state != "forgotten"]
    if not declared or force:
        return
    where = declared[0].source
    at = f" at {where}" if where is not None else ""
    raise SafetyError(
        [
            SafetyViolation(
                rule="stillDeclared",
                message=(
                    f"the session is still declared{at}, so the next plan would create it "
                    "again (remove it from the manifests first, or declare it "
                    "`state: forgotten`)"
                ),
                sessions=(name,),
                overridable=True,
            )
        ]
    )
