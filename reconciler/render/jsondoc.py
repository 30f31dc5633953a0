"""Plans and apply reports as JSON documents (``schemas/plan.schema.json``).

``plan_to_dict`` and ``plan_from_dict`` round-trip a Plan exactly; the saved plan file
is this document plus a checksum. By default values under ``env`` in create bodies are
shown as ``(sensitive)``; a saved plan keeps them as written (``${env:...}`` unresolved)
because apply needs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from reconciler.model import (
    Action,
    ActionKind,
    ActionResult,
    ApplyReport,
    FieldChange,
    Plan,
    Policy,
    PruneMode,
    SourceLocation,
)
from reconciler.render.values import SENSITIVE, mask_body_env

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "plan_from_dict",
    "plan_to_dict",
    "report_to_dict",
]

FORMAT_VERSION = 1
KINDS: tuple[ActionKind, ...] = ("create", "update", "replace", "resume", "archive", "delete")


def _change_to_dict(change: FieldChange) -> dict[str, Any]:
    def masked(value: Any) -> Any:
        return SENSITIVE if change.sensitive and value is not None else value

    return {
        "field": change.field,
        "before": masked(change.before),
        "after": masked(change.after),
        "added": list(change.added),
        "removed": list(change.removed),
        "sensitive": change.sensitive,
    }


def _source_to_dict(source: SourceLocation | None) -> dict[str, Any] | None:
    if source is None:
        return None
    return {"file": source.file, "line": source.line, "column": source.column}


def _action_to_dict(action: Action, *, mask_env: bool) -> dict[str, Any]:
    body: dict[str, Any] | None = None
    if action.body is not None:
        body = mask_body_env(action.body) if mask_env else dict(action.body)
    return {
        "kind": action.kind,
        "name": action.name,
        "reason": action.reason,
        "sessionId": action.session_id,
        "precondition": action.precondition,
        "markerTag": action.marker_tag,
        "replaceWith": action.replace_with,
        "live": action.live,
        "preventDestroy": action.prevent_destroy,
        "source": _source_to_dict(action.source),
        "body": body,
        "changes": [_change_to_dict(c) for c in action.changes],
    }


def plan_to_dict(plan: Plan, *, mask_env: bool = True) -> dict[str, Any]:
    """The plan as a JSON-ready document, stable key names, actions in plan order."""
    summary: dict[str, Any] = {kind: plan.count(kind) for kind in KINDS}
    summary["text"] = plan.summary()
    return {
        "formatVersion": FORMAT_VERSION,
        "project": plan.project,
        "org": plan.org_id,
        "endpoint": plan.endpoint,
        "commit": plan.commit,
        "managedCount": plan.managed_count,
        "policy": {
            "prune": plan.policy.prune,
            "maxDestroyPercent": plan.policy.max_destroy_percent,
            "protectLive": plan.policy.protect_live,
        },
        "hasChanges": plan.has_changes,
        "leftOut": plan.left_out,
        "summary": summary,
        "actions": [_action_to_dict(a, mask_env=mask_env) for a in plan.actions],
    }


def _change_from_dict(d: Mapping[str, Any]) -> FieldChange:
    return FieldChange(
        field=d["field"],
        before=d.get("before"),
        after=d.get("after"),
        added=tuple(d.get("added", ())),
        removed=tuple(d.get("removed", ())),
        sensitive=bool(d.get("sensitive", False)),
    )


def _action_from_dict(d: Mapping[str, Any]) -> Action:
    source = d.get("source")
    return Action(
        kind=cast(ActionKind, d["kind"]),
        name=d["name"],
        reason=d.get("reason", ""),
        session_id=d.get("sessionId"),
        body=d.get("body"),
        changes=tuple(_change_from_dict(c) for c in d.get("changes", ())),
        precondition=d.get("precondition", ""),
        replace_with=d.get("replaceWith"),
        marker_tag=d.get("markerTag"),
        live=bool(d.get("live", False)),
        source=SourceLocation(source["file"], source["line"], source.get("column", 1))
        if source
        else None,
        prevent_destroy=bool(d.get("preventDestroy", False)),
    )


def plan_from_dict(d: Mapping[str, Any]) -> Plan:
    """The Plan a :func:`plan_to_dict` document describes (the caller validates it first)."""
    policy = d.get("policy") or {}
    return Plan(
        project=d["project"],
        actions=tuple(_action_from_dict(a) for a in d["actions"]),
        org_id=d.get("org"),
        endpoint=d.get("endpoint"),
        managed_count=int(d.get("managedCount", 0)),
        policy=Policy(
            prune=cast(PruneMode, policy.get("prune", "archive")),
            max_destroy_percent=float(policy.get("maxDestroyPercent", 30.0)),
            protect_live=bool(policy.get("protectLive", True)),
        ),
        commit=d.get("commit"),
        # Absent from plans saved before targeted plans counted what they left out.
        left_out=int(d.get("leftOut", 0)),
    )


def _result_to_dict(r: ActionResult) -> dict[str, Any]:
    return {
        "kind": r.action.kind,
        "name": r.action.name,
        "reason": r.action.reason,
        "sessionId": r.session_id or r.action.session_id,
        "outcome": r.outcome,
        "durationS": round(r.duration_s, 3),
        "error": r.error,
    }


def report_to_dict(report: ApplyReport) -> dict[str, Any]:
    """An apply report as JSON: one entry per action, outcome counts, interrupted flag;
    ``hubUnreachable`` when connections kept failing, and ``duplicates``: archives of
    sessions a concurrent apply made with this run's markers (one entry each)."""
    outcomes = ("succeeded", "adopted", "failed", "skipped", "noop")
    return {
        "formatVersion": FORMAT_VERSION,
        "interrupted": report.interrupted,
        "hubUnreachable": report.unreachable,
        "summary": {o: sum(1 for r in report.results if r.outcome == o) for o in outcomes},
        "results": [_result_to_dict(r) for r in report.results],
        "duplicates": [_result_to_dict(r) for r in report.duplicates],
        "duplicatesError": report.duplicates_error,
    }
