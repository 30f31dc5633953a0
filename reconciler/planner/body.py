"""The create payload: the spec as written, the marker tag, and ``metadata.reconciler``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.model import DesiredSession

__all__ = ["create_body", "plain", "tags_with_marker"]


def plain(value: Any) -> Any:
    """A JSON-ready deep copy (Mappings and tuples from the loader become dicts/lists)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


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
    """``POST /hub/session`` body for ``desired``, with references left unresolved.

    The user's metadata keys are kept and ``metadata.reconciler`` records the lineage;
    the marker hash covers only the user's metadata, so adding lineage never changes it.
    """
    marker_tag = desired.marker_tag(project)
    body: dict[str, Any] = plain(desired.spec)
    body["tags"] = tags_with_marker(body.get("tags", []), marker_tag)
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
    body["metadata"] = {**body.get("metadata", {}), "reconciler": lineage}
    return body
