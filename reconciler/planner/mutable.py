"""Drift of the fields PATCH can change (``fields.MUTABLE_FIELDS``), each compared as
its ``SpecField.compare`` says: a value, a set of tags, a set of skills.

Only fields the spec declares are managed (a field left out is left alone), and fields
named in ``lifecycle.ignoreChanges`` are not corrected. Comparison and the PATCH body
use the resolved spec: a reference outside ``env`` names a plain variable
(``manifest.secrecy``), whose value plans show.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from reconciler.fields import FIELDS, normalise
from reconciler.model import (
    MARKER_PREFIX,
    DesiredSession,
    FieldChange,
    Marker,
    RemoteSession,
    canonical_json,
    declared_skill,
)
from reconciler.planner.applied import (
    Cause,
    applied_tag,
    cause_of,
    is_applied_tag,
    is_protected_tag,
    protected_tag,
    read_applied,
    read_protection,
    with_applied_tag,
    with_protected_tag,
)
from reconciler.planner.body import plain, tags_with_marker

__all__ = ["adoption_record", "mutable_changes", "patch_body"]

# Each mutable field's name and how it is compared, in FIELDS order.
_MUTABLE = tuple((f.name, f.compare) for f in FIELDS if f.mutable)


def _scalar(field: str, before: str | None, after: Any) -> FieldChange | None:
    if before == after:
        return None
    return FieldChange(field=field, before=before, after=after)


def _skill_key(skill: Mapping[str, Any]) -> str:
    return canonical_json(declared_skill(skill))


def _satisfies(have: Mapping[str, Any], declared: Mapping[str, str]) -> bool:
    """``have`` (a live skill) carries every key of ``declared`` (what a manifest
    declares of a skill: :func:`~reconciler.model.declared_skill`).

    Keys the manifest leaves out (an optional ``name`` or ``url`` the service fills
    in) and keys no manifest can declare are left alone, like undeclared fields.
    """
    return all(have.get(k) == v for k, v in declared.items())


def _skills_change(
    wanted: Sequence[Mapping[str, Any]], have: Sequence[Mapping[str, Any]]
) -> FieldChange | None:
    """Skills are a set: one missing from the session is added, one the manifest does
    not declare is removed; only what a manifest can declare is compared."""
    declared = [declared_skill(w) for w in wanted]
    if len(declared) == len(have):
        for h, d in zip(have, declared, strict=True):
            if not _satisfies(h, d):
                break
        else:
            return None  # each in its place (the usual case): no pair to search for
    missing = [
        w for w, d in zip(wanted, declared, strict=True) if not any(_satisfies(h, d) for h in have)
    ]
    extra = [h for h in have if not any(_satisfies(h, d) for d in declared)]
    if not missing and not extra:
        return None

    def forms(skills: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
        unique = {_skill_key(s): declared_skill(s) for s in skills}
        return [unique[k] for k in sorted(unique)]

    return FieldChange(
        field="skills",
        before=forms(have),
        after=forms(wanted),
        added=tuple(forms(missing)),
        removed=tuple(forms(extra)),
    )


def _tags_change(
    remote: RemoteSession,
    wanted_tags: Sequence[str] | None,
    marker: Marker | None,
    extra_markers: Collection[Marker],
    guard: tuple[AbstractSet[str], AbstractSet[str]],
) -> FieldChange | None:
    """The tags to add and remove; ``wanted_tags`` None when the spec leaves tags alone
    (this project's markers, and those of its old names, are corrected all the same:
    ``extra_markers`` are to go, see :func:`_extra_own_markers`; so is the protection
    tag, ``guard``: see :func:`_guard_moves`)."""
    tags = remote.tags
    if (marker is None or marker.tag in tags) and not (extra_markers or guard[0] or guard[1]):
        # The usual case: none of the tool's own tags to move (``extra`` and ``missing``
        # below would be empty), so only the declared tags can differ.
        if wanted_tags is None:
            return None
        have = {t for t in tags if not t.startswith(MARKER_PREFIX)}
        if have == set(wanted_tags):
            return None
    extra = {m.tag for m in extra_markers} | guard[1]
    missing = {marker.tag} - set(tags) if marker is not None else set()
    missing |= guard[0]
    if wanted_tags is None and not extra and not missing:
        return None
    # The marker tag is on both sides (it is how the session was matched), so it
    # never shows as a difference; other projects' markers are left alone.
    have = {t for t in tags if not t.startswith(MARKER_PREFIX)}
    wanted = set(wanted_tags) if wanted_tags is not None else set(have)
    if wanted == have and not extra and not missing:
        return None
    added = tuple(sorted((wanted - have) | missing))
    removed = tuple(sorted((have - wanted) | extra))
    if not (added or removed):
        return None
    return FieldChange(
        field="tags", before=sorted(have), after=sorted(wanted), added=added, removed=removed
    )


def _extra_own_markers(
    remote: RemoteSession, kept: Marker | None, formerly: Collection[str]
) -> set[Marker]:
    """Markers of the same project as ``kept`` (or of its old names) other than it: a
    session carries one."""
    if kept is None:
        return set()
    markers = remote.markers()
    if len(markers) == 1 and markers[0] == kept:
        return set()  # the usual case: the one marker it carries is the kept one
    return {
        m for m in markers if (m.project == kept.project or m.project in formerly) and m != kept
    }


_NO_MOVES: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())


def _guard_moves(
    desired: DesiredSession, remote: RemoteSession, kept: Marker | None, formerly: Collection[str]
) -> tuple[AbstractSet[str], AbstractSet[str]]:
    """The protection tag to add (the declaration says ``preventDestroy``, the session
    does not carry it) and this project's protection tags to remove (``planner.applied``)."""
    if kept is None:
        return _NO_MOVES
    protect = desired.lifecycle.prevent_destroy
    own = protected_tag(kept.project)
    if not formerly and (own in remote.tags) is protect:
        # The usual case, decided without a walk: it carries the tag exactly when it
        # should. (Another protection tag of this project cannot be: it names it.)
        return _NO_MOVES
    names = {kept.project, *formerly}
    have = {t for t in remote.tags if is_protected_tag(t, names)}
    wanted = {own} if protect else set()
    return wanted - have, have - wanted


def _ours(tag: str, own: Marker | None, formerly: Collection[str] = ()) -> bool:
    marker = Marker.parse(tag)
    if marker is None or own is None:
        return False
    return marker.project == own.project or marker.project in formerly


def adoption_record(
    project: str, desired: DesiredSession, remote: RemoteSession, marker: Marker
) -> str:
    """The last-applied record of adopting ``remote`` as ``desired`` (marked ``marker``)
    with its mutable fields left as they are (``import``, ``export --adopt``): a digest
    of each managed field the hub already holds as declared, applied in effect, so a
    later hand edit of it is drift; the fields that differ are left out, so the plan
    that brings them to the declaration names the manifest as their cause."""
    differ = {
        c.field
        for c in mutable_changes(desired, remote, marker)
        if not (c.field == "tags" and c.before == c.after)  # only the tool's own tags
    }
    return applied_tag(project, desired, leave_out=differ)


def mutable_changes(
    desired: DesiredSession,
    remote: RemoteSession,
    marker: Marker | None = None,
    formerly: Collection[str] = (),
) -> tuple[FieldChange, ...]:
    """Field-by-field drift of ``remote`` from ``desired``, in ``fields.FIELDS`` order.

    ``marker`` is the marker the session is to carry (the one it was matched by, or
    after a rename the one with the declared name); any other marker of the same
    project on it is drift to remove (whether or not the spec manages tags), so that
    the session's identity cannot flip between two markers, and ``marker`` itself is
    added when missing. Markers of the project's old names (``formerly``) count as its
    own: a renamed project's sessions are re-tagged.
    """
    spec = desired.resolved
    ignored = desired.lifecycle.ignore_changes
    changes: list[FieldChange] = []
    extra_markers = _extra_own_markers(remote, marker, formerly)
    guard = _guard_moves(desired, remote, marker, formerly)
    for name, compare in _MUTABLE:
        managed = name in spec and name not in ignored
        change: FieldChange | None = None
        if compare == "set":
            wanted = spec[name] if managed else None
            change = _tags_change(remote, wanted, marker, extra_markers, guard)
        elif not managed:
            continue
        elif compare == "skills":
            change = _skills_change(spec[name], remote.skills)
        else:  # a value: as the hub holds it (an alias in its long form)
            held, wanted = remote.reported(name), spec[name]
            if held and held == wanted:
                continue  # held as written (the usual case): equal once normalised too
            before = normalise(name, held) if held else None
            change = _scalar(name, before, normalise(name, wanted))
        if change:
            changes.append(change)
    if marker is None or not changes:
        return tuple(changes)
    record = _applied_record(remote, marker.project, formerly)
    renamed = any(m.name in desired.previously or m.project in formerly for m in extra_markers)
    # When only the tool's tags move: a rename (of the session or the project) is the
    # manifest's doing; the protection tag moves as the record says; a missing or extra
    # marker happened on the hub.
    tool_cause: Cause | None = "drift"
    if renamed:
        tool_cause = "manifest"
    elif guard[0] or guard[1]:
        tool_cause = _protection_cause(desired, remote, marker.project, formerly)
    return tuple(_with_cause(c, desired, record, tool_cause) for c in changes)


def _protection_cause(
    desired: DesiredSession, remote: RemoteSession, project: str, formerly: Collection[str]
) -> Cause | None:
    """Why the protection tag moves: the declaration's ``preventDestroy`` differs from
    the one the record says was applied (``manifest``), or not, so the tag was edited on
    the hub (``drift``); None when no record says."""
    applied = read_protection(remote.tags, (project, *formerly))
    if applied is None:
        return None
    return "drift" if applied == desired.lifecycle.prevent_destroy else "manifest"


def _applied_record(
    remote: RemoteSession, project: str, formerly: Collection[str]
) -> Mapping[str, str] | None:
    """``project``'s last-applied record on ``remote``; after a rename of the project,
    the record written under its old name (it is the same project's). None when there is
    none."""
    for name in (project, *formerly):
        record = read_applied(remote.tags, name)
        if record is not None:
            return record
    return None


def _with_cause(
    change: FieldChange,
    desired: DesiredSession,
    record: Mapping[str, str] | None,
    tool_cause: Cause | None,
) -> FieldChange:
    cause = cause_of(change.field, desired, record)
    if change.field == "tags" and change.before == change.after:
        cause = tool_cause  # only the tool's tags move
    return dataclasses.replace(change, cause=cause)


def patch_body(
    desired: DesiredSession,
    remote: RemoteSession,
    changes: Sequence[FieldChange],
    marker_tag: str,
    formerly: Collection[str] = (),
) -> dict[str, Any]:
    """The PATCH payload for ``changes``, references (to plain variables) resolved.

    Tags in PATCH replace the whole set, so the body carries every desired tag (the
    session's own tags when the spec does not manage them), the marker tag, and any
    other project's marker already on the session; another marker of this project (or
    of its old names, ``formerly``) is dropped, and so is a last-applied record of an old
    name (this project's record replaces it).
    """
    own = Marker.parse(marker_tag)
    assert own is not None
    record = applied_tag(own.project, desired)
    body: dict[str, Any] = {}
    refresh = [c for c in changes if c.field != "tags"] and record not in remote.tags
    if refresh and not any(c.field == "tags" for c in changes):
        # The record of what is applied changes with the values: tags carry it.
        changes = [*changes, FieldChange("tags")]
    for change in changes:
        if change.field == "tags":
            # Other projects' markers and records stay; this project's old names'
            # (a rename) go: the marker and record written below replace them.
            foreign = [
                t
                for t in remote.tags
                if t.startswith(MARKER_PREFIX)
                and not _ours(t, own, formerly)
                and not any(is_applied_tag(t, old) for old in formerly)
            ]  # this project's protection tags are among them: the last line decides
            if "tags" in desired.spec and "tags" not in desired.lifecycle.ignore_changes:
                base = list(desired.resolved["tags"])
            else:
                base = [t for t in remote.tags if not t.startswith(MARKER_PREFIX)]
            tags = tags_with_marker([*base, *foreign], marker_tag)
            tags = with_applied_tag(tags, own.project, record)
            protect = desired.lifecycle.prevent_destroy
            body["tags"] = with_protected_tag(tags, own.project, protect, formerly)
        elif change.field == "skills":
            body["skills"] = _skills_body(desired, remote)
        else:  # resolved (a plain variable's value); an enum's alias in its long form
            body[change.field] = normalise(change.field, plain(desired.resolved[change.field]))
    return body


def _skills_body(desired: DesiredSession, remote: RemoteSession) -> list[dict[str, Any]]:
    """The declared skills; a skill the session already carries keeps what the service
    added to it (PATCH replaces the whole list)."""
    body = []
    for declared in desired.resolved["skills"]:
        form = declared_skill(declared)
        live = next((h for h in remote.skills if _satisfies(h, form)), {})
        kept = {k: v for k, v in live.items() if v is not None}
        body.append({**plain(kept), **plain(declared)})
    return body
