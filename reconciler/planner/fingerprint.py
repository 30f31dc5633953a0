"""The precondition of an action: a fingerprint of the observed fields it depends on."""

from __future__ import annotations

import hashlib

from reconciler.model import RemoteSession, canonical_json, declared_skill, normalise_visibility

__all__ = ["fingerprint"]


def fingerprint(remote: RemoteSession) -> str:
    """sha256 (first 16 hex digits) over status, label, visibility, defaultAgent, tags, skills.

    Tags and skills are sets on the hub, so their order does not change the fingerprint;
    of a skill only what a manifest can declare counts (see ``declared_skill``);
    a saved plan is stale exactly when one of these fields changed since it was made.
    """
    state = {
        "status": remote.status,
        "label": remote.label,
        "visibility": normalise_visibility(remote.visibility) if remote.visibility else None,
        "defaultAgent": remote.default_agent,
        "tags": sorted(set(remote.tags)),
        # What a manifest can declare: keys the service adds to a skill are not planned on.
        "skills": sorted({canonical_json(declared_skill(s)) for s in remote.skills}),
    }
    return hashlib.sha256(canonical_json(state).encode("utf-8")).hexdigest()[:16]
