"""Executes a Plan through the Coder client: ordered, parallel, idempotent, resumable.

- ``steps``: phases and the steps of each action;
- ``envresolve``: ``${env:...}`` resolved at apply time, all checked before any request;
- ``create``: the idempotent create (settled by marker tag, never repeated blindly);
- ``lifecycle``: update/resume/archive/delete, settled when an answer is lost;
- ``executor``: ``apply_plan``;
- ``stale``: whether a saved plan still matches the hub;
- ``duplicates``: after the actions, duplicates of the markers written (two applies at
  once) archived, the oldest kept;
"""

from __future__ import annotations

from reconciler.applier.executor import apply_plan
from reconciler.applier.stale import check_stale, stale_actions

__all__ = ["apply_plan", "check_stale", "stale_actions"]
