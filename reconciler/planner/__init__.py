"""The planner: desired + observed -> Plan. Pure: no I/O, no clock, no environment.

- :func:`needs_detail`: which sessions need the single-session GET (replacements).
- :func:`plan`: the Plan.
- :func:`check_safety`: refuse what is dangerous.
- :func:`check_replace_names`: ``--replace`` names must be declared active.
- :func:`fingerprint`: the precondition of an action on an observed session.
"""

from __future__ import annotations

from reconciler.planner.core import check_replace_names, needs_detail, plan
from reconciler.planner.fingerprint import fingerprint
from reconciler.planner.safety import check_safety, safety_violations

__all__ = [
    "check_replace_names",
    "check_safety",
    "fingerprint",
    "needs_detail",
    "plan",
    "safety_violations",
]
