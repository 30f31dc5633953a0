"""Records -> the JSON shapes of the reference (docs/reference/api-coverage.md and
docs/reference/service-notes.md).

A field that does not apply is left out, never sent as null (the official client's
schemas reject null for optional fields); the PATCH answer's ``defaultAgent`` and the
loop answer's ``loop`` are the documented exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.apifacts import LOOP_FLAG_DEFAULTS
from reconciler.fields import spec_field
from reconciler.hub.records import (
    EventRecord,
    ParticipantRecord,
    SessionRecord,
    SessionSummary,
    UserRecord,
)
from reconciler.hub.timefmt import iso

__all__ = [
    "created_body",
    "event_body",
    "list_item",
    "loop_body",
    "participant_body",
    "replay_body",
    "session_body",
    "update_body",
    "user_body",
]

_BUCKETS = {
    "active": "running",
    "resuming": "running",
    "paused": "paused",
    "creating": "provisioning",
    "provisioning": "provisioning",
}
_REPLAY_USER_PROMPT = "session_created"


def _availability(status: str) -> dict[str, bool]:
    running = status in ("active", "resuming")
    ended = _BUCKETS.get(status, "history") == "history"
    return {
        "runtimeAvailable": running,
        "controlAvailable": running,
        "manageAvailable": not ended,
        "wakeAvailable": status == "paused",
        "historyOnly": ended,
        "liveExpected": running,
    }


def _workspace(record: SessionRecord | SessionSummary) -> dict[str, str] | None:
    if record.workspace_id is None:
        return None
    return {"id": record.workspace_id, "name": record.workspace_id, "scope": "org"}


def _extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The spec fields kept without a column, under the names the hub reports them."""
    return {
        spec_field(name).reported_as or name: value
        for name, value in extra.items()
        if value is not None
    }


def list_item(record: SessionRecord | SessionSummary) -> dict[str, Any]:
    """A ``sessions.websocket[]`` entry: every list-item field that applies.

    The one definition of the list item: a list page passes summaries, a single GET
    (``session_body``) and the admin route pass whole records.
    """
    item: dict[str, Any] = {
        "sessionId": record.session_id,
        "label": record.label,
        "status": record.status,
        "mode": "sandbox",
        "visibility": record.visibility,
        "owner": {"userId": record.owner_id, "name": record.owner_id},
        "origin": {"type": "api"},
    }
    if record.repo is not None:
        item["repo"] = record.repo
    if record.repos is not None:
        item["repos"] = list(record.repos)
    workspace = _workspace(record)
    if workspace is not None:
        item["workspace"] = workspace
    item["sessionKind"] = "coder"
    item["workflowMode"] = record.workflow_mode
    if record.loop_status is not None:
        item["loopStatus"] = record.loop_status
        item["loopIteration"] = record.loop_iteration or 0
    item.update(
        {
            "createdAt": iso(record.created_ms),
            "lastActivityAt": iso(record.last_activity_ms),
            "taskCount": 0,
            "subAgentCount": 0,
            "observerCount": record.observer_count,
            "participantCount": record.participant_count,
            "tags": list(record.tags),
            "skills": list(record.skills),
        }
    )
    if record.default_agent is not None:
        item["defaultAgent"] = record.default_agent
    item.update(_extra(record.extra))
    item["bucket"] = _BUCKETS.get(record.status, "history")
    item.update(_availability(record.status))
    return item


def session_body(record: SessionRecord) -> dict[str, Any]:
    """``GET /hub/session/{id}``: the list item plus task, env, metadata, updatedAt."""
    body = list_item(record)
    body["task"] = record.task
    body["env"] = dict(record.env)
    body["metadata"] = record.metadata
    body["updatedAt"] = iso(record.updated_ms)
    return body


def created_body(record: SessionRecord) -> dict[str, Any]:
    return {
        "sessionId": record.session_id,
        "sandboxId": record.sandbox_id,
        "status": record.status,
        "mode": "sandbox",
        "visibility": record.visibility,
    }


def update_body(record: SessionRecord) -> dict[str, Any]:
    return {
        "sessionId": record.session_id,
        "label": record.label,
        "visibility": record.visibility,
        "tags": list(record.tags),
        "skills": list(record.skills),
        "defaultAgent": record.default_agent,
        **_extra({k: v for k, v in record.extra.items() if spec_field(k).mutable}),
    }


def loop_body(record: SessionRecord) -> dict[str, Any]:
    """``{sessionId, workflowMode, loop}``; loop timestamps are epoch milliseconds."""
    loop: dict[str, Any] | None = None
    if record.workflow_mode == "loop":
        settings = record.loop or {}
        loop = {"status": record.loop_status or "running", "iteration": record.loop_iteration or 0}
        for key in ("maxIterations", "goal"):
            if settings.get(key) is not None:
                loop[key] = settings[key]
        for flag, default in LOOP_FLAG_DEFAULTS.items():
            loop[flag] = bool(settings.get(flag, default))
        loop["startedAt"] = record.loop_started_ms or record.created_ms
        loop["updatedAt"] = record.loop_updated_ms or record.created_ms
        if record.loop_completed_ms is not None:
            loop["completedAt"] = record.loop_completed_ms
    return {"sessionId": record.session_id, "workflowMode": record.workflow_mode, "loop": loop}


def event_body(event: EventRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "event": event.event,
        "category": event.category,
        "payload": event.payload,
        "occurredAt": iso(event.occurred_ms),
        "ingestedAt": iso(event.ingested_ms),
    }


def _describe(event: EventRecord) -> str:
    payload = event.payload if isinstance(event.payload, dict) else {}
    details = ", ".join(
        f"{key}={value}"
        for key, value in sorted(payload.items())
        if key != "task" and isinstance(value, str | int | bool)
    )
    return f"{event.event}: {details}" if details else event.event


def replay_body(session_id: str, events: list[EventRecord]) -> dict[str, Any]:
    """Replay entries synthesised from the event history, oldest first."""
    entries: list[dict[str, Any]] = []
    for event in events:
        payload = event.payload if isinstance(event.payload, dict) else {}
        if event.event == _REPLAY_USER_PROMPT and isinstance(payload.get("task"), str):
            entries.append(
                {
                    "type": "user_prompt",
                    "content": payload["task"],
                    "sequence": len(entries),
                    "timestamp": event.occurred_ms,
                }
            )
        entries.append(
            {
                "type": "runtime_status",
                "content": _describe(event),
                "sequence": len(entries),
                "timestamp": event.occurred_ms,
            }
        )
    return {
        "sessionId": session_id,
        "entriesSource": "event_history" if entries else "none",
        "sourceCounts": {"durableStream": 0, "sessionEntries": 0, "eventHistory": len(entries)},
        "entries": entries,
    }


def participant_body(participant: ParticipantRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": participant.participant_id,
        "role": participant.role,
        "transport": participant.transport,
        "connectedAt": iso(participant.connected_ms),
    }
    if participant.disconnected_ms is not None:
        body["disconnectedAt"] = iso(participant.disconnected_ms)
    body["lastActivityAt"] = iso(participant.last_activity_ms)
    body["metadata"] = participant.metadata
    return body


def user_body(user: UserRecord) -> dict[str, Any]:
    return {
        "userId": user.user_id,
        "displayName": user.user_id,
        "email": f"{user.user_id}@users.local",
        "provider": "local",
        "lastLoginAt": iso(user.last_login_ms),
        "lastSeenAt": iso(user.last_seen_ms),
        "createdAt": iso(user.created_ms),
    }
