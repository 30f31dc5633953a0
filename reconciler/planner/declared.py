"""Reading back the declared form a session was created from (``metadata.reconciler``).

``planner.body`` writes the record (what it holds, why, and its bounds are described
there). This module reads it and trusts nothing: a malformed record, or one holding a
value under ``env`` that is not a reference, reads as none. Sessions created before the
record existed have none either; callers then fall back to the hub's own report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.fields import SECRET_FIELDS
from reconciler.manifest.envref import holds_reference
from reconciler.model import CREATE_ONLY_FIELDS, Lifecycle
from reconciler.planner.body import ENV_FORM, ENV_FORM_KEY

__all__ = ["DeclaredRecord", "read_created_as", "read_record", "read_set_name"]


@dataclass(frozen=True)
class DeclaredRecord:
    """What ``metadata.reconciler`` says a session was declared as."""

    hash: str | None
    declared: Mapping[str, Any]
    unrecorded: tuple[str, ...]
    lifecycle: Lifecycle | None
    # Written by a version that keeps only bare references under env (planner.body's
    # ENV_FORM): an older record may hold a value written literally in part.
    references_only: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        """Every create-only field the manifest declared, recorded or not."""
        return tuple(k for k in CREATE_ONLY_FIELDS if k in self.declared or k in self.unrecorded)


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def read_record(metadata: Any) -> DeclaredRecord | None:
    """The record in a session's ``metadata``, or None (made before it, or malformed)."""
    if not isinstance(metadata, Mapping):
        return None
    lineage = metadata.get("reconciler")
    if not isinstance(lineage, Mapping):
        return None
    declared = lineage.get("declared")
    unrecorded = _strings(lineage.get("unrecorded", []))
    if not isinstance(declared, Mapping) or unrecorded is None:
        return None
    if any(k not in CREATE_ONLY_FIELDS for k in [*declared, *unrecorded]):
        return None
    for name in SECRET_FIELDS & declared.keys():
        values = declared[name]
        if not (
            isinstance(values, Mapping)
            and all(v is None or holds_reference(v) for v in values.values())
        ):
            return None  # never trust (or show) a secret value that is not a reference
    lifecycle: Lifecycle | None = None
    raw = lineage.get("lifecycle")
    if isinstance(raw, Mapping):
        ignore = _strings(raw.get("ignoreChanges", []))
        prevent = raw.get("preventDestroy", False)
        if ignore is not None and isinstance(prevent, bool):
            lifecycle = Lifecycle(prevent_destroy=prevent, ignore_changes=ignore)
    hash_ = lineage.get("hash")
    return DeclaredRecord(
        hash=hash_ if isinstance(hash_, str) else None,
        declared=dict(declared),
        unrecorded=unrecorded,
        lifecycle=lifecycle,
        references_only=lineage.get(ENV_FORM_KEY) == ENV_FORM,
    )


def read_created_as(metadata: Any, project: str) -> str | None:
    """The name ``project`` created a session as (``metadata.reconciler``'s lineage,
    which PATCH never changes), or None when another project, or nothing, made it."""
    lineage = metadata.get("reconciler") if isinstance(metadata, Mapping) else None
    if not isinstance(lineage, Mapping) or lineage.get("project") != project:
        return None
    name = lineage.get("name")
    return name if isinstance(name, str) else None


def read_set_name(metadata: Any) -> str | None:
    """The SessionSet a session was created by (``metadata.reconciler.set``), or None."""
    lineage = metadata.get("reconciler") if isinstance(metadata, Mapping) else None
    name = lineage.get("set") if isinstance(lineage, Mapping) else None
    return name if isinstance(name, str) else None
