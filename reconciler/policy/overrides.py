"""``--override-policy``: what it lifted, written where it is looked for later.

The findings an override lifted are kept in the plan (shown as overridden, never
refused); each create or replace of an affected session records the policies in its
``metadata.reconciler.policyOverrides`` (a plan-scope override affects every session
the plan creates). The marker hash covers only the user's metadata, so the record
never changes it. The apply report lists the policies (``ApplyReport.policy_overrides``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from reconciler.model import Action, Plan, PolicyFinding

__all__ = ["OVERRIDES_KEY", "overridden_policies", "record_overrides"]

OVERRIDES_KEY = "policyOverrides"


def overridden_policies(findings: Sequence[PolicyFinding]) -> tuple[str, ...]:
    """The names of the policies an override lifted, sorted."""
    return tuple(sorted({f.policy for f in findings if f.overridden}))


def _recorded(action: Action, names: Sequence[str]) -> Action:
    body: dict[str, Any] = dict(action.body or {})
    metadata = dict(body.get("metadata") or {})
    lineage = dict(metadata.get("reconciler") or {})
    lineage[OVERRIDES_KEY] = list(names)
    metadata["reconciler"] = lineage
    body["metadata"] = metadata
    return dataclasses.replace(action, body=body)


def record_overrides(plan: Plan) -> Plan:
    """``plan`` with each affected create/replace body recording its overrides."""
    lifted = [f for f in plan.findings if f.overridden]
    if not lifted:
        return plan
    whole_plan = {f.policy for f in lifted if f.session is None}
    by_session: dict[str, set[str]] = {}
    for finding in lifted:
        if finding.session is not None:
            by_session.setdefault(finding.session, set()).add(finding.policy)
    actions = []
    for action in plan.actions:
        names = by_session.get(action.name, set()) | whole_plan
        if names and action.kind in ("create", "replace") and action.body is not None:
            action = _recorded(action, sorted(names))
        actions.append(action)
    return dataclasses.replace(plan, actions=tuple(actions))
