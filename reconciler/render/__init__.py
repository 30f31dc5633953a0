"""Renderers: plans and apply reports as text, JSON documents and Markdown.

Renderers read values and return strings or dicts; they never write. Values under
``env`` are shown as ``(sensitive)`` everywhere.
"""

from __future__ import annotations

from reconciler.render.jsondoc import (
    FORMAT_VERSION,
    plan_from_dict,
    plan_to_dict,
    report_to_dict,
)
from reconciler.render.markdown import render_plan_markdown
from reconciler.render.text import render_plan_text, render_report_text

__all__ = [
    "FORMAT_VERSION",
    "plan_from_dict",
    "plan_to_dict",
    "render_plan_markdown",
    "render_plan_text",
    "render_report_text",
    "report_to_dict",
]
