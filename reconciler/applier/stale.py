"""Whether a saved plan still matches the hub, action by action.

A saved plan was made against what the hub showed then; applying it later is only
safe if nothing it relies on moved. For an action on a session, that session must
still exist with the same fingerprint (status, label, visibility, agent, tags,
skills), and a destroying action planned on an idle session must not meet a live one.
For a create, no session of that name may have appeared since (another apply made
it); for a replacement, no session with the new marker.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.errors import StalePlanError
from reconciler.model import Plan, RemoteSession
from reconciler.planner.fingerprint import fingerprint

__all__ = ["check_stale", "stale_actions"]


def stale_actions(plan: Plan, observed: Iterable[RemoteSession]) -> list[str]:
    """One ``"<kind> <name>: <why>"`` per action that no longer matches ``observed``."""
    sessions = list(observed)
    by_id = {s.session_id: s for s in sessions}
    present = [s for s in sessions if not s.archived_like]
    stale: list[str] = []
    for action in plan.actions:
        label = f"{action.kind} {action.name}"
        if action.kind == "create":
            other = _named(present, plan.project, action.name)
            if other is not None:
                stale.append(f"{label}: session {other} of that name now exists")
                continue
        new_marker = action.marker_tag if action.kind == "replace" else None
        if new_marker is not None:
            other = next((s.session_id for s in present if new_marker in s.tags), None)
            if other is not None:
                stale.append(f"{label}: its new session {other} already exists")
                continue
        if action.session_id is None:
            continue
        current = by_id.get(action.session_id)
        if current is None:
            stale.append(f"{label}: session {action.session_id} no longer exists")
        elif fingerprint(current) != action.precondition:
            stale.append(f"{label}: session {action.session_id} changed since the plan was made")
        elif action.destroys and not action.live and current.live:
            stale.append(f"{label}: session {action.session_id} is live now")
    return stale


def _named(sessions: list[RemoteSession], project: str, name: str) -> str | None:
    for s in sessions:
        if any(m.project == project and m.name == name for m in s.markers()):
            return s.session_id
    return None


def check_stale(plan: Plan, observed: Iterable[RemoteSession]) -> None:
    """Raise ``StalePlanError`` naming every stale action; return when none is."""
    stale = stale_actions(plan, observed)
    if stale:
        raise StalePlanError(stale)
