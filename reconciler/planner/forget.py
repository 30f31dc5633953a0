"""``forget NAME``: a plan that stops managing a session and changes nothing else.

Like ``terraform state rm``: every session carrying this project's marker for NAME
(archived ones included, so no later plan reads them as "archived outside
reconciler") gets one ``update`` whose PATCH body is its tags without those markers.
Label, task, loop and participants are untouched; the session stays where it is.

A NAME still declared in the manifests is refused (rule ``stillDeclared``, exit 3)
unless ``--force``: the next plan would create a new session under that name, which
is rarely what a user forgetting it wants. The manifest entry goes first.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.errors import SafetyError, SafetyViolation
from reconciler.model import (
    Action,
    DesiredSession,
    FieldChange,
    Marker,
    Plan,
    Project,
    RemoteSession,
)
from reconciler.planner.applied import is_applied_tag
from reconciler.planner.fingerprint import fingerprint
from reconciler.planner.ownership import managed_by_name

__all__ = ["REASON_FORGET", "check_forget", "plan_forget"]

REASON_FORGET = "forget: marker removed, no longer managed"


def plan_forget(project: Project, observed: Sequence[RemoteSession], name: str) -> Plan:
    """One tag update per session of ``project`` managed as ``name``; no other change."""
    index = managed_by_name(project.name, observed)
    actions = []
    for managed in index.get(name, []):
        remote = managed.remote
        markers = tuple(
            t for t in remote.tags if (m := Marker.parse(t)) and m.project == project.name
        )
        # The last-applied record goes with the markers: nothing manages it any more.
        ours = (*markers, *(t for t in remote.tags if is_applied_tag(t, project.name)))
        actions.append(
            Action(
                kind="update",
                name=name,
                reason=REASON_FORGET,
                session_id=remote.session_id,
                body={"tags": [t for t in remote.tags if t not in ours]},
                changes=(FieldChange("tags", removed=markers),),
                precondition=fingerprint(remote),
                marker_tag=managed.marker.tag,
                live=remote.live,
            )
        )
    return Plan(
        project=project.name,
        actions=tuple(actions),
        org_id=project.org_id,
        managed_count=sum(1 for v in index.values() for m in v if not m.remote.archived_like),
        policy=project.policy,
    )


def check_forget(name: str, desired: Sequence[DesiredSession], *, force: bool) -> None:
    """Raise :class:`SafetyError` (exit 3) when ``name`` is still declared, unless ``force``."""
    declared = [d for d in desired if d.name == name]
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
                    "again (remove it from the manifests first)"
                ),
                sessions=(name,),
                overridable=True,
            )
        ]
    )
