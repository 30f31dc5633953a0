"""One Plan in the format a user asked for: what `plan` and `show` print on stdout."""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.errors import SafetyViolation
from reconciler.model import Plan
from reconciler.planfile import plan_to_dict
from reconciler.render.markdown import render_plan_markdown
from reconciler.render.text import render_plan_text

__all__ = ["PLAN_FORMATS", "render_plan_as"]

PLAN_FORMATS: tuple[str, ...] = ("text", "json", "markdown")


def render_plan_as(
    plan: Plan,
    fmt: str,
    *,
    color: bool = False,
    refusals: Sequence[SafetyViolation] = (),
) -> str:
    """``plan`` as ``fmt`` (one of :data:`PLAN_FORMATS`), ending with a newline.

    JSON is the plan document with every value under ``env`` masked, and the safety
    rules that refuse it (``refusals``, ``planner.safety.refusals``) when any do: text
    readers get those on stderr; a JSON reader in the one document, and Markdown (a pull
    request comment) at its top, as well as on stderr.
    """
    if fmt == "json":
        document = plan_to_dict(plan)
        if refusals:
            document["refusals"] = [v.to_dict() for v in refusals]
        return json.dumps(document, indent=2, sort_keys=True) + "\n"
    if fmt == "markdown":
        return render_plan_markdown(plan, refusals=refusals)
    if fmt == "text":
        return render_plan_text(plan, color=color)
    raise ValueError(f"unknown plan format {fmt!r}")
