"""A session's spec fields as the hub reports them, in the manifest's terms.

Read from the single-session GET (and the loop state, when fetched), field by field as
``reconciler.fields`` declares them: under the name the hub reports (``defaultAgent``,
``workspace.id``), normalised (visibility aliases), only what a manifest can declare
(repository and skill keys, loop settings), the tool's own ``reconciler:`` tags and
``metadata.reconciler`` left out. Secret values are never read: an ``env`` key becomes a
``${env:KEY}`` reference, and a key that cannot be a variable name is set aside.
Export writes sessions from this; the planner re-hashes it to prove what the GET does
not show is unchanged (``planner.replacement``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.apifacts import ENV_NAME_PATTERN, LOOP_FIELDS, REPO_FIELDS
from reconciler.fields import FIELDS, SpecField, normalise, reported
from reconciler.model import MARKER_PREFIX, declared_skill

__all__ = [
    "ENV_KEY_RE",
    "clean_repo",
    "in_loop_mode",
    "reported_fields",
    "reported_loop",
    "reported_spec",
    "with_loop_state",
]

ENV_KEY_RE = re.compile(ENV_NAME_PATTERN)


def clean_repo(value: Any) -> dict[str, Any] | None:
    """The repository keys a manifest can declare, with string values; None when none."""
    if not isinstance(value, Mapping):
        return None
    repo = {k: value[k] for k in REPO_FIELDS if isinstance(value.get(k), str)}
    return repo or None


def _clean_skills(value: Any) -> list[dict[str, Any]]:
    skills: list[dict[str, Any]] = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, Mapping):
            continue
        skill = declared_skill(item)
        if "skillId" in skill and "repo" in skill:
            skills.append(skill)
    return skills


def in_loop_mode(detail: Mapping[str, Any]) -> bool:
    """Whether the session ``detail`` reports runs in loop mode: only then does its loop
    state (``GET /hub/session/{id}/loop``) hold loop settings worth a request."""
    return detail.get("workflowMode") == "loop"


def with_loop_state(
    detail: Mapping[str, Any], loop_state: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``detail`` with the loop state's ``loop`` under ``loop``, a key the single-session
    GET does not carry: a report that ``reported_spec`` and the create-only comparison
    (``planner.replacement``) then read loop settings from. Its ``null`` outside loop
    mode is kept: no loop."""
    loop = loop_state.get("loop") if loop_state is not None else None
    return {**detail, "loop": loop if isinstance(loop, Mapping) else None}


def reported_loop(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The loop settings a report carries (``with_loop_state``), as a manifest writes
    them; ``{}`` when none."""
    return _clean_loop(detail, None)


def _clean_loop(detail: Mapping[str, Any], loop_state: Mapping[str, Any] | None) -> dict[str, Any]:
    source: Any = None
    if loop_state is not None:
        source = loop_state.get("loop")
    if not isinstance(source, Mapping):
        source = detail.get("loop")
    if not isinstance(source, Mapping):
        return {}
    loop: dict[str, Any] = {}
    for key in LOOP_FIELDS:
        value = source.get(key)
        wanted: type | tuple[type, ...] = (
            str if key == "goal" else int if key == "maxIterations" else bool
        )
        # bool is an int: maxIterations must not accept True.
        if isinstance(value, wanted) and not (key == "maxIterations" and isinstance(value, bool)):
            loop[key] = value
    return loop


def _value(
    spec_field: SpecField,
    detail: Mapping[str, Any],
    loop_state: Mapping[str, Any] | None,
    dropped: list[str],
) -> Any:
    """One field's value in manifest terms, or None (falsy values too) when absent."""
    shape = spec_field.shape
    if shape == "loop":
        return _clean_loop(detail, loop_state)
    raw = reported(detail, spec_field.name)
    if shape in ("text", "enum"):
        return normalise(spec_field.name, raw) if isinstance(raw, str) else None
    if shape == "tags":
        tags = [t for t in raw or [] if isinstance(t, str) and not t.startswith(MARKER_PREFIX)]
        return list(dict.fromkeys(tags))
    if shape == "skills":
        return _clean_skills(raw)
    if shape == "repo":
        return clean_repo(raw)
    if shape == "repos":
        return [r for r in (clean_repo(x) for x in raw or []) if r]
    if shape == "env":
        keys: list[str] = []
        for key in raw if isinstance(raw, Mapping) else ():
            (keys if ENV_KEY_RE.fullmatch(str(key)) else dropped).append(str(key))
        # The value is never read: only the key becomes a reference.
        return {key: f"${{env:{key}}}" for key in keys}
    if shape == "map" and isinstance(raw, Mapping):
        return {k: v for k, v in raw.items() if k != "reconciler"}  # the tool's own
    return None  # the shape of a field the GET does not report


def reported_fields(
    detail: Mapping[str, Any], loop_state: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Every field the hub reports, in ``FIELDS`` order, and the env keys set aside."""
    spec: dict[str, Any] = {}
    dropped: list[str] = []
    for spec_field in FIELDS:
        if spec_field.reported_as is None and spec_field.shape != "loop":
            continue
        value = _value(spec_field, detail, loop_state, dropped)
        if value:
            spec[spec_field.name] = value
    return spec, tuple(dropped)


def reported_spec(
    detail: Mapping[str, Any], loop_state: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """:func:`reported_fields` without the keys set aside."""
    return reported_fields(detail, loop_state)[0]
