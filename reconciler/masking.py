"""How secret values look wherever they are shown: ``(sensitive)``, never the value.

Values under a secret field (``fields.SECRET_FIELDS``: ``env``) are secret
(docs/concepts/secrets.md). The plan document, the renderers and the API commands all
hide them the same way, with this one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.fields import SECRET_FIELDS

__all__ = ["SENSITIVE", "mask_body_env"]

SENSITIVE = "(sensitive)"


def mask_body_env(body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with every value under a secret field (``env``) replaced by ``(sensitive)``."""
    out = dict(body)
    for name in SECRET_FIELDS:
        values = out.get(name)
        if isinstance(values, Mapping):
            out[name] = {k: SENSITIVE for k in values}
    return out
