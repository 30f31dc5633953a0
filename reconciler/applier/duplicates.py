"""Settling duplicates that concurrent applies made: one session per marker.

Two applies of the same manifests started together both see no session and both
create one per name. After its creates, an apply lists the sessions carrying the
markers it wrote. Of the sessions with one marker (same name, same create-only hash)
it keeps the first in ``model.keep_order`` (the oldest by ``createdAt``, then
``sessionId``: the rule the planner keeps by too) and archives the others. Every
concurrent runner, and every plan, applies that rule to what it sees, so they agree:
the first is never archived by anyone, and whichever runner created a younger one sees
the older one when it lists. A duplicate that is live is left alone when
``protectLive`` holds (and ``--force`` was not given); the report says so.

A plan's own archives of duplicates (reason ``duplicate``) were decided on an earlier
listing: the executor lists again right before them, and ``last_copies`` names those
that would now leave their name with no active session (the kept one was archived
meanwhile, by hand or by a stale plan): those stay, the first of them in
``keep_order`` for each name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from reconciler.applier import lifecycle
from reconciler.applier.protocol import ApplyClient
from reconciler.errors import ReconcilerError
from reconciler.model import Action, ActionResult, Marker, RemoteSession, keep_order

__all__ = [
    "REASON_CONCURRENT",
    "Duplicate",
    "find_duplicates",
    "last_copies",
    "settle_duplicates",
]

REASON_CONCURRENT = "duplicate made by a concurrent apply"
_PARALLELISM = 8


@dataclass(frozen=True)
class Duplicate:
    """A session to archive, and the session of the same marker that is kept."""

    session: RemoteSession
    kept: RemoteSession
    marker_tag: str


def find_duplicates(
    observed: Iterable[RemoteSession], marker_tags: Collection[str]
) -> list[Duplicate]:
    """For each of ``marker_tags`` carried by several sessions that are not archived-like,
    every session but the first in ``keep_order``, in marker then that order."""
    wanted = set(marker_tags)
    carriers: dict[str, list[RemoteSession]] = {}
    for session in observed:
        if session.archived_like:
            continue
        for tag in wanted.intersection(session.tags):
            carriers.setdefault(tag, []).append(session)
    found: list[Duplicate] = []
    for tag in sorted(carriers):
        sessions = sorted(carriers[tag], key=keep_order)
        found += [Duplicate(s, sessions[0], tag) for s in sessions[1:]]
    return found


def last_copies(
    project: str,
    actions: Sequence[Action],
    archiving: Collection[str],
    observed: Iterable[RemoteSession],
) -> dict[str, str]:
    """Of the sessions in ``archiving`` (archives of duplicates among ``actions``), those
    that must stay: session id -> name.

    For each name, when ``observed`` (listed just now) shows no active session of it
    that ``actions`` leave in place, the first in ``keep_order`` of those about to be
    archived stays.
    """
    destroyed = {a.session_id for a in actions if a.destroys and a.session_id is not None}
    active: dict[str, list[RemoteSession]] = {}
    for remote in observed:
        if remote.archived_like:
            continue
        for marker in remote.markers():
            if marker.project == project:
                active.setdefault(marker.name, []).append(remote)
    spared: dict[str, str] = {}
    for name, sessions in active.items():
        if any(s.session_id not in destroyed for s in sessions):
            continue
        doomed = [s for s in sessions if s.session_id in archiving]
        if doomed:
            spared[min(doomed, key=keep_order).session_id] = name
    return spared


def _action(duplicate: Duplicate) -> Action:
    marker = Marker.parse(duplicate.marker_tag)
    return Action(
        "archive",
        marker.name if marker is not None else duplicate.marker_tag,
        reason=f"{REASON_CONCURRENT}; kept {duplicate.kept.session_id}, the oldest",
        session_id=duplicate.session.session_id,
        marker_tag=duplicate.marker_tag,
        live=duplicate.session.live,
    )


async def settle_duplicates(
    client: ApplyClient,
    marker_tags: Collection[str],
    *,
    protect_live: bool,
    force: bool = False,
) -> tuple[ActionResult, ...]:
    """List the hub and archive every duplicate of ``marker_tags`` (see the module).

    One result per duplicate: ``succeeded`` (archived), ``noop`` (already archived,
    by a concurrent runner), ``skipped`` (live, protectLive) or ``failed``. Raises
    ``ApiError`` when the listing fails.
    """
    if not marker_tags:
        return ()
    listed = await client.list_all_sessions(include_archived=False)
    duplicates = find_duplicates((RemoteSession.from_api(i) for i in listed), marker_tags)
    gate = asyncio.Semaphore(_PARALLELISM)

    async def settle(duplicate: Duplicate) -> ActionResult:
        action = _action(duplicate)
        sid = duplicate.session.session_id
        if action.live and protect_live and not force:
            error = "not archived: the session is live and protectLive forbids it"
            return ActionResult(action, "skipped", session_id=sid, error=error)
        async with gate:
            try:
                outcome = await lifecycle.archive(client, sid)
            except ReconcilerError as exc:
                return ActionResult(action, "failed", session_id=sid, error=str(exc))
        return ActionResult(action, outcome, session_id=sid)

    return tuple(await asyncio.gather(*(settle(d) for d in duplicates)))
