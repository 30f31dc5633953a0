"""Plans as Markdown for pull request comments and GitHub step summaries.

A summary table, then one ``<details>`` block per action. GitHub refuses comments over
65,536 characters, so the document is kept under :data:`MAX_CHARS` and says so when
actions were left out.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from reconciler.errors import SafetyViolation
from reconciler.model import TOKEN_ORG, Plan
from reconciler.planfile import KINDS
from reconciler.render.findings import (
    finding_line,
    findings_heading,
    refused_adoption_line,
    refused_adoptions_heading,
)
from reconciler.render.text import (
    SYMBOLS,
    action_lines,
    grouped,
    left_out_message,
    no_changes_message,
    set_heading,
)
from reconciler.render.values import escape_controls

__all__ = ["MAX_CHARS", "render_plan_markdown"]

MAX_CHARS = 60_000


def _fence(text: str) -> str:
    # A fence longer than any backtick run inside, so values cannot close it.
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _code(text: str) -> str:
    """``text`` as an inline code span: what a Policy's message holds (a link, an image,
    an @mention, emphasis) shows as written, never rendered, in a trusted comment."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    return f"{ticks} {text} {ticks}" if "`" in text else f"{ticks}{text}{ticks}"


def _block(lines: list[str]) -> str:
    summary = html.escape(lines[0].strip())
    text = "\n".join(lines)
    fence = _fence(text)
    return (
        f"<details><summary><code>{summary}</code></summary>\n\n"
        f"{fence}text\n{text}\n{fence}\n\n</details>\n\n"
    )


def render_plan_markdown(
    plan: Plan, *, max_chars: int = MAX_CHARS, refusals: Sequence[SafetyViolation] = ()
) -> str:
    """The plan as Markdown, at most ``max_chars`` characters; first, the safety rules
    that refuse it (``refusals``): the Markdown is what a pull request comment shows,
    and apply would stop there."""
    head = [f"### reconciler plan: `{escape_controls(plan.project)}`", ""]
    facts = [
        f"{label} `{escape_controls(value)}`"
        for label, value in (
            ("org", plan.org_id),
            ("endpoint", plan.endpoint),
            ("commit", plan.commit),
        )
        if value
    ]
    if plan.endpoint and not plan.org_id:
        facts.insert(0, TOKEN_ORG)
    if facts:
        head += [" · ".join(facts), ""]
    if refusals:  # first: a refusal is what a reviewer must see
        # Safety rules and deny Policies alike: each line says which.
        n = len(refusals)
        head += [f"**Refused: apply would stop here ({n} refusal{'' if n == 1 else 's'}).**", ""]
        head += [f"- {_code(v.line())}" for v in refusals] + [""]
    if plan.refused_adoptions:  # first: a refusal is what a reviewer must see
        head += [f"**{refused_adoptions_heading(plan.refused_adoptions)}**", ""]
        head += [f"- {_code(refused_adoption_line(r))}" for r in plan.refused_adoptions] + [""]
    if plan.findings:  # first: a refusal or a warning is what a reviewer must see
        head += [f"**{findings_heading(plan.findings)}**", ""]
        head += [f"- {_code(finding_line(f))}" for f in plan.findings] + [""]
    if not plan.has_changes:
        head.append(f"**{no_changes_message(plan)}**")
        return "\n".join(head) + "\n"
    head += ["| | action | count |", "| --- | --- | ---: |"]
    head += [f"| `{SYMBOLS[k]}` | {k} | {plan.count(k)} |" for k in KINDS]
    head += ["", f"**{plan.summary()}**", ""]
    if plan.left_out:
        head += [left_out_message(plan), ""]
    out = "\n".join(head) + "\n"
    total = len(plan.actions)
    # Room for the note that says the rest was cut.
    budget = max_chars - 300
    ordered = [
        (set_heading(name, actions) if name is not None and i == 0 else None, action)
        for name, actions in grouped(plan)
        for i, action in enumerate(actions)
    ]
    for shown, (heading, action) in enumerate(ordered):
        block = _block(action_lines(action))
        if heading is not None:
            block = f"#### {html.escape(heading)}\n\n{block}"
        if len(out) + len(block) > budget:
            out += (
                f"\n> **Cut:** {total - shown} of {total} actions are not shown, to keep this "
                f"under {max_chars:,} characters. Run `reconciler plan` for the whole plan.\n"
            )
            break
        out += block
    return out
