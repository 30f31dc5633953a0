"""Which observed sessions this project owns, grouped by declared name.

Ownership is the marker tag alone: a session without a marker of *this* project is
invisible to the planner, whatever its label or other tags say.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import NamedTuple

from reconciler.model import DesiredSession, Marker, RemoteSession, keep_order

__all__ = ["Managed", "choose_kept", "managed_by_name", "own_marker", "renames"]


class Managed(NamedTuple):
    """An observed session of this project with the marker that makes it ours (a
    named tuple: one is made for each session a plan finds managed)."""

    remote: RemoteSession
    marker: Marker


def own_marker(
    project: str, remote: RemoteSession, formerly: Collection[str] = ()
) -> Marker | None:
    """The first marker of ``project`` on ``remote`` (else of a name the project had
    before, ``formerly``), or None when it is not ours."""
    for marker in remote.markers():
        if marker.project == project:
            return marker
    for marker in remote.markers():
        if marker.project in formerly:
            return marker
    return None


def renames(desired: Iterable[DesiredSession]) -> dict[str, str]:
    """Old name -> declared name, from each session's ``previously``.

    The loader refuses an old name that is declared or claimed twice, so the map is
    unambiguous.
    """
    return {old: d.name for d in desired for old in d.previously}


def managed_by_name(
    project: str,
    observed: Iterable[RemoteSession],
    renamed: Mapping[str, str] | None = None,
    *,
    formerly: Collection[str] = (),
) -> dict[str, list[Managed]]:
    """Managed sessions keyed by name, each list in ``keep_order`` (oldest first).

    A session whose marker names an old name in ``renamed`` is listed under the new
    name (its marker still says the old one: the planner re-tags it); so is one whose
    marker names an old name of the project (``formerly``, the Project's ``previously``).
    """
    renamed = renamed or {}
    index: dict[str, list[Managed]] = {}
    for remote in observed:
        marker = own_marker(project, remote, formerly)
        if marker is not None:
            name = renamed.get(marker.name, marker.name)
            index.setdefault(name, []).append(Managed(remote, marker))
    for entries in index.values():
        if len(entries) > 1:  # most names have one session: nothing to order
            entries.sort(key=lambda m: keep_order(m.remote))
    return index


def choose_kept(entries: Sequence[Managed], matches: Callable[[str], bool]) -> Managed:
    """Of several live managed sessions with one name, the one to keep.

    Of those whose marker hash ``matches`` the manifest (``DesiredSession.matches``;
    when none does, of all), the first in ``model.keep_order``: the rule, and the notion
    of matching, the settlement after an apply keeps by too (``applier.duplicates``).
    """
    if len(entries) == 1:
        return entries[0]  # the usual case: nothing to choose between
    matching = [m for m in entries if matches(m.marker.hash)]
    pool = matching or list(entries)
    return min(pool, key=lambda m: keep_order(m.remote))
