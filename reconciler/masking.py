"""How secret values look wherever they are shown: ``(sensitive)``, never the value.

Values under ``env`` are secret (docs/concepts/secrets.md). The plan document, the renderers and the
API commands all hide them the same way, with this one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SENSITIVE", "mask_body_env"]

SENSITIVE = "(sensitive)"


def mask_body_env(body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with every value under ``env`` replaced by ``(sensitive)``."""
    out = dict(body)
    env = out.get("env")
    if isinstance(env, Mapping):
        out["env"] = {k: SENSITIVE for k in env}
    return out
