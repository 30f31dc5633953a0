"""desired + observed -> Plan. Pure: no I/O, no clock, no environment.

One pass per name. Declared names follow the actions table of
docs/concepts/plans-and-safety.md; names that are managed but no longer declared follow
``policy.prune``. Sessions without this project's marker never reach this module's
output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.errors import UsageError
from reconciler.fields import STATUS_CHANGE
from reconciler.model import (
    ARCHIVED_LIKE,
    MARKER_PREFIX,
    Action,
    ActionKind,
    DesiredSession,
    FieldChange,
    Marker,
    Plan,
    Project,
    RefusedAdoption,
    RemoteSession,
)
from reconciler.planner.applied import (
    applied_tag,
    is_applied_tag,
    recorded_protection,
    with_adopted_tag,
)
from reconciler.planner.body import create_body
from reconciler.planner.declared import read_record
from reconciler.planner.fingerprint import fingerprint
from reconciler.planner.forget import forget_actions
from reconciler.planner.mutable import mutable_changes, patch_body
from reconciler.planner.ownership import Managed, choose_kept, managed_by_name, renames
from reconciler.planner.replacement import (
    Replacement,
    create_only_changes,
    create_only_differences,
)
from reconciler.planner.scope import Scope, renamed_name
from reconciler.suggest import did_you_mean

__all__ = [
    "REASON_ADOPT",
    "REASON_ENDED",
    "REASON_DECLARED_ARCHIVED",
    "REASON_DECLARED_FORGOTTEN",
    "REASON_DUPLICATE",
    "REASON_DUPLICATE_UNRECORDED",
    "REASON_SUPERSEDED",
    "REASON_NEW",
    "REASON_NOT_DECLARED",
    "REASON_PAUSED",
    "REASON_RENAMED",
    "REASON_REPLACE_ASKED",
    "beside_the_kept",
    "check_scope_names",
    "superseded_by",
    "needs_detail",
    "ownership",
    "plan",
    "spent_adopt_lines",
]

REASON_NEW = "declared, not on the hub"
# Followed by its status: archived, stopped, shutdown. Who ended it is not recorded (the
# tool's own archive and a hand's look the same), so the reason does not guess.
REASON_ENDED = "its last session is"
REASON_DECLARED_ARCHIVED = "declared state: archived"
REASON_DECLARED_FORGOTTEN = "declared state: forgotten: marker removed, no longer managed"
REASON_NOT_DECLARED = "no longer declared"
REASON_DUPLICATE = "duplicate"
# A duplicate beside a kept session that is not its twin (``_a_twin``): no record of an
# apply (``planner.applied``) or another record than the duplicate's, or a second
# name's marker of the project. Twins two applies made carry the same record; a marker
# copied onto an older session (which the keep rule then keeps) does not, so such an
# archive counts for `maxDestroyPercent` (``safety.identical_duplicates``).
REASON_DUPLICATE_UNRECORDED = (
    f"{REASON_DUPLICATE}: the session kept is not as this project's applies leave one (no "
    "record of them, or another name's marker too: a marker copied onto it?)"
)
# A live session of the name that does not match its declaration beside one that does
# (the old side of a replacement an interrupted apply left, or the new side of one whose
# change was undone): it goes as a replacement's old side goes (deleted under `prune:
# delete`). The reason goes on: "by <the id kept>: ...".
REASON_SUPERSEDED = "superseded"
REASON_PAUSED = "paused"
REASON_DRIFT = "drift"
REASON_MANIFEST = "manifest"
REASON_CAUSE_UNKNOWN = "cause unknown"
# How an update's reason heads its fields, by FieldChange.cause, in this order.
_CAUSE_HEADINGS: dict[str | None, str] = {
    "manifest": REASON_MANIFEST,
    "drift": REASON_DRIFT,
    None: REASON_CAUSE_UNKNOWN,
}
REASON_CREATE_ONLY = "create-only fields changed"
REASON_RENAMED = "renamed from"
REASON_PROJECT_RENAMED = "project renamed from"
REASON_REPLACE_ASKED = "replacement requested (--replace)"
REASON_DESTROY = "plan --destroy: retiring the project"
_WHOLE = Scope()  # the whole plan: no target, exclude, replace or destroy

# Within one name: bring the new session up before the old goes away.
_KIND_ORDER: dict[ActionKind, int] = {
    "create": 0,
    "replace": 1,
    "update": 2,
    "resume": 3,
    "archive": 4,
    "delete": 5,
}


def check_scope_names(
    known: Iterable[str],
    targets: Sequence[str],
    excludes: Sequence[str],
    renamed: Mapping[str, str] | None = None,
) -> None:
    """Raise :class:`UsageError` (exit 64) for a ``--target``/``--exclude`` name that is
    neither declared nor managed on the hub, suggesting the close names: a typo must
    never narrow a plan to nothing and report "No changes". ``renamed`` (old name ->
    declared name, :func:`renames`): an old name is answered with the name its session
    is planned under."""
    names = sorted(set(known))
    problems = []
    for flag, given in (("--target", targets), ("--exclude", excludes)):
        for name in dict.fromkeys(given):
            if name in names:
                continue
            new = (renamed or {}).get(name)
            if new is not None:
                problems.append(renamed_name(flag, name, new))
                continue
            problems.append(
                f"{flag} {name}: no session of that name is declared or managed"
                + did_you_mean(name, names)
            )
    if problems:
        raise UsageError("\n".join(problems))


def _live(entries: Sequence[Managed]) -> Sequence[Managed]:
    # ``RemoteSession.archived_like`` read inline: three times per session in a plan,
    # most names holding one session (then no list is made).
    if len(entries) == 1:
        return () if entries[0].remote.status in ARCHIVED_LIKE else entries
    return [m for m in entries if m.remote.status not in ARCHIVED_LIKE]


def ownership(
    project: Project, desired: Sequence[DesiredSession], observed: Sequence[RemoteSession]
) -> dict[str, list[Managed]]:
    """The project's sessions among ``observed`` by declared name (``managed_by_name``
    with the renames and old project names the declarations give): what
    :func:`needs_detail` and :func:`plan` start from, made once for both."""
    return managed_by_name(project.name, observed, renames(desired), formerly=project.previously)


def needs_detail(
    project: Project,
    desired: Sequence[DesiredSession],
    observed: Sequence[RemoteSession],
    *,
    index: Mapping[str, Sequence[Managed]] | None = None,
    destroy: bool = False,
) -> tuple[str, ...]:
    """Ids of the managed sessions the plan needs ``GET /hub/session/{id}`` for; every
    other decision is made from the list endpoint.

    - Those whose marker hash differs from the declaration: whether the declaration
      means something else (a replacement), and to explain it.
    - Those a declaration asks to adopt (``adopt``): their create-only fields.
    - Those no longer declared that prune (or ``destroy``, ``--destroy``) would remove
      and whose tags do not say whether they are protected (written before this version
      recorded it): the declaration they were created from says (``metadata``).

    Sessions a ``--target`` or ``--exclude`` leaves out are named too: the plan counts
    what it leaves out, and whether one of them is replaced is known only from its
    details. ``index`` is :func:`ownership`'s, when already made.
    """
    if index is None:
        index = ownership(project, desired, observed)
    ids: list[str] = []
    for d in desired:
        if d.state != "active":
            continue
        live = _live(index.get(d.name, ()))
        if live:
            kept = choose_kept(live, d.matches)
            if not d.matches(kept.marker.hash):
                ids.append(kept.remote.session_id)
    # A session to adopt (``adopt``): whether its create-only fields are the declared
    # ones is known only from its details.
    ids += _adoptable(desired, observed, index).keys()
    if destroy or project.policy.prune != "keep":
        declared = {d.name for d in desired}
        names = (project.name, *project.previously)
        for name, entries in index.items():
            if name not in declared:
                ids += (
                    m.remote.session_id
                    for m in _live(entries)
                    if recorded_protection(m.remote.tags, names) is None
                )
    return tuple(ids)


def _leftover(project: Project, d: DesiredSession, m: Managed, kept: Managed) -> Action:
    """The action on ``m``, a live session of ``d``'s name beside the one ``kept``: a
    duplicate (it matches the declaration) is archived; one that does not match, when
    the kept one does, is superseded (the old side of a replacement left unfinished, or
    the new side of one whose change was undone), and goes as a replacement's old side
    would (deleted under ``prune: delete``)."""
    guard = d.lifecycle.prevent_destroy
    if d.matches(m.marker.hash) or not d.matches(kept.marker.hash):
        reason = REASON_DUPLICATE if _a_twin(project, d, kept, m) else REASON_DUPLICATE_UNRECORDED
        return _action("archive", d.name, m, reason, source=d.source, prevent_destroy=guard)
    kind: ActionKind = "delete" if project.policy.prune == "delete" else "archive"
    reason = f"{_SUPERSEDED_BY}{kept.remote.session_id}{_NO_LONGER_MATCHES}"
    return _action(kind, d.name, m, reason, source=d.source, prevent_destroy=guard)


# How a superseded session's reason names the session kept (``superseded_by`` reads it).
_SUPERSEDED_BY = f"{REASON_SUPERSEDED} by "
_NO_LONGER_MATCHES = ": it no longer matches the declaration"


def superseded_by(reason: str) -> str | None:
    """The session a superseded session's ``reason`` says was kept (:func:`_leftover`
    writes it), or None for any other reason."""
    if reason.startswith(_SUPERSEDED_BY) and reason.endswith(_NO_LONGER_MATCHES):
        return reason[len(_SUPERSEDED_BY) : -len(_NO_LONGER_MATCHES)] or None
    return None


def _a_twin(project: Project, d: DesiredSession, kept: Managed, other: Managed) -> bool:
    """Whether ``kept`` and ``other`` look like twins two applies of ``d`` made: each
    holds no marker of this project but this one (an apply never leaves two: a session
    holding two names' markers had one copied onto it), and ``kept`` carries the record
    ``other`` carries (two applies of one declaration write the same one, and nothing
    rewrites it while no field differs) or the one an apply of ``d`` writes now (an
    apply that updated it, its archive of ``other`` interrupted). A session of another
    name given this marker in place of its own keeps that name's record; one never
    applied has none."""
    names = (project.name, *project.previously)
    for session in (kept, other):
        if sum(m.project in names for m in session.remote.markers()) != 1:
            return False

    def records(session: Managed) -> set[str]:
        return {t for t in session.remote.tags for n in names if is_applied_tag(t, n)}

    found = records(kept)
    if not found:
        return False
    return found == records(other) or any(applied_tag(n, d) in found for n in names)


def beside_the_kept(reason: str) -> bool:
    """Whether an action's ``reason`` says it is on a session of a name beside the one
    the plan keeps: a duplicate, or one superseded (:func:`_leftover`)."""
    return reason.startswith((REASON_DUPLICATE, REASON_SUPERSEDED))


def _action(kind: ActionKind, d_name: str, m: Managed, reason: str, **kw: Any) -> Action:
    return Action(
        kind=kind,
        name=d_name,
        reason=reason,
        session_id=m.remote.session_id,
        precondition=fingerprint(m.remote),
        marker_tag=kw.pop("marker_tag", m.marker.tag),
        live=m.remote.live,
        **kw,
    )


def _only_markers(change: FieldChange) -> bool:
    return all(str(t).startswith(MARKER_PREFIX) for t in (*change.added, *change.removed))


def _by_cause(changes: Sequence[FieldChange]) -> str:
    """``manifest: a; drift: b; cause unknown: c``: each change's field under its cause."""
    groups: dict[str, list[str]] = {}
    for change in changes:
        heading = _CAUSE_HEADINGS[change.cause]
        groups.setdefault(heading, []).append(change.field)
    return "; ".join(
        f"{heading}: {', '.join(groups[heading])}"
        for heading in _CAUSE_HEADINGS.values()
        if heading in groups
    )


def _update_reason(changes: Sequence[FieldChange], *, found: Marker, wanted: Marker) -> str:
    """The fields by cause; after a rename (of the session, or of the project: the
    marker ``found`` is not the one ``wanted``) ``renamed from <old>`` first, and the
    marker swap is not listed."""
    renamed = []
    if found.project != wanted.project:
        renamed.append(f"{REASON_PROJECT_RENAMED} {found.project}")
    if found.name != wanted.name:
        renamed.append(f"{REASON_RENAMED} {found.name}")
    if not renamed:
        return _by_cause(changes)
    rest = [c for c in changes if not (c.field == "tags" and _only_markers(c))]
    reason = "; ".join(renamed)
    return f"{reason}; {_by_cause(rest)}" if rest else reason


# What an unchanged declaration's kept session needs: no replacement.
_NO_REPLACEMENT = Replacement()


def _plan_declared(
    project: Project,
    d: DesiredSession,
    entries: Sequence[Managed],
    details: Mapping[str, Mapping[str, Any]],
    commit: str | None,
    replace: bool = False,
    adoptable: Mapping[str, RemoteSession] | None = None,
) -> list[Action]:
    if d.state == "forgotten":  # every session managed as d.name, archived ones too
        return forget_actions(
            project, d.name, entries, reason=REASON_DECLARED_FORGOTTEN, source=d.source
        )
    guard = d.lifecycle.prevent_destroy
    live = _live(entries)
    if d.state == "archived":
        # Nothing to do when it does not exist or is already archived-like.
        return [
            _action(
                "archive",
                d.name,
                m,
                REASON_DECLARED_ARCHIVED,
                source=d.source,
                prevent_destroy=guard,
            )
            for m in live
        ]
    if not entries and d.adopt is not None:  # never managed yet: adopt, not create
        action = _adopt(project, d, adoptable, details)
        remote = (adoptable or {})[d.adopt]
        if remote.status == "paused" and STATUS_CHANGE not in d.lifecycle.ignore_changes:
            # As for any managed paused session: resumed in the same plan.
            resume = dataclasses.replace(
                action, kind="resume", reason=REASON_PAUSED, body=None, changes=()
            )
            return [action, resume]
        return [action]
    if not live:
        last = entries[-1].remote if entries else None
        previous = last.session_id if last else None
        return [
            Action(
                kind="create",
                name=d.name,
                reason=f"{REASON_ENDED} {last.status}" if last else REASON_NEW,
                body=create_body(project.name, d, commit=commit, replaces=previous),
                marker_tag=d.marker_tag(project.name),
                source=d.source,
                prevent_destroy=guard,
            )
        ]
    kept = choose_kept(live, d.matches)
    actions = [_leftover(project, d, m, kept) for m in live if m is not kept] if live[1:] else []
    found = _NO_REPLACEMENT
    if not d.matches(kept.marker.hash):
        detail = details.get(kept.remote.session_id)
        found = create_only_changes(d, detail, old_hash=kept.marker.hash)
    # Equal meanings (a default spelled out, a marker hashed the old way) or every
    # difference in a field ignoreChanges names: no replacement.
    if found.needed or replace:
        reason = f"{REASON_CREATE_ONLY}: {found.fields}" if found.needed else REASON_REPLACE_ASKED
        actions.append(
            _action(
                "replace",
                d.name,
                kept,
                reason,
                body=create_body(project.name, d, commit=commit, replaces=kept.remote.session_id),
                changes=found.changes,
                # The tag the new session will carry: settling a lost create looks
                # for it, and must never find the session being replaced.
                marker_tag=d.marker_tag(project.name),
                replace_with="delete" if project.policy.prune == "delete" else "archive",
                source=d.source,
                prevent_destroy=guard,
            )
        )
        return actions
    # A rename (``previously``): the same session, re-tagged with the declared name.
    marker = kept.marker
    if (marker.project, marker.name) != (project.name, d.name):
        marker = Marker(project.name, d.name, marker.hash)
    changes = mutable_changes(d, kept.remote, marker, project.previously)
    if changes:
        reason = _update_reason(changes, found=kept.marker, wanted=marker)
        actions.append(
            _action(
                "update",
                d.name,
                kept,
                reason,
                body=patch_body(d, kept.remote, changes, marker.tag, project.previously),
                changes=changes,
                marker_tag=marker.tag,
                source=d.source,
                prevent_destroy=guard,
            )
        )
    # `ignoreChanges: [status]`: a session paused by hand stays paused.
    if kept.remote.status == "paused" and STATUS_CHANGE not in d.lifecycle.ignore_changes:
        actions.append(
            _action("resume", d.name, kept, REASON_PAUSED, source=d.source, prevent_destroy=guard)
        )
    return actions


REASON_ADOPT = "adopt: adopted as declared"


def _adoptable(
    desired: Sequence[DesiredSession],
    observed: Sequence[RemoteSession],
    index: Mapping[str, Sequence[Managed]],
) -> dict[str, RemoteSession]:
    """The sessions declarations ask to adopt (``adopt``) while no session was ever
    managed as them, by id; a session two of them ask for is refused here."""
    wanted: dict[str, DesiredSession] = {}
    for d in desired:
        if not _to_adopt(d, index):
            continue
        assert d.adopt is not None
        other = wanted.setdefault(d.adopt, d)
        if other is not d:
            raise UsageError(
                f"{_at(d)}adopt: session {d.adopt} is also adopted by {other.name}"
                + (f" ({other.source})" if other.source is not None else "")
            )
    if not wanted:
        return {}
    return {r.session_id: r for r in observed if r.session_id in wanted}


def _to_adopt(d: DesiredSession, index: Mapping[str, Sequence[Managed]]) -> bool:
    """Whether ``d``'s ``adopt`` line is to act: an active declaration of a name never
    managed (once adopted, even if archived since, the line has done its work and the
    usual rules apply)."""
    return d.adopt is not None and d.state == "active" and not index.get(d.name)


def spent_adopt_lines(
    desired: Sequence[DesiredSession],
    observed: Sequence[RemoteSession],
    index: Mapping[str, Sequence[Managed]],
    scope: Scope = _WHOLE,
) -> tuple[str, ...]:
    """A warning for each ``adopt`` line (of a name ``scope`` includes) that names
    another session than the ones managed as its name: it does nothing, the name being
    managed already. None for the session adopted: such a line may stay, as an applied
    Terraform ``import`` block. ``plan``, ``apply``, ``status`` and ``watch`` show them."""
    adopting = [d for d in desired if d.adopt is not None and scope.includes(d.name)]
    if not adopting:  # the usual run: no session listed is looked at
        return ()
    live = {r.session_id for r in observed if not r.archived_like}
    notes = []
    for d in adopting:
        entries = index.get(d.name)
        if d.state != "active":
            if not entries and d.state == "forgotten":  # let go, or never managed: either
                # way not this project's, so there is nothing to let go
                notes.append(
                    f"{_at(d)}adopt: does nothing for a declaration `state: forgotten`: "
                    f"{d.adopt} is not managed as {d.name}; remove the line"
                )
            elif not entries:  # never managed: adopt applies to active declarations only
                notes.append(
                    f"{_at(d)}adopt: does nothing for a declaration `state: {d.state}`; "
                    f"to archive {d.adopt}, declare it active first and apply, then change "
                    "its state"
                )
            continue
        if not entries or any(m.remote.session_id == d.adopt for m in entries):
            continue
        managed = ", ".join(sorted({m.remote.session_id for m in _live(entries)})) or "archived"
        hint = (
            f"remove it, or to manage {d.adopt} instead, forget {d.name} first"
            if d.adopt in live
            else f"remove it ({d.adopt} is not on the hub, or archived)"
        )
        notes.append(
            f"{_at(d)}adopt: {d.adopt} is not the session managed as {d.name} ({managed}): "
            f"the line does nothing; {hint}"
        )
    return tuple(notes)


def _check_renames(
    project: Project,
    declared: Mapping[str, DesiredSession],
    index: Mapping[str, Sequence[Managed]],
    scope: Scope,
) -> None:
    """Raise :class:`UsageError` when a declared name (in ``scope``) has a live session
    under its own name and another under an old one (a session's or the Project's
    ``previously``): two sessions, not one renamed; merged, one would be archived as a
    duplicate or superseded, past every destroy limit (as Terraform refuses a ``moved``
    block onto an existing one). Nothing tells such a pair from a rename whose
    replacement an apply left unfinished (the new one made, the old one not yet gone):
    a person decides which goes."""
    if not project.previously and not any(d.previously for d in declared.values()):
        return  # no old name: no session under one
    clashes = []
    for name, d in declared.items():
        # Archived or forgotten: every session of the name goes alike, old name or new;
        # there is no one to keep, so nothing for a person to choose.
        if d.state != "active" or not scope.includes(name):
            continue
        live = _live(index.get(name, ()))
        own = [m for m in live if (m.marker.project, m.marker.name) == (project.name, name)]
        old = [m for m in live if m not in own]
        if not own or not old:
            continue
        was = sorted({f"{m.marker.project}/{m.marker.name}" for m in old})
        renamed_project = any(m.marker.project != project.name for m in old)
        where = project.source if renamed_project else d.source
        clashes.append(
            (f"{where}: " if where is not None else "")
            + f"{name}: previously names {', '.join(was)}, which has a live session "
            f"({', '.join(m.remote.session_id for m in old)}), and so has {name} "
            f"({', '.join(m.remote.session_id for m in own)}): a rename would archive one "
            "of them; archive or `forget` the one to let go first (after a rename whose "
            "replacement an apply left unfinished, the old one), or drop the previously line"
        )
    if clashes:
        raise UsageError("\n".join(clashes))


def _at(d: DesiredSession) -> str:
    return f"{d.source}: " if d.source is not None else ""


def _adopt(
    project: Project,
    d: DesiredSession,
    adoptable: Mapping[str, RemoteSession] | None,
    details: Mapping[str, Mapping[str, Any]],
) -> Action:
    """The update that adopts ``d.adopt`` as ``d``, as ``import`` does (marker,
    protection, record) with the mutable fields brought to the declaration in the same
    PATCH; a ``UsageError`` naming the declaration when it cannot be adopted (missing,
    archived, managed already), and ``_Unadoptable`` when its create-only fields differ
    (:func:`plan` keeps it as a refusal)."""
    assert d.adopt is not None
    remote = (adoptable or {}).get(d.adopt)
    if remote is None:
        raise UsageError(
            f"{_at(d)}adopt: no session {d.adopt} on the hub (fix the id, or drop the line "
            "to create the session)"
        )
    if remote.archived_like:
        raise UsageError(f"{_at(d)}adopt: session {d.adopt} is {remote.status}")
    owners = sorted({f"{m.project}/{m.name}" for m in remote.markers()})
    if owners:
        raise UsageError(
            f"{_at(d)}adopt: session {d.adopt} is managed already (as {', '.join(owners)})"
        )
    detail = details.get(remote.session_id)
    if detail is None:
        raise UsageError(f"{_at(d)}adopt: the details of session {d.adopt} could not be read")
    # As `import` decides it (createOnlyDiffers), the declaration named; the plan is
    # refused, and still shown in full (plan()).
    differ = create_only_differences(d, detail)
    if differ:
        at = f", adopt at {d.source}" if d.source else ""
        label = f"{d.name} ({d.adopt}{at})"
        fields = tuple(c.field for c in differ)
        raise _Unadoptable(RefusedAdoption(d.name, d.adopt, label, fields))
    marker = Marker(project.name, d.name, d.spec_hash)
    changes = _adopted(mutable_changes(d, remote, marker, project.previously))
    body = patch_body(d, remote, changes, marker.tag, project.previously)
    body["tags"] = with_adopted_tag(body["tags"])
    return Action(
        kind="update",
        name=d.name,
        reason=REASON_ADOPT,
        session_id=remote.session_id,
        body=body,
        changes=changes,
        precondition=fingerprint(remote),
        marker_tag=marker.tag,
        live=remote.live,
        source=d.source,
        prevent_destroy=d.lifecycle.prevent_destroy,
    )


class _Unadoptable(Exception):
    """An ``adopt:`` line :func:`plan` records as refusing the plan."""

    def __init__(self, refusal: RefusedAdoption) -> None:
        super().__init__(refusal.label)
        self.refusal = refusal


def _adopted(changes: Sequence[FieldChange]) -> tuple[FieldChange, ...]:
    """An adoption's changes, the tags change showing :data:`ADOPTED_TAG` added."""
    return tuple(
        dataclasses.replace(c, added=tuple(with_adopted_tag(c.added))) if c.field == "tags" else c
        for c in changes
    )


def _recorded_guard(project: Project, m: Managed, details: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether a session no longer declared is protected: as its tags record
    (``planner.applied.recorded_protection``), else, for one written before tags recorded it, as the
    declaration it was created from says (``metadata.reconciler``, read from the GET
    :func:`needs_detail` asked for)."""
    tagged = recorded_protection(m.remote.tags, (project.name, *project.previously))
    if tagged is not None:
        return tagged
    record = read_record((details.get(m.remote.session_id) or {}).get("metadata"))
    return bool(record is not None and record.lifecycle and record.lifecycle.prevent_destroy)


def _plan_undeclared(
    project: Project,
    name: str,
    entries: Sequence[Managed],
    details: Mapping[str, Mapping[str, Any]],
) -> list[Action]:
    prune = project.policy.prune
    if prune == "keep":
        return []
    # Archived-like sessions are already out of service; prune leaves their history.
    return [
        _action(
            prune,
            name,
            m,
            REASON_NOT_DECLARED,
            prevent_destroy=_recorded_guard(project, m, details),
        )
        for m in _live(entries)
    ]


def _plan_destroy(
    project: Project,
    name: str,
    entries: Sequence[Managed],
    d: DesiredSession | None,
    details: Mapping[str, Mapping[str, Any]],
) -> list[Action]:
    # Retiring the project removes as prune does; `keep` still archives (history stays).
    kind: ActionKind = "delete" if project.policy.prune == "delete" else "archive"
    if d is not None and d.state == "forgotten":  # let go, never destroyed
        return forget_actions(
            project, name, entries, reason=REASON_DECLARED_FORGOTTEN, source=d.source
        )
    source = d.source if d is not None else None
    return [
        _action(
            kind,
            name,
            m,
            REASON_DESTROY,
            source=source,
            # Declared: the declaration says; else what its last apply recorded.
            prevent_destroy=(
                d.lifecycle.prevent_destroy
                if d is not None
                else _recorded_guard(project, m, details)
            ),
        )
        for m in _live(entries)
    ]


def _hint_other_owners(
    project: Project, observed: Sequence[RemoteSession], actions: list[Action]
) -> list[Action]:
    """Creates of names another project manages say so, with the hint to declare it
    under the Project's ``previously`` (renaming a project otherwise plans N creates)."""
    new = {a.name for a in actions if a.kind == "create" and a.reason == REASON_NEW}
    if not new:
        return actions
    owners: dict[str, set[str]] = {}
    for remote in observed:
        if remote.archived_like:
            continue
        for m in remote.markers():
            if m.name in new and m.project != project.name:
                owners.setdefault(m.name, set()).add(m.project)
    if not owners:
        return actions
    out = []
    for action in actions:
        others = sorted(owners.get(action.name, ())) if action.kind == "create" else []
        if others and action.reason == REASON_NEW:
            names = ", ".join(others)
            action = dataclasses.replace(
                action,
                reason=f"{REASON_NEW}; managed under project {names} (renamed the project? "
                f"previously: [{names}] on the Project re-tags its sessions instead)",
            )
        out.append(action)
    return out


def plan(
    project: Project,
    desired: Sequence[DesiredSession],
    observed: Sequence[RemoteSession],
    *,
    details: Mapping[str, Mapping[str, Any]] | None = None,
    scope: Scope = _WHOLE,
    commit: str | None = None,
    index: Mapping[str, Sequence[Managed]] | None = None,
) -> Plan:
    """The actions that make the hub match ``desired``, ordered by name.

    ``details`` maps session id to its single-session GET, for the sessions
    :func:`needs_detail` named; ``scope`` (resolved by ``ScopeFlags.resolve``) narrows
    the plan by name (a target or exclude neither declared nor managed raises
    :class:`UsageError`; the actions left out are counted in ``Plan.left_out``),
    replaces its ``replace`` names even when unchanged, or with ``destroy`` plans
    removing every managed session instead (archive, or delete under ``prune:
    delete``). ``commit`` is recorded in create bodies' lineage. ``index`` is
    :func:`ownership`'s for the same arguments, when already made.
    """
    if index is None:
        index = ownership(project, desired, observed)
    declared = {d.name: d for d in desired}
    _check_renames(project, declared, index, scope)
    names = declared.keys() | index.keys()
    if scope.targets or scope.excludes:
        check_scope_names(names, scope.targets, scope.excludes, renames(desired))
    adoptable = _adoptable(desired, observed, index)
    actions: list[Action] = []
    refused_adoptions: list[RefusedAdoption] = []
    left_out = 0
    details = details or {}
    for name in sorted(names):
        entries = index.get(name, [])
        if scope.destroy:
            found = _plan_destroy(project, name, entries, declared.get(name), details)
        elif name in declared:
            d = declared[name]
            try:
                found = _plan_declared(
                    project, d, entries, details, commit, name in scope.replace, adoptable
                )
            except (UsageError, _Unadoptable) as exc:
                if not scope.includes(name) and d.adopt is not None:
                    # An adoption --target or --exclude leaves out is not this plan's to
                    # refuse: it is counted as left out, and refused when it is in scope.
                    left_out += 1
                    continue
                if isinstance(exc, _Unadoptable):
                    refused_adoptions.append(exc.refusal)
                    continue
                raise
            if d.set_name:
                found = [dataclasses.replace(a, set_name=d.set_name) for a in found]
        else:
            found = _plan_undeclared(project, name, entries, details)
        if scope.includes(name):
            actions += found
        else:
            left_out += len(found)
    actions = _hint_other_owners(project, observed, actions)
    actions.sort(key=lambda a: (a.name, _KIND_ORDER[a.kind], a.session_id or ""))
    # Sessions being let go (`state: forgotten`) are not counted: after this plan the
    # project no longer manages them, so `removeAll` and `maxDestroyPercent` judge
    # what it removes against what it keeps managing.
    managed = sum(
        len(_live(entries))
        for name, entries in index.items()
        if name not in declared or declared[name].state != "forgotten"
    )
    return Plan(
        project=project.name,
        actions=tuple(actions),
        org_id=project.org_id,
        managed_count=managed,
        policy=project.policy,
        commit=commit,
        left_out=left_out,
        refused_adoptions=tuple(refused_adoptions),
    )
