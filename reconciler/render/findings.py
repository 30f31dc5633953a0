"""What the ``kind: Policy`` rules found, as lines under a plan (text and Markdown).

Policies: 1 deny, 1 warn, 1 overridden
  deny loop-budget (policies.yaml:12): nightly (ops.yaml:3): loops run at most 50 ...
  warn owner-tag (policies.yaml:5): docs-writer (product.yaml:22): no owner tag
  overridden max-creates (policies.yaml:30): the plan: 21 creates, at most 20

and the ``adopt:`` lines the plan refuses (``Plan.refused_adoptions``):

Adoptions refused (createOnlyDiffers; --force cannot lift it): 1
  gamma (codesess_8ff7, adopt at gamma.yaml:1): create-only fields differ: task
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.model import CREATE_ONLY_DIFFERS, PolicyFinding, RefusedAdoption
from reconciler.render.values import escape_controls

__all__ = ["finding_line", "findings_heading", "refused_adoption_line", "refused_adoptions_heading"]


def _word(finding: PolicyFinding) -> str:
    return "overridden" if finding.overridden else finding.action


def finding_line(finding: PolicyFinding) -> str:
    """One finding on one line: what, which policy and rule, which session, why."""
    rule = finding.policy
    if finding.rule_source is not None:
        rule += f" ({finding.rule_source})"
    if finding.session is None:
        where = "the plan"
    elif finding.session_source is not None:
        where = f"{finding.session} ({finding.session_source})"
    else:
        where = finding.session
    return escape_controls(f"{_word(finding)} {rule}: {where}: {finding.message}")


def findings_heading(findings: Sequence[PolicyFinding]) -> str:
    """``Policies: 1 deny, 2 warn`` (counts of the words the lines start with)."""
    counts: dict[str, int] = {}
    for finding in findings:
        counts[_word(finding)] = counts.get(_word(finding), 0) + 1
    order = ("deny", "warn", "overridden")
    return "Policies: " + ", ".join(f"{counts[w]} {w}" for w in order if w in counts)


def refused_adoptions_heading(refused: Sequence[RefusedAdoption]) -> str:
    return f"Adoptions refused ({CREATE_ONLY_DIFFERS}; --force cannot lift it): {len(refused)}"


def refused_adoption_line(refused: RefusedAdoption) -> str:
    """One refused ``adopt:`` line: the declaration, the session, the fields that differ."""
    fields = ", ".join(refused.fields)
    return escape_controls(f"{refused.label}: create-only fields differ: {fields}")
