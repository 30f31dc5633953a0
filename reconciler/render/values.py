"""How values look in a plan: JSON-ish scalars, ``(sensitive)`` for secrets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["SENSITIVE", "UNSET", "fmt", "mask_body_env"]

SENSITIVE = "(sensitive)"
UNSET = "(unset)"


def fmt(value: Any) -> str:
    """One value on one line: JSON (keys sorted), ``(unset)`` for None."""
    if value is None:
        return UNSET
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def mask_body_env(body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with every value under ``env`` replaced by ``(sensitive)``."""
    out = dict(body)
    env = out.get("env")
    if isinstance(env, Mapping):
        out["env"] = {k: SENSITIVE for k in env}
    return out
