"""Request bodies -> validated values; anything wrong is a 400 ``CODER_INVALID_REQUEST``.

Create tolerates fields it does not know (as the real service does) and treats an
explicit ``null`` as absent; PATCH accepts only the five mutable fields.
"""

from __future__ import annotations

from typing import Any

from reconciler.hub.errors import HubError
from reconciler.hub.records import AdminChanges, NewSession, SessionChanges
from reconciler.model import REPO_FIELDS

__all__ = ["parse_admin", "parse_create", "parse_update"]

VISIBILITIES = {
    "private": "private",
    "organization": "organization",
    "collaborate": "collaborate",
    "org": "organization",
    "collab": "collaborate",
}
WORKFLOW_MODES = ("standard", "loop")
_UPDATABLE = ("label", "agent", "visibility", "tags", "skills")
_ADMIN_FIELDS = (
    "status",
    "loopStatus",
    "loopIteration",
    "connectParticipant",
    "disconnectParticipants",
)
_LABEL_MAX = 80
# Iteration counts are stored as SQLite integers and read by JavaScript clients.
_MAX_ITERATION = 2**31 - 1


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


def _visibility(body: dict[str, Any]) -> str | None:
    value = _string(body, "visibility")
    if value is None:
        return None
    if value not in VISIBILITIES:
        raise _bad(f"visibility must be one of private, organization, collaborate; got {value!r}")
    return VISIBILITIES[value]


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
        for key in ("skillId", "repo"):
            text = _string(skill, key, where=where)
            if not text:
                raise _bad(f"{where}{key} is required (a non-empty string)")
        for key in ("name", "url"):
            _string(skill, key, where=where)
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
            or not 1 <= max_iterations <= _MAX_ITERATION
        ):
            raise _bad(f"loop.maxIterations must be a whole number from 1 to {_MAX_ITERATION}")
        settings["maxIterations"] = int(max_iterations)
    for key in ("autoContinue", "allowDetached"):
        flag = _bool(loop, key, where="loop.")
        if flag is not None:
            settings[key] = flag
    return settings


def _derive_label(task: str) -> str:
    first_line = task.strip().splitlines()[0].strip()
    if len(first_line) <= _LABEL_MAX:
        return first_line
    return first_line[: _LABEL_MAX - 3].rstrip() + "..."


def parse_create(body: Any) -> NewSession:
    """Validate a create body. Defaults: private, standard (loop with a loop object)."""
    data = _object(body)
    task = data.get("task")
    if not isinstance(task, str) or not task.strip():
        raise _bad("task is required and must be a non-empty string")
    label = _string(data, "label")
    agent = _string(data, "agent")
    workspace_id = _string(data, "workspaceId")
    visibility = _visibility(data) or "private"
    loop = _loop(data)
    mode = _string(data, "workflowMode")
    if mode is not None and mode not in WORKFLOW_MODES:
        raise _bad(f"workflowMode must be standard or loop; got {mode!r}")
    if mode == "standard" and loop is not None:
        raise _bad("loop settings need workflowMode loop (or no workflowMode)")
    mode = mode or ("loop" if loop is not None else "standard")
    if mode == "loop" and loop is None:
        loop = {}
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
        default_agent=agent or None,
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
    )


def parse_update(body: Any) -> SessionChanges:
    """Validate a PATCH body: only label, agent, visibility, tags, skills."""
    data = _object(body)
    unknown = sorted(set(data) - set(_UPDATABLE))
    if unknown:
        raise _bad(
            f"cannot change {', '.join(unknown)} after creation; "
            f"updatable fields are {', '.join(_UPDATABLE)}"
        )
    if "label" in data and not isinstance(data["label"], str):
        raise _bad("label must be a string")
    if "agent" in data and data["agent"] is not None and not isinstance(data["agent"], str):
        raise _bad("agent must be a string (or null to clear it)")
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
    if "agent" in data:
        # An empty agent clears it, like null: the hub keeps no empty defaultAgent.
        changes["agent"] = data["agent"] or None
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
        or not 0 <= iteration <= _MAX_ITERATION
    ):
        raise _bad(f"loopIteration must be a whole number from 0 to {_MAX_ITERATION}")
    return AdminChanges(
        status=status,
        loop_status=loop_status,
        loop_iteration=iteration,
        connect_participant=participant,
        disconnect_participants=bool(_bool(data, "disconnectParticipants")),
    )
