"""Request bodies -> validated values; anything wrong is a 400 ``CODER_INVALID_REQUEST``.

Create tolerates fields it does not know (as the real service does) and treats an
explicit ``null`` as absent; PATCH accepts the five mutable fields and what the official
clients add to them (``defaultAgent``, ``enabledAgents``). Both read those two the same
way: ``defaultAgent`` names the agent, ``enabledAgents`` is checked and not kept. Every
limit and list here comes from ``reconciler.apifacts``, which the manifest checks share.
"""

from __future__ import annotations

from typing import Any

from reconciler.apifacts import (
    LOOP_FLAG_DEFAULTS,
    MAX_ITERATIONS,
    NON_BLANK_FIELDS,
    REPO_FIELDS,
    ROSTER_FIELD,
    SKILL_FIELDS,
    SKILL_REQUIRED_FIELDS,
    is_blank,
)
from reconciler.fields import FIELDS, MUTABLE_FIELDS, SpecField, held_default, normalise, spec_field
from reconciler.hub.errors import HubError
from reconciler.hub.records import COLUMN_FIELDS, AdminChanges, NewSession, SessionChanges

__all__ = ["parse_admin", "parse_create", "parse_update"]

_AGENT = spec_field("agent")
_UPDATABLE = (
    *MUTABLE_FIELDS,
    *(alias for f in FIELDS if f.mutable for alias in f.aliases),
    ROSTER_FIELD,
)
_ADMIN_FIELDS = (
    "status",
    "loopStatus",
    "loopIteration",
    "connectParticipant",
    "disconnectParticipants",
)
_LABEL_MAX = 80


def _bad(message: str) -> HubError:
    return HubError.bad_request(message)


def _object(body: Any, what: str = "request body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad(f"{what} must be a JSON object")
    return body


def _string(body: dict[str, Any], key: str, *, where: str = "") -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"{where}{key} must be a string")
    return value


def _bool(body: dict[str, Any], key: str, *, where: str = "") -> bool | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _bad(f"{where}{key} must be a boolean")
    return value


def _strings(body: dict[str, Any], key: str) -> tuple[str, ...] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"{key} must be an array of strings")
    # A set in meaning (PATCH replaces it whole): keep first occurrences, in order.
    return tuple(dict.fromkeys(value))


def _enum(body: dict[str, Any], spec_field: SpecField) -> str | None:
    """An enum field's value in its long form (aliases normalised), or None when absent."""
    key = spec_field.name
    value = _string(body, key)
    if value is None:
        return None
    value = normalise(key, value)
    if value not in spec_field.enum:
        raise _bad(f"{key} must be one of {', '.join(spec_field.enum)}; got {value!r}")
    return str(value)


# Spec fields this hub keeps without a column of their own (records.COLUMN_FIELDS).
_EXTRA_FIELDS = tuple(f for f in FIELDS if f.name not in COLUMN_FIELDS)


def _extra(data: dict[str, Any], *, mutable_only: bool) -> dict[str, Any]:
    """The values of the spec fields kept without a column, checked by their shape."""
    extra: dict[str, Any] = {}
    for declared in _EXTRA_FIELDS:
        if mutable_only and not declared.mutable:
            continue
        if declared.shape == "enum":
            value: Any = _enum(data, declared)
        elif declared.shape == "text":
            value = _string(data, declared.name)
        elif declared.shape == "strings":
            value = _strings(data, declared.name)
        else:
            value = data.get(declared.name)
        if value is not None:
            extra[declared.name] = list(value) if isinstance(value, tuple) else value
    return extra


def _visibility(body: dict[str, Any]) -> str | None:
    return _enum(body, spec_field("visibility"))


def _skills(body: dict[str, Any]) -> tuple[dict[str, Any], ...] | None:
    value = body.get("skills")
    if value is None:
        return None
    if not isinstance(value, list):
        raise _bad("skills must be an array of objects")
    skills = []
    for index, item in enumerate(value):
        where = f"skills[{index}]."
        skill = _object(item, f"skills[{index}]")
        for key in SKILL_FIELDS:
            text = _string(skill, key, where=where)
            if key in SKILL_REQUIRED_FIELDS and not text:
                raise _bad(f"{where}{key} is required (a non-empty string)")
        skills.append(dict(skill))
    return tuple(skills)


def _repo(value: Any, where: str) -> dict[str, Any]:
    repo = _object(value, where)
    for key in REPO_FIELDS:
        _string(repo, key, where=f"{where}.")
    return dict(repo)


def _loop(body: dict[str, Any]) -> dict[str, Any] | None:
    value = body.get("loop")
    if value is None:
        return None
    loop = _object(value, "loop")
    settings: dict[str, Any] = {}
    goal = _string(loop, "goal", where="loop.")
    if goal is not None:
        settings["goal"] = goal
    max_iterations = loop.get("maxIterations")
    if max_iterations is not None:
        if (
            isinstance(max_iterations, bool)
            or not isinstance(max_iterations, int | float)
            or max_iterations != int(max_iterations)
            or not 1 <= max_iterations <= MAX_ITERATIONS
        ):
            raise _bad(f"loop.maxIterations must be a whole number from 1 to {MAX_ITERATIONS}")
        settings["maxIterations"] = int(max_iterations)
    for key in LOOP_FLAG_DEFAULTS:
        flag = _bool(loop, key, where="loop.")
        if flag is not None:
            settings[key] = flag
    return settings


def _derive_label(task: str) -> str:
    first_line = task.strip().splitlines()[0].strip()
    if len(first_line) <= _LABEL_MAX:
        return first_line
    return first_line[: _LABEL_MAX - 3].rstrip() + "..."


def _agent(data: dict[str, Any]) -> tuple[bool, str | None]:
    """Whether the body names the agent, and which: ``agent`` or ``defaultAgent``.

    The hub keeps one agent per session (GET reports it as ``defaultAgent``). Named
    both ways, as `agentuity coder create --agent X --default-agent Y` sends them, the
    ``defaultAgent`` is kept: the official SDK calls it the preferred default agent
    (docs/official-clients.md). An empty name (or null) clears it, unless the other
    name gives one: the hub keeps no empty defaultAgent.
    """
    given = {}
    for key in (_AGENT.name, *_AGENT.aliases):  # the later name wins
        if key in data:
            value = data[key]
            if value is not None and not isinstance(value, str):
                raise _bad(f"{key} must be a string (or null to clear it)")
            given[key] = value or None
    named = [value for value in given.values() if value]
    return bool(given), named[-1] if named else None


def parse_create(body: Any) -> NewSession:
    """Validate a create body. Defaults: private, standard (loop with a loop object)."""
    data = _object(body)
    for key in NON_BLANK_FIELDS:
        value = data.get(key)
        if not isinstance(value, str) or is_blank(value):
            raise _bad(f"{key} is required and must be a non-empty string")
    task: str = data["task"]
    _strings(data, ROSTER_FIELD)  # checked as in an update; this hub keeps no roster
    label = _string(data, "label")
    _, agent = _agent(data)
    workspace_id = _string(data, "workspaceId")
    visibility = _visibility(data) or str(held_default("visibility", {}))
    loop = _loop(data)
    mode = _enum(data, spec_field("workflowMode"))
    if mode == "standard" and loop is not None:
        raise _bad("loop settings need workflowMode loop (or no workflowMode)")
    mode = mode or str(held_default("workflowMode", {"loop": loop}))
    if loop is None:
        loop = held_default("loop", {"workflowMode": mode})
    repo = None if data.get("repo") is None else _repo(data["repo"], "repo")
    repos = None
    if data.get("repos") is not None:
        if not isinstance(data["repos"], list):
            raise _bad("repos must be an array of objects")
        repos = tuple(_repo(item, f"repos[{i}]") for i, item in enumerate(data["repos"]))
    env = data.get("env")
    if env is not None and (
        not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values())
    ):
        raise _bad("env must be an object whose values are strings")
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _bad("metadata must be an object")
    return NewSession(
        task=task,
        label=label if label else _derive_label(task),
        visibility=visibility,
        workflow_mode=mode,
        default_agent=agent,
        tags=_strings(data, "tags") or (),
        skills=_skills(data) or (),
        repo=repo,
        repos=repos,
        workspace_id=workspace_id,
        env=dict(env or {}),
        metadata=dict(metadata or {}),
        saved_skill_ids=_strings(data, "savedSkillIds") or (),
        skill_bucket_ids=_strings(data, "skillBucketIds") or (),
        loop=loop,
        extra=_extra(data, mutable_only=False),
    )


def parse_update(body: Any) -> SessionChanges:
    """Validate a PATCH body: the mutable fields, ``defaultAgent`` and ``enabledAgents``."""
    data = _object(body)
    unknown = sorted(set(data) - set(_UPDATABLE))
    if unknown:
        raise _bad(
            f"cannot change {', '.join(unknown)} after creation; "
            f"updatable fields are {', '.join(_UPDATABLE)}"
        )
    if "label" in data and not isinstance(data["label"], str):
        raise _bad("label must be a string")
    if "visibility" in data and data["visibility"] is None:
        raise _bad("visibility must be a string")
    if "tags" in data and data["tags"] is None:
        raise _bad("tags must be an array of strings")
    if "skills" in data and data["skills"] is None:
        raise _bad("skills must be an array of objects")
    changes: dict[str, Any] = {
        "label": data.get("label"),
        "visibility": _visibility(data),
        "tags": _strings(data, "tags"),
        "skills": _skills(data),
    }
    names_agent, agent = _agent(data)
    if names_agent:
        changes["agent"] = agent
    changes["extra"] = _extra(data, mutable_only=True)
    _strings(data, ROSTER_FIELD)  # checked as in a create; this hub keeps no roster
    return SessionChanges(**changes)


def parse_admin(body: Any) -> AdminChanges:
    data = _object(body)
    unknown = sorted(set(data) - set(_ADMIN_FIELDS))
    if unknown:
        raise _bad(f"unknown admin fields: {', '.join(unknown)}")
    status = _string(data, "status")
    loop_status = _string(data, "loopStatus")
    participant = _string(data, "connectParticipant")
    for key, value in (("status", status), ("loopStatus", loop_status)):
        if value is not None and not value.strip():
            raise _bad(f"{key} must be a non-empty string")
    if participant is not None and not participant.strip():
        raise _bad("connectParticipant must be a non-empty string")
    iteration = data.get("loopIteration")
    if iteration is not None and (
        isinstance(iteration, bool)
        or not isinstance(iteration, int)
        or not 0 <= iteration <= MAX_ITERATIONS
    ):
        raise _bad(f"loopIteration must be a whole number from 0 to {MAX_ITERATIONS}")
    return AdminChanges(
        status=status,
        loop_status=loop_status,
        loop_iteration=iteration,
        connect_participant=participant,
        disconnect_participants=bool(_bool(data, "disconnectParticipants")),
    )
