"""Drift of the fields PATCH can change: label, agent, visibility, tags, skills.

Only fields the spec declares are managed (a field left out is left alone), and fields
named in ``lifecycle.ignoreChanges`` are not corrected. Comparison uses the resolved
spec (``${env:...}`` substituted); the PATCH body keeps the spec as written so a plan
file never holds a resolved value.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from reconciler.model import (
    MARKER_PREFIX,
    DesiredSession,
    FieldChange,
    Marker,
    RemoteSession,
    canonical_json,
    declared_skill,
    normalise_visibility,
)
from reconciler.planner.body import plain, tags_with_marker

__all__ = ["mutable_changes", "patch_body"]


def _scalar(field: str, before: str | None, after: Any) -> FieldChange | None:
    if before == after:
        return None
    return FieldChange(field=field, before=before, after=after)


def _skill_key(skill: Mapping[str, Any]) -> str:
    return canonical_json(declared_skill(skill))


def _satisfies(have: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    """``have`` (a live skill) carries every key ``want`` (a declared one) declares.

    Keys the manifest leaves out (an optional ``name`` or ``url`` the service fills
    in) and keys no manifest can declare are left alone, like undeclared fields.
    """
    return all(have.get(k) == v for k, v in declared_skill(want).items())


def _skills_change(
    wanted: Sequence[Mapping[str, Any]], have: Sequence[Mapping[str, Any]]
) -> FieldChange | None:
    """Skills are a set: one missing from the session is added, one the manifest does
    not declare is removed; only what a manifest can declare is compared."""
    missing = [w for w in wanted if not any(_satisfies(h, w) for h in have)]
    extra = [h for h in have if not any(_satisfies(h, w) for w in wanted)]
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


def _extra_own_markers(
    remote: RemoteSession, kept: Marker | None, formerly: Collection[str]
) -> set[str]:
    """Markers of the same project as ``kept`` (or of its old names) other than it: a
    session carries one."""
    if kept is None:
        return set()
    return {m.tag for m in remote.markers() if _ours(m.tag, kept, formerly) and m != kept}


def _ours(tag: str, own: Marker | None, formerly: Collection[str] = ()) -> bool:
    marker = Marker.parse(tag)
    if marker is None or own is None:
        return False
    return marker.project == own.project or marker.project in formerly


def mutable_changes(
    desired: DesiredSession,
    remote: RemoteSession,
    marker: Marker | None = None,
    formerly: Collection[str] = (),
) -> tuple[FieldChange, ...]:
    """Field-by-field drift of ``remote`` from ``desired``, in MUTABLE_FIELDS order.

    ``marker`` is the marker the session is to carry (the one it was matched by, or
    after a rename the one with the declared name); any other marker of the same
    project on it is drift to remove (whether or not the spec manages tags), so that
    the session's identity cannot flip between two markers, and ``marker`` itself is
    added when missing. Markers of the project's old names (``formerly``) count as its
    own: a renamed project's sessions are re-tagged.
    """
    spec = desired.resolved
    ignored = set(desired.lifecycle.ignore_changes)
    changes: list[FieldChange] = []

    def managed(name: str) -> bool:
        return name in spec and name not in ignored

    if managed("label"):
        change = _scalar("label", remote.label, spec["label"])
        if change:
            changes.append(change)
    if managed("agent"):
        change = _scalar("agent", remote.default_agent, spec["agent"])
        if change:
            changes.append(change)
    if managed("visibility"):
        before = normalise_visibility(remote.visibility) if remote.visibility else None
        change = _scalar("visibility", before, normalise_visibility(str(spec["visibility"])))
        if change:
            changes.append(change)
    extra = _extra_own_markers(remote, marker, formerly)
    missing = {marker.tag} - set(remote.tags) if marker is not None else set()
    if managed("tags") or extra or missing:
        # The marker tag is on both sides (it is how the session was matched), so it
        # never shows as a difference; other projects' markers are left alone.
        have = {t for t in remote.tags if not t.startswith(MARKER_PREFIX)}
        wanted = set(spec["tags"]) if managed("tags") else set(have)
        added = tuple(sorted((wanted - have) | missing))
        removed = tuple(sorted((have - wanted) | extra))
        if added or removed:
            changes.append(
                FieldChange(
                    field="tags",
                    before=sorted(have),
                    after=sorted(wanted),
                    added=added,
                    removed=removed,
                )
            )
    if managed("skills"):
        change = _skills_change(spec["skills"], remote.skills)
        if change:
            changes.append(change)
    return tuple(changes)


def patch_body(
    desired: DesiredSession,
    remote: RemoteSession,
    changes: Sequence[FieldChange],
    marker_tag: str,
    formerly: Collection[str] = (),
) -> dict[str, Any]:
    """The PATCH payload for ``changes``, as written (references unresolved).

    Tags in PATCH replace the whole set, so the body carries every desired tag (the
    session's own tags when the spec does not manage them), the marker tag, and any
    other project's marker already on the session; another marker of this project (or
    of its old names, ``formerly``) is dropped.
    """
    own = Marker.parse(marker_tag)
    body: dict[str, Any] = {}
    for change in changes:
        if change.field == "tags":
            foreign = [
                t
                for t in remote.tags
                if t.startswith(MARKER_PREFIX) and not _ours(t, own, formerly)
            ]
            if "tags" in desired.spec and "tags" not in desired.lifecycle.ignore_changes:
                base = list(desired.spec["tags"])
            else:
                base = [t for t in remote.tags if not t.startswith(MARKER_PREFIX)]
            body["tags"] = tags_with_marker([*base, *foreign], marker_tag)
        elif change.field == "skills":
            body["skills"] = _skills_body(desired, remote)
        elif change.field == "visibility":
            body["visibility"] = normalise_visibility(str(desired.spec["visibility"]))
        else:
            body[change.field] = plain(desired.spec[change.field])
    return body


def _skills_body(desired: DesiredSession, remote: RemoteSession) -> list[dict[str, Any]]:
    """The declared skills as written; a skill the session already carries keeps what
    the service added to it (PATCH replaces the whole list)."""
    body = []
    for written, resolved in zip(desired.spec["skills"], desired.resolved["skills"], strict=True):
        live = next((h for h in remote.skills if _satisfies(h, resolved)), {})
        kept = {k: v for k, v in live.items() if v is not None}
        body.append({**plain(kept), **plain(written)})
    return body
