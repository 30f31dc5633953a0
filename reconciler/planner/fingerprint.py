"""The precondition of an action: a fingerprint of the observed fields it depends on."""

from __future__ import annotations

import hashlib

from reconciler.fields import MUTABLE_FIELDS
from reconciler.model import MARKER_PREFIX, RemoteSession, canonical_json, comparable

__all__ = ["fingerprint"]


def fingerprint(remote: RemoteSession) -> str:
    """sha256 (first 16 hex digits) over status, the mutable fields and the tool's tags.

    Each mutable field as the planner compares it (``model.comparable``: tags and skills
    are sets, of a skill only what a manifest can declare counts), and the
    ``reconciler:`` tags apart (markers, records); a saved plan is stale exactly when
    one of these changed since it was made.
    """
    state = {
        "status": remote.status,
        **{name: comparable(name, remote.reported(name)) for name in MUTABLE_FIELDS},
        "reserved": sorted({t for t in remote.tags if t.startswith(MARKER_PREFIX)}),
    }
    return hashlib.sha256(canonical_json(state).encode("utf-8")).hexdigest()[:16]
