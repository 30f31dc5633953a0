"""Why a replacement is needed: which create-only fields differ, nested paths named.

The decision to replace is the marker hash alone; this module only explains it. It
reads the single-session GET (``details``). When the session records the declared form
it was created from (``metadata.reconciler.declared``, see ``planner.body``), the two
declared forms are compared with deepdiff and every changed path is named
(``env.GITHUB_TOKEN``, ``loop.maxIterations``, ``repos[1].branch``). Otherwise, and for
fields too large to have been recorded, the hub's report is compared field by field:
task, repo(s), env (keys), metadata, workflowMode and workspace. Values under ``env``
are never shown: the hub's are never read and the manifest's may be secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import notpresent

from reconciler.model import CREATE_ONLY_FIELDS, DesiredSession, FieldChange, canonical_json
from reconciler.planner.body import declared_form, plain
from reconciler.planner.declared import DeclaredRecord, read_record

__all__ = ["FINGERPRINT_FIELD", "HIDDEN_FIELDS", "create_only_changes"]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

# The field name used when the difference cannot be pinned down.
FINGERPRINT_FIELD = "create-only fingerprint"
# Create-only fields the single-session GET reports comparably (env: by key only).
_REPORTED_FIELDS: tuple[str, ...] = (
    "task",
    "workflowMode",
    "repo",
    "repos",
    "workspaceId",
    "metadata",
)
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


def _path_name(path: list[Any]) -> str:
    """``['loop', 'maxIterations']`` -> ``loop.maxIterations``; ``repos[1]``; odd keys quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:  # quoted and ASCII-escaped: a key never moves a terminal's cursor
            out += f"[{json.dumps(str(part))}]"
    return out


def _present(value: Any) -> Any:
    return None if value is notpresent else value


def _declared_changes(field: str, before: Any, after: Any) -> list[FieldChange]:
    """The changed paths between two declared values of one create-only field."""
    if field == "env":
        was = before if isinstance(before, Mapping) else {}
        now = after if isinstance(after, Mapping) else {}
        changes: list[FieldChange] = []
        added, removed = sorted(now.keys() - was.keys()), sorted(was.keys() - now.keys())
        if added or removed or (before is None) != (after is None):
            changes.append(
                FieldChange("env", added=tuple(added), removed=tuple(removed), sensitive=True)
            )
        # None on both sides is a literal value (never recorded): not comparable here.
        changes += [
            FieldChange(_path_name(["env", key]), sensitive=True)
            for key in sorted(was.keys() & now.keys())
            if was[key] != now[key]
        ]
        return changes
    diff = DeepDiff({field: before}, {field: after}, view="tree", verbose_level=2)
    found: list[tuple[str, FieldChange]] = []
    for levels in diff.values():
        for level in levels:
            path = level.path(output_format="list")
            name = _path_name(path)
            change = FieldChange(name, before=_present(level.t1), after=_present(level.t2))
            found.append((name, change))
    return [change for _, change in sorted(found, key=lambda item: item[0])]


def _literal_env_keys(before: Any, after: Any) -> list[str]:
    if not (isinstance(before, Mapping) and isinstance(after, Mapping)):
        return []
    return sorted(k for k in before.keys() & after.keys() if before[k] is None and after[k] is None)


def _from_record(
    desired: DesiredSession,
    detail: Mapping[str, Any],
    record: DeclaredRecord,
    ignored: set[str],
) -> list[FieldChange]:
    """Changes between the recorded declared form and ``desired``'s, in field order."""
    now = declared_form(desired.spec)
    was = record.declared
    changes: list[FieldChange] = []
    literal: list[str] = []
    for field in CREATE_ONLY_FIELDS:
        if field in ignored:
            continue
        if field in record.unrecorded:
            changes += _detail_changes(desired, detail, (field,))
            continue
        if field not in was and field not in now:
            continue
        if field == "env":
            literal = _literal_env_keys(was.get(field), now.get(field))
        changes += _declared_changes(field, was.get(field), now.get(field))
    if not changes and literal:
        # Every recorded field agrees, so the difference is in a value written
        # literally, which is never recorded: name the key, not the value.
        changes = [FieldChange(_path_name(["env", key]), sensitive=True) for key in literal]
    return changes


def _detail_changes(
    desired: DesiredSession, detail: Mapping[str, Any], fields: tuple[str, ...]
) -> list[FieldChange]:
    """The hub's report against ``desired``, for the reported create-only ``fields``."""
    spec = desired.spec
    changes: list[FieldChange] = []
    for field in fields:
        if field == "env":
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
            continue
        if field not in _REPORTED_FIELDS:
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
    return changes


def create_only_changes(
    desired: DesiredSession,
    detail: Mapping[str, Any] | None,
    *,
    old_hash: str,
) -> tuple[FieldChange, ...]:
    """The create-only fields (and paths inside them) that force a replacement.

    From the declared form recorded at create when the session has one (and it belongs
    to ``old_hash``); else from the hub's report. Fields named in ``ignoreChanges`` are
    left out. Without ``detail``, or when nothing visible differs, a single change names
    the fingerprint itself.
    """
    fallback = FieldChange(field=FINGERPRINT_FIELD, before=old_hash, after=desired.spec_hash)
    if detail is None:
        return (fallback,)
    ignored = set(desired.lifecycle.ignore_changes)
    record = read_record(detail.get("metadata"))
    if record is not None and record.hash in (None, old_hash):
        changes = _from_record(desired, detail, record, ignored)
    else:
        fields = (*_REPORTED_FIELDS, "env")
        changes = _detail_changes(desired, detail, tuple(f for f in fields if f not in ignored))
    return tuple(changes) or (fallback,)
