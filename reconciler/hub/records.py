"""Plain values passed between the hub's request parsing, storage and serialisation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "COLUMN_FIELDS",
    "AdminChanges",
    "EventRecord",
    "NewSession",
    "ParticipantRecord",
    "SessionChanges",
    "SessionRecord",
    "SessionSummary",
    "UserRecord",
]

JsonObject = dict[str, Any]

# The spec fields (``reconciler.fields``) this hub keeps in columns of their own. Any
# other spec field is kept in ``extra`` (one JSON column), read and reported as the
# registry declares it: a field added there needs no change here.
COLUMN_FIELDS: frozenset[str] = frozenset(
    {
        "task",
        "label",
        "agent",
        "visibility",
        "workflowMode",
        "loop",
        "tags",
        "skills",
        "savedSkillIds",
        "skillBucketIds",
        "repo",
        "repos",
        "workspaceId",
        "env",
        "metadata",
    }
)


@dataclass(frozen=True)
class NewSession:
    """A validated create request (visibility already in its long form)."""

    task: str
    label: str
    visibility: str
    workflow_mode: str
    default_agent: str | None = None
    tags: tuple[str, ...] = ()
    skills: tuple[JsonObject, ...] = ()
    repo: JsonObject | None = None
    repos: tuple[JsonObject, ...] | None = None
    workspace_id: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    metadata: JsonObject = field(default_factory=dict)
    saved_skill_ids: tuple[str, ...] = ()
    skill_bucket_ids: tuple[str, ...] = ()
    loop: JsonObject | None = None  # goal, maxIterations, autoContinue, allowDetached
    extra: JsonObject = field(default_factory=dict)  # spec fields without a column


_UNSET: Any = object()


@dataclass(frozen=True)
class SessionChanges:
    """A validated PATCH; a field left as ``None`` (or ``agent`` as UNSET) is unchanged."""

    label: str | None = None
    agent: Any = _UNSET  # str, or None to clear
    visibility: str | None = None
    tags: tuple[str, ...] | None = None
    skills: tuple[JsonObject, ...] | None = None
    extra: JsonObject = field(default_factory=dict)  # spec fields without a column

    @property
    def changes_agent(self) -> bool:
        return self.agent is not _UNSET


@dataclass(frozen=True)
class AdminChanges:
    """What the test-only admin route may change."""

    status: str | None = None
    loop_status: str | None = None
    loop_iteration: int | None = None
    connect_participant: str | None = None
    disconnect_participants: bool = False


@dataclass(frozen=True)
class SessionRecord:
    pk: int
    session_id: str
    org_id: str
    owner_id: str
    status: str
    label: str
    task: str
    visibility: str
    workflow_mode: str
    default_agent: str | None
    tags: tuple[str, ...]
    skills: tuple[JsonObject, ...]
    repo: JsonObject | None
    repos: tuple[JsonObject, ...] | None
    workspace_id: str | None
    env: Mapping[str, str]
    metadata: JsonObject
    saved_skill_ids: tuple[str, ...]
    skill_bucket_ids: tuple[str, ...]
    loop: JsonObject | None
    loop_status: str | None
    loop_iteration: int | None
    loop_started_ms: int | None
    loop_updated_ms: int | None
    loop_completed_ms: int | None
    sandbox_id: str
    created_ms: int
    updated_ms: int
    last_activity_ms: int
    participant_count: int
    observer_count: int
    extra: JsonObject = field(default_factory=dict)


class SessionSummary(NamedTuple):
    """What a list page shows of a session: the fields ``serialize.list_item`` reads.

    A list page never shows task, env, metadata or loop settings, so they are neither
    read nor decoded; a tuple (not a frozen dataclass) because a page builds many and
    a tuple is the cheapest immutable value to build.
    """

    session_id: str
    owner_id: str
    status: str
    label: str
    visibility: str
    workflow_mode: str
    default_agent: str | None
    tags: tuple[str, ...]
    skills: tuple[JsonObject, ...]
    repo: JsonObject | None
    repos: tuple[JsonObject, ...] | None
    workspace_id: str | None
    loop_status: str | None
    loop_iteration: int | None
    created_ms: int
    last_activity_ms: int
    participant_count: int
    observer_count: int
    extra: JsonObject


@dataclass(frozen=True)
class EventRecord:
    id: int
    event: str
    category: str
    payload: Any
    occurred_ms: int
    ingested_ms: int


@dataclass(frozen=True)
class ParticipantRecord:
    participant_id: str
    role: str
    transport: str
    connected_ms: int
    disconnected_ms: int | None
    last_activity_ms: int
    metadata: JsonObject


@dataclass(frozen=True)
class UserRecord:
    user_id: str
    created_ms: int
    last_login_ms: int
    last_seen_ms: int
