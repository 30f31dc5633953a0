"""Who changed a mutable field: the last-applied record, and the cause of each change.

Like kubectl's last-applied annotation, every write the tool makes (create, update,
replace) records the mutable values it applied, so that a plan can tell a field changed
in the manifests from one changed on the hub since (drift). PATCH carries only label,
agent, visibility, tags and skills (the API's update body; ``metadata`` is create-only),
so a record in ``metadata.reconciler`` would go stale at the first update. The record is
therefore one reserved tag, which create and PATCH bodies both carry::

    reconciler:applied:<project>=label.1a2b3c,agent.4d5e6f,tags.7a8b9c

a short digest per managed field (declared, not ignored) of its value as the hub would
hold it (``fields.normalise``: visibility aliases long, tags a set without the tool's own
tags, skills on the keys a manifest can declare). Digests, not values: a tag is short
and shows no value. A change's cause:

- ``manifest``: the declared value differs from the one last applied (whether or not
  the hub was edited too: applying the manifest is what the change does), or the record
  does not name the field (the last write did not manage it: not declared then, ignored,
  or held otherwise than declared when ``import`` or ``export --adopt`` took the
  session over, which record only the fields the hub held as declared);
- ``drift``: the declared value is the one last applied, so the hub changed since;
- ``None``: the session carries no record (created before records, or tagged by hand):
  the cause is unknown, and the plan says so.

The protection a write applied is recorded the same way, in its own reserved tag, which
a session carries while its declaration says ``lifecycle.preventDestroy: true``::

    reconciler:protected:<project>

While a session is declared, its declaration decides. Once it is no longer declared
(its document deleted, a whole folder gone) it keeps the protection its last apply
gave it: a plan to prune or destroy it is refused like one that archives a declared
protected session, until it is declared again without ``preventDestroy`` or ``forget``
releases it. The record also holds the protection applied (``preventDestroy.1`` or
``.0``), so the tag moving is a ``manifest`` change or ``drift`` like any field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Literal

from reconciler.fields import MUTABLE_FIELDS
from reconciler.model import MARKER_PREFIX, DesiredSession, canonical_json, comparable

__all__ = [
    "ADOPTED_TAG",
    "APPLIED_PREFIX",
    "Cause",
    "applied_tag",
    "cause_of",
    "digest",
    "is_applied_tag",
    "is_protected_tag",
    "protected_tag",
    "read_applied",
    "read_protection",
    "recorded_protection",
    "with_adopted_tag",
    "with_applied_tag",
    "with_protected_tag",
]

Cause = Literal["manifest", "drift"]

APPLIED_PREFIX = f"{MARKER_PREFIX}applied:"
PROTECTED_PREFIX = f"{MARKER_PREFIX}protected:"
# On a session the tool adopted (`adopt:`, `import`, `export --adopt`) rather than
# created: the record of a declaration in its metadata was not the tool's to write, so
# it is never believed (``planner.replacement.trusted_record``). Never removed.
ADOPTED_TAG = f"{MARKER_PREFIX}adopted"
_DIGEST_LEN = 6
_PROTECTION = "preventDestroy"


def digest(name: str, value: Any) -> str:
    """The short digest of a value of mutable field ``name``."""
    text = canonical_json(comparable(name, value))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_DIGEST_LEN]


def _managed(desired: DesiredSession) -> list[str]:
    ignored = set(desired.lifecycle.ignore_changes)
    return [f for f in MUTABLE_FIELDS if f in desired.resolved and f not in ignored]


def applied_tag(project: str, desired: DesiredSession, leave_out: Collection[str] = ()) -> str:
    """The record of what a write of ``desired`` applies: a digest per managed mutable
    value (the resolved ones: what the hub is sent and holds) but those in
    ``leave_out``, and the protection (``preventDestroy.1`` or ``.0``, so a plan tells a
    changed declaration from an edited tag, and export the protection lifted from the
    one never recorded)."""
    managed = [f for f in _managed(desired) if f not in leave_out]
    parts = [f"{f}.{digest(f, desired.resolved[f])}" for f in managed]
    parts.append(_protection_part(desired.lifecycle.prevent_destroy))
    return f"{APPLIED_PREFIX}{project}={','.join(parts)}"


def _protection_part(protected: bool) -> str:
    return f"{_PROTECTION}.{1 if protected else 0}"


def is_applied_tag(tag: str, project: str | None = None) -> bool:
    """Whether ``tag`` is a last-applied record (of ``project``, when given)."""
    if not tag.startswith(APPLIED_PREFIX):
        return False
    return project is None or tag[len(APPLIED_PREFIX) :].partition("=")[0] == project


def protected_tag(project: str) -> str:
    """The tag of a session ``project`` last applied with ``preventDestroy: true``."""
    return f"{PROTECTED_PREFIX}{project}"


def is_protected_tag(tag: str, projects: Collection[str] | None = None) -> bool:
    """Whether ``tag`` records a protection (of one of ``projects``, when given: a
    project's name and its old ones)."""
    if not tag.startswith(PROTECTED_PREFIX):
        return False
    return projects is None or tag[len(PROTECTED_PREFIX) :] in projects


def read_applied(tags: Iterable[str], project: str) -> dict[str, str] | None:
    """Field -> digest from ``project``'s record among ``tags`` (None when it has none;
    {} when its record names no field)."""
    for tag in tags:
        if is_applied_tag(tag, project):
            record: dict[str, str] = {}
            for part in tag.partition("=")[2].split(","):
                name, _, value = part.partition(".")
                if name in MUTABLE_FIELDS and len(value) == _DIGEST_LEN:
                    record[name] = value
            return record
    return None


def read_protection(tags: Sequence[str], projects: Sequence[str]) -> bool | None:
    """The ``preventDestroy`` the record of the first of ``projects`` (a project's name,
    then its old ones) that has one says its last write applied (None: no record says,
    none or written before records held it)."""
    for project in projects:
        for tag in tags:
            if is_applied_tag(tag, project):
                for part in tag.partition("=")[2].split(","):
                    name, _, value = part.partition(".")
                    if name == _PROTECTION and value in ("0", "1"):
                        return value == "1"
    return None


def recorded_protection(tags: Sequence[str], projects: Sequence[str]) -> bool | None:
    """The protection a session's last write recorded in its tags: the protection tag of
    one of ``projects`` (a project's name, then its old ones), else its record's note
    (:func:`read_protection`); None when neither says (written before either existed)."""
    if any(is_protected_tag(t, projects) for t in tags):
        return True
    return read_protection(tags, projects)


def cause_of(name: str, desired: DesiredSession, record: Mapping[str, str] | None) -> Cause | None:
    """Why mutable field ``name`` differs: see the module doc. A record that does not
    name the field: the last write did not manage it (not declared, or ignored), so the
    manifest now declaring it is the change."""
    if record is None:
        return None
    applied = record.get(name)
    if applied is None:
        return "manifest"
    return "drift" if digest(name, desired.resolved.get(name)) == applied else "manifest"


def with_adopted_tag(tags: Sequence[Any]) -> list[Any]:
    """``tags`` with :data:`ADOPTED_TAG` (once)."""
    return [*tags, ADOPTED_TAG] if ADOPTED_TAG not in tags else list(tags)


def with_applied_tag(tags: Sequence[Any], project: str, tag: str | None) -> list[Any]:
    """``tags`` with ``project``'s record replaced by ``tag`` (dropped when None)."""
    kept = [t for t in tags if not (isinstance(t, str) and is_applied_tag(t, project))]
    return [*kept, tag] if tag is not None else kept


def with_protected_tag(
    tags: Sequence[Any], project: str, protect: bool, formerly: Collection[str] = ()
) -> list[Any]:
    """``tags`` with ``project``'s protection tag when ``protect``, and no protection tag
    of ``project`` otherwise nor of its old names (``formerly``)."""
    names = {project, *formerly}
    kept = [t for t in tags if not (isinstance(t, str) and is_protected_tag(t, names))]
    return [*kept, protected_tag(project)] if protect else kept
