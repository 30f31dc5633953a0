"""The managed sessions of a project and whether each matches its manifest.

Pure: a Plan (as the planner made it, safety not applied), the desired sessions and
the observed ones in; one ``StatusRow`` per session out. The sync word:

- ``in-sync``: the plan has nothing to do for it (a session declared ``state:
  archived`` that is absent or already archived is in sync too: nothing to archive;
  so is a declaration ``state: forgotten`` that no session is managed as any more);
- ``pending``: the manifests changed since the last apply: an update of fields
  changed there, an archive (``state: archived``) or a forget (``state: forgotten``),
  is to be applied;
- ``drifted``: the hub changed since the last apply: an update of a field someone
  changed there, or a resume (paused outside the tool);
- ``differs``: an update is to be applied, and the session carries no last-applied
  record for the field, so which side changed is unknown;
- ``replace``: create-only fields differ: apply would replace it;
- ``missing``: declared active, no live managed session: apply would create it (one
  to ``adopt`` is ``pending``: apply would tag the session it names, or refuses to when
  its create-only fields differ, which the row's ``refused`` says);
- ``orphan``: managed by the project but not the declared session of its name (no
  longer declared, or a duplicate); archived ones are history and not listed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from reconciler.model import (
    CREATE_ONLY_DIFFERS,
    Action,
    DesiredSession,
    Plan,
    RefusedAdoption,
    RemoteSession,
)
from reconciler.planner.core import REASON_ADOPT
from reconciler.planner.ownership import Managed, choose_kept, managed_by_name, renames
from reconciler.planner.scope import Scope

__all__ = ["SYNC_WORDS", "StatusRow", "Sync", "status_rows", "status_to_dict", "sync_counts"]

Sync = Literal["in-sync", "pending", "drifted", "differs", "replace", "missing", "orphan"]
SYNC_WORDS: tuple[Sync, ...] = get_args(Sync)
_WHOLE = Scope()


@dataclass(frozen=True)
class StatusRow:
    name: str
    sync: Sync
    session_id: str | None = None
    status: str | None = None
    loop_status: str | None = None
    loop_iteration: int | None = None
    last_activity_at: str | None = None
    declared_state: str | None = None  # active | archived | None (not declared)
    # Why apply would refuse this row's change: an ``adopt:`` line whose session differs
    # in create-only fields (the plan's ``RefusedAdoption``); None when it would not.
    refused: RefusedAdoption | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sessionId": self.session_id,
            "status": self.status,
            "loopStatus": self.loop_status,
            "loopIteration": self.loop_iteration,
            "lastActivityAt": self.last_activity_at,
            "declaredState": self.declared_state,
            "sync": self.sync,
            "refused": None
            if self.refused is None
            else {"rule": CREATE_ONLY_DIFFERS, "fields": list(self.refused.fields)},
        }


def _row(name: str, sync: Sync, remote: RemoteSession | None, state: str | None) -> StatusRow:
    if remote is None:
        return StatusRow(name=name, sync=sync, declared_state=state)
    return StatusRow(
        name=name,
        sync=sync,
        session_id=remote.session_id,
        status=remote.status,
        loop_status=remote.loop_status,
        loop_iteration=remote.loop_iteration,
        last_activity_at=remote.last_activity_at,
        declared_state=state,
    )


def status_rows(
    project: str,
    plan: Plan,
    desired: Sequence[DesiredSession],
    observed: Sequence[RemoteSession],
    *,
    scope: Scope = _WHOLE,
    formerly: Collection[str] = (),
) -> tuple[StatusRow, ...]:
    """One row per declared name and per live managed session not declared, by name;
    only those ``scope`` includes (``plan`` was narrowed the same way). ``formerly``:
    the project's old names (their sessions are its own)."""
    kinds: dict[str, list[Action]] = {}
    for action in plan.actions:
        if action.session_id is not None:
            kinds.setdefault(action.session_id, []).append(action)
    creates = {a.name for a in plan.actions if a.kind == "create"}
    adopts = {a.session_id: a.name for a in plan.actions if a.reason == REASON_ADOPT}
    # An adoption the plan refuses is pending all the same: the session is not adopted.
    refusals = {r.name: r for r in plan.refused_adoptions}
    adopts.update({r.session_id: r.name for r in plan.refused_adoptions})
    adopting = (
        {adopts[r.session_id]: r for r in observed if r.session_id in adopts} if adopts else {}
    )
    index = managed_by_name(project, observed, renames(desired), formerly=formerly)
    declared = {d.name: d for d in desired}
    rows: list[StatusRow] = []
    for name in sorted(declared.keys() | index.keys()):
        if not scope.includes(name):
            continue
        entries = index.get(name, [])
        live = [m for m in entries if not m.remote.archived_like]
        d = declared.get(name)
        if d is None:
            rows.extend(_row(name, "orphan", m.remote, None) for m in live)
            continue
        if d.state == "forgotten":  # every session still managed as it is to be let go
            if entries:
                rows.extend(_row(name, "pending", m.remote, d.state) for m in entries)
            else:
                rows.append(_row(name, "in-sync", None, d.state))
            continue
        if d.state == "archived":
            if live:
                rows.extend(_row(name, "pending", m.remote, d.state) for m in live)
            else:
                newest = entries[-1].remote if entries else None
                rows.append(_row(name, "in-sync", newest, d.state))
            continue
        if not live and name in adopting:  # `adopt`: the session exists, untagged yet
            row = _row(name, "pending", adopting[name], d.state)
            rows.append(dataclasses.replace(row, refused=refusals.get(name)))
            continue
        if not live or name in creates:
            rows.append(_row(name, "missing", None, d.state))
            continue
        kept = choose_kept(live, d.matches)
        rows.append(
            _row(name, _sync_of(kinds.get(kept.remote.session_id, [])), kept.remote, d.state)
        )
        rows.extend(_duplicates(name, live, kept, d.state))
    return tuple(rows)


def _sync_of(actions: Sequence[Action]) -> Sync:
    """The word for a declared session's actions: hub-side changes win over unknown
    ones, unknown over the manifests' (module doc)."""
    kinds = {a.kind for a in actions}
    if "replace" in kinds:
        return "replace"
    causes = {c.cause for a in actions if a.kind == "update" for c in a.changes}
    if "resume" in kinds or "drift" in causes:
        return "drifted"
    if None in causes:
        return "differs"
    if kinds & {"update", "archive", "delete"}:
        return "pending"
    return "in-sync"


def _duplicates(name: str, live: Sequence[Managed], kept: Managed, state: str) -> list[StatusRow]:
    return [_row(name, "orphan", m.remote, state) for m in live if m is not kept]


def sync_counts(rows: Sequence[StatusRow]) -> dict[str, int]:
    """How many rows carry each sync word (every word present, zero included)."""
    counts: dict[str, int] = dict.fromkeys(SYNC_WORDS, 0)
    for row in rows:
        counts[row.sync] += 1
    return counts


def status_to_dict(
    project: str,
    rows: Sequence[StatusRow],
    *,
    endpoint: str | None = None,
    org: str | None = None,
) -> Mapping[str, Any]:
    """The JSON form of ``reconciler status --format json`` (``org`` None: the token's)."""
    return {
        "project": project,
        "org": org,
        "endpoint": endpoint,
        "sessions": [row.to_dict() for row in rows],
        "summary": sync_counts(rows),
    }
