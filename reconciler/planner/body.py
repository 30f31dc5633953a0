"""The create payload: the spec as written, the marker tag, and ``metadata.reconciler``.

``metadata.reconciler`` holds the lineage (project, name, hash, source, commit,
replaces, set) and the declared form of the create-only fields, so that a replacement can
name what changed and ``export`` can write the session back as it was declared (the
hub reports references resolved, defaults filled in, some fields not at all):

    declared    {field: value as written}  (``${env:...}`` unresolved)
    unrecorded  [field, ...]  declared, but too large or deep to record here
    lifecycle   {preventDestroy, ignoreChanges}  (only when not the default)

Never a secret: an ``env`` value written literally, in full or in part (anything but
one bare ``${env:NAME}``: text beside it, or a default but to a ``plainEnv`` variable),
is recorded as ``null``. The record is
bounded (``RECORD_BUDGET_BYTES``, ``RECORD_MAX_DEPTH``) so that it never makes a valid
create body much larger or deeper; what does not fit is listed in ``unrecorded`` and
read from the hub instead.
``planner.declared`` reads the record back.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from reconciler.apifacts import body_depth
from reconciler.fields import CREATE_ONLY_FIELDS, SECRET_FIELDS, spec_field
from reconciler.manifest.envref import as_written_is_secret_free
from reconciler.model import DesiredSession, Lifecycle, canonical_json, plain
from reconciler.planner.applied import applied_tag, with_applied_tag, with_protected_tag

__all__ = [
    "ENV_FORM",
    "ENV_FORM_KEY",
    "RECORD_BUDGET_BYTES",
    "RECORD_MAX_DEPTH",
    "create_body",
    "declared_form",
    "lifecycle_record",
    "plain",
    "record_fields",
    "tags_with_marker",
]


# The lineage key saying how the record's env values were kept (``planner.declared``).
ENV_FORM_KEY = "envForm"
ENV_FORM = "references"
# At most this many bytes (canonical JSON) of declared values per session...
RECORD_BUDGET_BYTES = 16 * 1024
# ...each at most this deep (it sits three levels down, under metadata.reconciler).
RECORD_MAX_DEPTH = 16


def declared_form(spec: Mapping[str, Any], plain_env: Collection[str] = ()) -> dict[str, Any]:
    """The create-only fields ``spec`` declares, as written; a secret field's values
    written literally, in full or in part (``envref.as_written_is_secret_free``, with
    ``plain_env``: ``DesiredSession.plain_env``) as None."""
    form: dict[str, Any] = {}
    for key in CREATE_ONLY_FIELDS:
        if key not in spec:
            continue
        value = plain(spec[key])
        if spec_field(key).secret and isinstance(value, dict):
            value = {
                k: (v if as_written_is_secret_free(v, plain_env) else None)
                for k, v in value.items()
            }
        form[key] = value
    return form


def _size(value: Any) -> int | None:
    try:
        return len(canonical_json(value).encode("utf-8"))
    except (RecursionError, ValueError):
        return None


def record_fields(spec: Mapping[str, Any], plain_env: Collection[str] = ()) -> dict[str, Any]:
    """``{"declared": ..., "unrecorded": [...]}`` for ``spec`` (``unrecorded`` when any).

    Fields are taken smallest first while the budget lasts, so one large task never
    crowds out the env references.
    """
    form = declared_form(spec, plain_env)
    whole = _size(form)
    fits = whole is not None and whole <= RECORD_BUDGET_BYTES
    if fits and body_depth(form, RECORD_MAX_DEPTH + 1) <= RECORD_MAX_DEPTH + 1:
        return {"declared": form}  # the common case: all of it fits
    sized: list[tuple[int, str]] = []
    unrecorded: list[str] = []
    for key, value in form.items():
        size = _size(value) if body_depth(value, RECORD_MAX_DEPTH) <= RECORD_MAX_DEPTH else None
        if size is None:
            unrecorded.append(key)
        else:
            sized.append((size, key))
    left = RECORD_BUDGET_BYTES
    kept: set[str] = set()
    for size, key in sorted(sized):
        if size <= left:
            kept.add(key)
            left -= size
        else:
            unrecorded.append(key)
    out: dict[str, Any] = {"declared": {k: v for k, v in form.items() if k in kept}}
    if unrecorded:
        out["unrecorded"] = [k for k in form if k in unrecorded]
    return out


def lifecycle_record(lifecycle: Lifecycle) -> dict[str, Any] | None:
    """The lifecycle block as declared, or None when it is the default."""
    out: dict[str, Any] = {}
    if lifecycle.prevent_destroy:
        out["preventDestroy"] = True
    if lifecycle.ignore_changes:
        out["ignoreChanges"] = list(lifecycle.ignore_changes)
    return out or None


def tags_with_marker(tags: Sequence[Any], marker_tag: str) -> list[Any]:
    """``tags`` (order kept, duplicates dropped) with the marker tag appended once."""
    out: list[Any] = []
    for tag in [*tags, marker_tag]:
        if tag not in out:
            out.append(tag)
    return out


def create_body(
    project: str,
    desired: DesiredSession,
    *,
    commit: str | None = None,
    replaces: str | None = None,
) -> dict[str, Any]:
    """``POST /hub/session`` body for ``desired``: references to plain variables resolved
    (their values are shown in plans), those under ``env`` left for apply to resolve.

    Its tags carry the marker, the record of the mutable values applied, and the
    protection tag when the declaration says ``preventDestroy`` (``planner.applied``).

    The user's metadata keys are kept and ``metadata.reconciler`` records the lineage
    and the declared form; the marker hash covers only the user's metadata, so adding
    them never changes it.
    """
    marker_tag = desired.marker_tag(project)
    body: dict[str, Any] = plain(desired.resolved)
    for name in SECRET_FIELDS & desired.spec.keys():
        # As written, whatever `resolved` holds: apply resolves a secret field.
        body[name] = plain(desired.spec[name])
    tags = tags_with_marker(body.get("tags", []), marker_tag)
    tags = with_applied_tag(tags, project, applied_tag(project, desired))
    body["tags"] = with_protected_tag(tags, project, desired.lifecycle.prevent_destroy)
    lineage: dict[str, Any] = {
        "project": project,
        "name": desired.name,
        "hash": desired.spec_hash,
    }
    if desired.source is not None:
        lineage["source"] = str(desired.source)
    if commit:
        lineage["commit"] = commit
    if replaces:
        lineage["replaces"] = replaces
    if desired.set_name is not None:
        lineage["set"] = desired.set_name  # export leaves a set's sessions to the set
    lineage.update(record_fields(desired.spec, desired.plain_env))
    # Its env values are bare references (or a plainEnv variable's default), nothing
    # written literally: an older version's record may hold more (export reads it so).
    lineage[ENV_FORM_KEY] = ENV_FORM
    lifecycle = lifecycle_record(desired.lifecycle)
    if lifecycle is not None:
        lineage["lifecycle"] = lifecycle
    body["metadata"] = {**body.get("metadata", {}), "reconciler": lineage}
    return body
