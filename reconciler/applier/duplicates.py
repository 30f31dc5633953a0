"""Settling duplicates that concurrent applies made: one session per declaration.

Two applies of the same manifests started together both see no session and both
create one per name. After its creates, an apply lists the sessions again. For each
marker it wrote, the sessions of that marker's name whose marker hash matches the
declaration (``DesiredSession.matches``: the meaning's hash, or the hash an older
version wrote for the same declaration; a saved plan carries no declaration, so there
the marker's own hash) are one declaration's copies: the planner's
``ownership.choose_kept`` picks the one kept, the first in ``model.keep_order`` (the
oldest by ``createdAt``, then ``sessionId``), and the others are archived. Every
concurrent runner, and every plan, applies that rule and that notion of matching to
what it sees, so they agree: the first is never archived by anyone, and whichever
runner created a younger one sees the older one when it lists. Sessions of the name
that do not match (the old side of a replacement) are left to the plan. A duplicate
that is live is left alone when ``protectLive`` holds (and ``--force`` was not given),
the report says so, unless it was created while this apply ran (``race_since``: the
hub's time of this apply's first create): a copy the race made, whose loop (a loop
session runs from its creation) is minutes old, not anyone's work. Every runner
archives the copies created since its own first create, so each copy but the oldest is
archived by the runner that started before it was made.

A plan's own archives of duplicates (reason ``duplicate``) were decided on an earlier
listing: the executor lists again right before them, and ``last_copies`` names those
that would now leave their name with no active session (the kept one was archived
meanwhile, by hand or by a stale plan): those stay, the first of them in
``keep_order`` for each name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from reconciler.applier import lifecycle
from reconciler.applier.protocol import ApplyClient
from reconciler.errors import ReconcilerError
from reconciler.model import Action, ActionResult, Marker, RemoteSession, keep_order
from reconciler.planner.ownership import Managed, choose_kept

__all__ = [
    "REASON_CONCURRENT",
    "Duplicate",
    "created_at",
    "find_duplicates",
    "last_copies",
    "settle_duplicates",
]

# Name -> whether a marker hash matches that name's declaration (``DesiredSession.matches``).
Matchers = Mapping[str, Callable[[str], bool]]

REASON_CONCURRENT = "duplicate made by a concurrent apply"
_PARALLELISM = 8


@dataclass(frozen=True)
class Duplicate:
    """A session to archive, and the session of the same marker that is kept."""

    session: RemoteSession
    kept: RemoteSession
    marker_tag: str


def find_duplicates(
    observed: Iterable[RemoteSession],
    marker_tags: Collection[str],
    matchers: Matchers | None = None,
) -> list[Duplicate]:
    """For each of ``marker_tags``, its name's sessions (not archived-like) whose hash
    matches the declaration (``matchers`` by name; a name not in it matches the marker's
    own hash only): every one but the one ``choose_kept`` keeps, in marker then
    ``keep_order`` order."""
    written: dict[tuple[str, str], Marker] = {}
    for tag in marker_tags:
        marker = Marker.parse(tag)
        if marker is not None:
            written[(marker.project, marker.name)] = marker
    live: dict[Marker, list[Managed]] = {}
    for session in observed:
        if session.archived_like:
            continue
        for marker in session.markers():
            mine = written.get((marker.project, marker.name))
            if mine is not None:
                live.setdefault(mine, []).append(Managed(session, marker))
    found: list[Duplicate] = []
    for mine in sorted(live, key=lambda m: m.tag):
        matches = (matchers or {}).get(mine.name, mine.hash.__eq__)
        entries = sorted(live[mine], key=lambda m: keep_order(m.remote))
        kept = choose_kept(entries, matches)  # the planner's choice, by its notion
        found += [
            Duplicate(m.remote, kept.remote, m.marker.tag)
            for m in entries
            if m is not kept and matches(m.marker.hash)
        ]
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


def created_at(session: RemoteSession) -> datetime | None:
    """When the hub says ``session`` was created (aware), or None when it does not say
    in ISO 8601."""
    try:
        found = datetime.fromisoformat(session.created_at or "")
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


def _race_copy(duplicate: Duplicate, since: datetime) -> bool:
    """Whether ``duplicate`` is a copy a race of applies made: created since this apply's
    first create, live by its loop alone (nobody connected), and as the kept one is
    (label, agent, visibility, tags): a session a person made with the marker while the
    apply ran, or joined, is not one."""
    copy, kept = duplicate.session, duplicate.kept
    return (
        _created(copy) >= since
        and copy.participant_count == 0
        and (copy.label, copy.default_agent, copy.visibility)
        == (kept.label, kept.default_agent, kept.visibility)
        and sorted(copy.tags) == sorted(kept.tags)
    )


def _created(session: RemoteSession) -> datetime:
    return created_at(session) or datetime.min.replace(tzinfo=UTC)


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
    matchers: Matchers | None = None,
    observed: Sequence[RemoteSession] | None = None,
    race_since: datetime | None = None,
) -> tuple[ActionResult, ...]:
    """List the hub (unless ``observed`` is its listing, non-archived sessions) and
    archive every duplicate of ``marker_tags`` (see the module; ``matchers`` as for
    ``find_duplicates``).

    One result per duplicate: ``succeeded`` (archived), ``noop`` (already archived,
    by a concurrent runner), ``skipped`` (live, protectLive) or ``failed``. Raises
    ``ApiError`` when the listing fails.
    """
    if not marker_tags:
        return ()
    if observed is None:
        listed = await client.list_all_sessions(include_archived=False)
        observed = [RemoteSession.from_api(i) for i in listed]
    duplicates = find_duplicates(observed, marker_tags, matchers)
    gate = asyncio.Semaphore(_PARALLELISM)

    async def settle(duplicate: Duplicate) -> ActionResult:
        action = _action(duplicate)
        sid = duplicate.session.session_id
        made_in_race = race_since is not None and _race_copy(duplicate, race_since)
        if action.live and protect_live and not force and not made_in_race:
            error = "not archived: the session is live and protectLive forbids it"
            return ActionResult(action, "skipped", session_id=sid, error=error)
        async with gate:
            try:
                outcome = await lifecycle.archive(client, sid)
            except ReconcilerError as exc:
                return ActionResult(action, "failed", session_id=sid, error=str(exc))
        return ActionResult(action, outcome, session_id=sid)

    return tuple(await asyncio.gather(*(settle(d) for d in duplicates)))
