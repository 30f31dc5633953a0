"""Policy as code: ``kind: Policy`` documents of CEL rules, compiled once per run and
evaluated on every plan (and, offline, by ``validate``).

- :func:`compile_policies`: declared policies -> a :class:`PolicySet` (exit 65 at the
  rule for one that does not compile or cannot give a boolean).
- :func:`check_overrides`: ``--override-policy`` names (exit 64 for an unknown or
  non-overridable policy).
- :func:`evaluate_policies`: the findings of a plan (or, without a plan, of the session
  rules that need no hub). ``planner.safety`` refuses a plan with a deny finding that
  no override lifted (exit 3; ``--force`` never lifts it).
- :func:`record_overrides`: lifted policies into the affected create bodies.

The CEL package (``engine``) is imported only when a policy is compiled.
"""

from __future__ import annotations

from reconciler.policy.compile import PolicySet, check_overrides, compile_policies
from reconciler.policy.evaluate import evaluate_policies
from reconciler.policy.overrides import overridden_policies, record_overrides

__all__ = [
    "PolicySet",
    "check_overrides",
    "compile_policies",
    "evaluate_policies",
    "overridden_policies",
    "record_overrides",
]
