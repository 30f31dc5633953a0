"""Everything drawn for people: plans as text and Markdown, apply reports as text and
JSON, apply progress lines (``render.progress``).

Renderers read values and return strings or dicts; they never write. Values under
``env`` are shown as ``(sensitive)`` everywhere. The plan's JSON document is
:mod:`reconciler.planfile`, which reads plans as well as writing them.
"""

from __future__ import annotations

from reconciler.render.formats import PLAN_FORMATS, render_plan_as
from reconciler.render.jsondoc import report_to_dict
from reconciler.render.markdown import render_plan_markdown
from reconciler.render.text import render_plan_text, render_report_text

__all__ = [
    "PLAN_FORMATS",
    "render_plan_as",
    "render_plan_markdown",
    "render_plan_text",
    "render_report_text",
    "report_to_dict",
]
