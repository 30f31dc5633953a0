"""Why a replacement is needed: which create-only fields differ from the hub's record.

The decision to replace is the marker hash alone; this module only explains it. It
reads the single-session GET (``details``), which carries task, repo(s), env, metadata,
workflowMode and workspace. Values under ``env`` are compared by key only: the hub's
values are never read and the manifest's are never shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.model import DesiredSession, FieldChange, canonical_json
from reconciler.planner.body import plain

__all__ = ["FINGERPRINT_FIELD", "HIDDEN_FIELDS", "create_only_changes"]

# The field name used when the difference cannot be pinned down.
FINGERPRINT_FIELD = "create-only fingerprint"
# Create-only fields the single-session GET does not report.
HIDDEN_FIELDS: tuple[str, ...] = ("loop", "savedSkillIds", "skillBucketIds", "env values")


def _project(remote: Any, desired: Any) -> Any:
    """``remote`` cut down to the keys ``desired`` names, recursively.

    The hub fills in derived repository fields (ids, URLs) that the manifest never
    wrote; those are not differences the user made.
    """
    if isinstance(remote, Mapping) and isinstance(desired, Mapping):
        return {k: _project(remote[k], desired[k]) for k in desired if k in remote}
    if isinstance(remote, list) and isinstance(desired, list) and len(remote) == len(desired):
        return [_project(r, d) for r, d in zip(remote, desired, strict=True)]
    return remote


def _differs(before: Any, after: Any) -> bool:
    return canonical_json(before) != canonical_json(after)


def _detail_value(detail: Mapping[str, Any], field: str) -> Any:
    if field == "workspaceId":
        workspace = detail.get("workspace")
        if isinstance(workspace, Mapping):
            return workspace.get("id")
        return detail.get("workspaceId")
    if field == "metadata":
        metadata = detail.get("metadata")
        if not isinstance(metadata, Mapping):
            return None
        user = {k: v for k, v in metadata.items() if k != "reconciler"}
        return user or None
    return detail.get(field)


def create_only_changes(
    desired: DesiredSession,
    detail: Mapping[str, Any] | None,
    *,
    old_hash: str,
) -> tuple[FieldChange, ...]:
    """The create-only fields that force a replacement, most telling first.

    Without ``detail`` (or when every reported field matches, so the difference lies
    in a field the hub does not report), a single change names the fingerprint itself.
    """
    fallback = FieldChange(field=FINGERPRINT_FIELD, before=old_hash, after=desired.spec_hash)
    if detail is None:
        return (fallback,)
    spec = desired.spec
    ignored = set(desired.lifecycle.ignore_changes)
    changes: list[FieldChange] = []
    for field in ("task", "workflowMode", "repo", "repos", "workspaceId", "metadata"):
        if field in ignored:
            continue
        after = plain(spec.get(field))
        before = _detail_value(detail, field)
        if field == "workflowMode" and after is None:
            continue  # left out: the hub's default is not a difference
        if field in ("repo", "repos") and after is not None:
            before = _project(before, after)
        if field == "metadata" and after == {}:
            after = None
        if _differs(before, after):
            changes.append(FieldChange(field=field, before=before, after=after))
    if "env" not in ignored:
        wanted = set((spec.get("env") or {}).keys())
        remote_env = detail.get("env")
        have = set(remote_env.keys()) if isinstance(remote_env, Mapping) else set()
        if wanted != have:
            changes.append(
                FieldChange(
                    field="env",
                    added=tuple(sorted(wanted - have)),
                    removed=tuple(sorted(have - wanted)),
                    sensitive=True,
                )
            )
    return tuple(changes) or (fallback,)
