"""Plans and apply reports as text, in the manner of Terraform.

Colour only when asked (the CLI asks only on a terminal without NO_COLOR/--no-color).
Values under ``env`` never appear: only their keys, marked ``(sensitive)``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import click

from reconciler.fields import FIELD_ORDER, SECRET_FIELDS
from reconciler.masking import SENSITIVE
from reconciler.model import (
    MARKER_PREFIX,
    Action,
    ActionKind,
    ApplyReport,
    FieldChange,
    Plan,
    org_label,
)
from reconciler.render.findings import (
    finding_line,
    findings_heading,
    refused_adoption_line,
    refused_adoptions_heading,
)
from reconciler.render.values import escape_controls, fmt
from reconciler.render.worddiff import is_long_text, word_diff

__all__ = [
    "SYMBOLS",
    "action_lines",
    "grouped",
    "header_line",
    "left_out_message",
    "no_changes_message",
    "render_plan_text",
    "render_report_text",
    "set_heading",
]

SYMBOLS: dict[ActionKind, str] = {
    "create": "+",
    "update": "~",
    "replace": "-/+",
    "resume": ">",
    "archive": "-",
    "delete": "-",
}
_COLOURS: dict[ActionKind, str] = {
    "create": "green",
    "update": "yellow",
    "replace": "magenta",
    "resume": "cyan",
    "archive": "red",
    "delete": "red",
}
# Create bodies are shown in the fields' order; other keys follow, sorted.
_BODY_ORDER = FIELD_ORDER
_INDENT = " " * 6

Style = Callable[[str, ActionKind], str]


def _plain_style(text: str, kind: ActionKind) -> str:
    return text


def _colour_style(text: str, kind: ActionKind) -> str:
    return click.style(text, fg=_COLOURS[kind], bold=True if kind == "delete" else None)


def _change_line(change: FieldChange) -> str:
    if change.sensitive:
        parts = [f"+ {k}" for k in change.added] + [f"- {k}" for k in change.removed]
        detail = ", ".join(parts) if parts else "changed"
        return f"{change.field}: {detail} {SENSITIVE}"
    if change.added or change.removed:
        alike = {_nfc(v) for v in change.added} & {_nfc(v) for v in change.removed}
        shown = [f"+ {_item(v, alike)}" for v in change.added]
        shown += [f"- {_item(v, alike)}" for v in change.removed]
        line = f"{change.field}: " + ", ".join(shown)
        return line + (_SAME_TEXT if alike - {None} else "")
    before, after = change.before, change.after
    if isinstance(before, str) and isinstance(after, str) and _nfc(before) == _nfc(after):
        # Equal on screen, not in code points: escaped, so the reviewer sees why.
        return f"{change.field}: {_escaped(before)} -> {_escaped(after)}{_SAME_TEXT}"
    if is_long_text(before, after):
        return f"{change.field}: {word_diff(before, after)}"
    return f"{change.field}: {fmt(before)} -> {fmt(after)}"


# Two texts that look alike and differ in their code points (é as one, or as e and a
# combining accent): what a file saved by another editor changes.
_SAME_TEXT = " (the same text in another Unicode form)"


def _nfc(value: Any) -> str | None:
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else None


def _escaped(text: str) -> str:
    return json.dumps(text)  # ASCII: every accent its own escape


def _item(value: Any, alike: AbstractSet[str | None] = frozenset()) -> str:
    if isinstance(value, str) and _nfc(value) in alike:
        return _escaped(value)
    return value if isinstance(value, str) else fmt(value)


def _body_lines(action: Action) -> list[str]:
    body: Mapping[str, Any] = action.body or {}
    keys = [k for k in _BODY_ORDER if k in body] + sorted(k for k in body if k not in _BODY_ORDER)
    lines: list[str] = []
    for key in keys:
        value = body[key]
        if key == "tags":  # the tool's own (marker, last-applied record) are not shown
            value = [t for t in value if not str(t).startswith(MARKER_PREFIX)]
            if not value:
                continue
        if key in SECRET_FIELDS and isinstance(value, Mapping):
            lines.append(f"{key}: {', '.join(sorted(value))} {SENSITIVE}")
            continue
        if key == "metadata" and isinstance(value, Mapping):
            lineage = value.get("reconciler")
            user = {k: v for k, v in value.items() if k != "reconciler"}
            if user:
                lines.append(f"metadata: {fmt(user)}")
            if isinstance(lineage, Mapping) and lineage.get("replaces"):
                lines.append(f"replaces: {lineage['replaces']}")
            continue
        lines.append(f"{key}: {fmt(value)}")
    return lines


def _headline(action: Action) -> str:
    where = f"{action.name} [{action.session_id}]" if action.session_id else action.name
    what: str = action.kind
    if action.kind == "replace":
        what = f"replace, then {action.replace_with or 'archive'} the old session"
    reason = f" ({action.reason})" if action.reason else ""
    return f"{where}: {what}{reason}"


def action_lines(action: Action, style: Style = _plain_style) -> list[str]:
    """The headline of an action and its detail lines (indented), without a trailing newline."""
    symbol = style(f"{SYMBOLS[action.kind]:>3}", action.kind)
    lines = [f"{symbol} {escape_controls(_headline(action))}"]
    if action.kind == "create":
        details = _body_lines(action)
    else:
        details = [_change_line(c) for c in action.changes]
    if action.live and action.destroys:
        details.append("live: the session has a running loop or connected participants")
    lines += [_INDENT + escape_controls(d) for d in details]
    return lines


def grouped(plan: Plan) -> list[tuple[str | None, list[Action]]]:
    """The plan's actions in plan order, those of no SessionSet first, then each set's
    (in the order the sets first appear)."""
    groups: dict[str | None, list[Action]] = {None: []}
    for action in plan.actions:
        groups.setdefault(action.set_name, []).append(action)
    return [(name, actions) for name, actions in groups.items() if actions]


def set_heading(name: str, actions: Sequence[Action]) -> str:
    """``SessionSet <name>: 2 to create, 1 to update``: the line over a set's actions."""
    counts = {kind: sum(1 for a in actions if a.kind == kind) for kind in SYMBOLS}
    return f"SessionSet {name}: " + ", ".join(f"{n} to {k}" for k, n in counts.items() if n)


def header_line(project: str, org_id: str | None, endpoint: str | None) -> str:
    """``Project <name>, org <id>, endpoint <hub>``: the first line of a plan, of
    status and of watch. A run against a hub always names its organisation."""
    parts = [f"Project {project}"]
    if org_id or endpoint:
        parts.append(org_label(org_id))
    if endpoint:
        parts.append(f"endpoint {endpoint}")
    return escape_controls(", ".join(parts))


def _header(plan: Plan) -> str:
    return header_line(plan.project, plan.org_id, plan.endpoint)


def no_changes_message(plan: Plan) -> str:
    if plan.refused_adoptions:  # the hub does not match: a declared session is not adopted
        n = len(plan.refused_adoptions)
        return f"No changes but {n} refused adoption{'s' * (n != 1)}: the hub does not match."
    if plan.left_out:
        return f"No changes within the target. {left_out_message(plan)}"
    n = plan.managed_count
    return f"No changes. The hub matches the manifests ({n} managed session{'s' * (n != 1)})."


def left_out_message(plan: Plan) -> str:
    """How many changes --target/--exclude left out; empty when none."""
    n = plan.left_out
    return f"{n} change{'s' * (n != 1)} outside the target not shown." if n else ""


def render_plan_text(plan: Plan, *, color: bool = False) -> str:
    """The whole plan as text, ending with the summary line and a newline."""
    style: Style = _colour_style if color else _plain_style
    out = [_header(plan), ""]
    if not plan.has_changes:
        out.append(no_changes_message(plan))
        return "\n".join(out + _findings_lines(plan)) + "\n"
    for set_name, actions in grouped(plan):
        if set_name is not None:  # a blank line between groups, one under the header
            out += [*([""] if out[-1] else []), set_heading(set_name, actions)]
        for action in actions:
            out += action_lines(action, style)
    out += ["", plan.summary()]
    if plan.left_out:
        out.append(left_out_message(plan))
    return "\n".join(out + _findings_lines(plan)) + "\n"


def _findings_lines(plan: Plan) -> list[str]:
    """The refused adoptions and the Policy findings under the summary (none: nothing)."""
    lines: list[str] = []
    if plan.refused_adoptions:
        lines += ["", refused_adoptions_heading(plan.refused_adoptions)]
        lines += ["  " + refused_adoption_line(r) for r in plan.refused_adoptions]
    if plan.findings:
        lines += ["", findings_heading(plan.findings)]
        lines += ["  " + finding_line(f) for f in plan.findings]
    return lines


def render_report_text(report: ApplyReport, *, color: bool = False) -> str:
    """One line per action taken, then a summary of outcomes."""
    style: Style = _colour_style if color else _plain_style
    out: list[str] = []
    counts: dict[str, int] = {}
    for result in report.results:
        action = result.action
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
        symbol = style(f"{SYMBOLS[action.kind]:>3}", action.kind)
        session = result.session_id or action.session_id
        extra = [p for p in (session, f"{result.duration_s:.1f}s") if p]
        line = f"{action.name}: {action.kind} {result.outcome} ({', '.join(extra)})"
        if result.error:
            line += f": {result.error}"
        out.append(f"{symbol} {escape_controls(line)}")
    outcomes = ("succeeded", "adopted", "failed", "skipped", "noop")
    summary = "Apply: " + ", ".join(f"{counts.get(o, 0)} {o}" for o in outcomes) + "."
    if out:
        out.append("")
    out.append(summary)
    if report.interrupted:
        out.append("Interrupted: actions not yet started were skipped.")
    return "\n".join(out) + "\n"
