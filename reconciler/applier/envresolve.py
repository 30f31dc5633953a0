"""``${env:...}`` in the bodies an apply sends, resolved at apply time.

Every body is checked before the first request, so an unset variable stops the whole
apply (exit 65) instead of failing some actions after others already ran. Only names
reach the error; values never leave this module except in the resolved bodies.
``metadata.reconciler`` is the tool's record of the manifest as written (references
and all, see ``planner.body``): it is sent as it is, never resolved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.errors import UnsetEnvError
from reconciler.manifest.envref import resolve, unset_names
from reconciler.model import Action

__all__ = ["resolve_bodies"]


def resolve_bodies(
    actions: Sequence[Action], environ: Mapping[str, str]
) -> dict[int, dict[str, Any]]:
    """The resolved body of every action that sends one, by plan index.

    Raises ``UnsetEnvError`` naming every unset variable and the actions that need it.
    """
    missing: set[str] = set()
    where: list[str] = []
    for action in actions:
        if action.body is None:
            continue
        names = unset_names(action.body, environ)
        if names:
            missing |= names
            where.append(f"{action.kind} {action.name}")
    if missing:
        raise UnsetEnvError(missing, where=where)
    return {
        index: _resolved(action.body, environ)
        for index, action in enumerate(actions)
        if action.body is not None
    }


def _resolved(body: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    metadata = body.get("metadata")
    if not (isinstance(metadata, Mapping) and "reconciler" in metadata):
        return dict(resolve(body, environ))
    user = {k: v for k, v in metadata.items() if k != "reconciler"}
    out = dict(resolve({**body, "metadata": user}, environ))
    out["metadata"] = {**out["metadata"], "reconciler": metadata["reconciler"]}
    return out
