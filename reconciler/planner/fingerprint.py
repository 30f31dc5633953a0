"""The precondition of an action: a fingerprint of the observed fields it depends on."""

from __future__ import annotations

import hashlib

from reconciler.model import RemoteSession, canonical_json, normalise_visibility

__all__ = ["fingerprint"]


def fingerprint(remote: RemoteSession) -> str:
    """sha256 (first 16 hex digits) over status, label, visibility, defaultAgent, tags, skills.

    Tags and skills are sets on the hub, so their order does not change the fingerprint;
    a saved plan is stale exactly when one of these fields changed since it was made.
    """
    state = {
        "status": remote.status,
        "label": remote.label,
        "visibility": normalise_visibility(remote.visibility) if remote.visibility else None,
        "defaultAgent": remote.default_agent,
        "tags": sorted(set(remote.tags)),
        "skills": sorted({canonical_json(dict(s)) for s in remote.skills}),
    }
    return hashlib.sha256(canonical_json(state).encode("utf-8")).hexdigest()[:16]
