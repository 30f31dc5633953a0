"""The planner: desired + observed -> Plan. Pure: no I/O, no clock, no environment.

- :func:`ownership`: the project's observed sessions by declared name (made once).
- :func:`needs_detail`: which sessions need the single-session GET (replacements).
- :func:`plan`: the Plan.
- :func:`check_safety`: refuse what is dangerous.
- :class:`Scope` / :class:`ScopeFlags`: what a plan covers, resolved once.
- :func:`fingerprint`: the precondition of an action on an observed session.
"""

from __future__ import annotations

from reconciler.planner.core import (
    needs_detail,
    ownership,
    plan,
    spent_adopt_lines,
)
from reconciler.planner.fingerprint import fingerprint
from reconciler.planner.safety import check_safety, refusals, safety_violations
from reconciler.planner.scope import Scope, ScopeFlags

__all__ = [
    "Scope",
    "ScopeFlags",
    "check_safety",
    "fingerprint",
    "needs_detail",
    "ownership",
    "plan",
    "refusals",
    "safety_violations",
    "spent_adopt_lines",
]
