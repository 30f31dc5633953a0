"""Manifests from existing sessions: the library behind `reconciler export`.

Pure functions: session details in (``GET /hub/session/{id}`` plus the loop state),
``ExportedSession`` values and YAML text out. Secrets never leave: every ``env`` value
becomes a ``${env:NAME}`` reference, and the value itself is dropped here, before
anything is rendered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from reconciler.model import (
    MARKER_PREFIX,
    REPO_FIELDS,
    SKILL_FIELDS,
    Marker,
    create_only_hash,
    normalise_visibility,
)

__all__ = [
    "ENV_KEY_RE",
    "ExportedSession",
    "adopt_tags",
    "build_exports",
    "export_spec",
    "render_file",
    "render_project",
    "render_project_file",
    "render_session",
    "render_stream",
    "slugify",
]

API_VERSION = "reconciler/v1"
NAME_MAX = 63
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOOP_FIELDS = ("goal", "maxIterations", "autoContinue", "allowDetached")
_HEADER = (
    "# coder-reconciler manifest (`reconciler validate` checks it;\n"
    "# `reconciler schema manifest` prints its JSON Schema).\n"
)


@dataclass(frozen=True)
class ExportedSession:
    """One existing session as a manifest.

    ``spec`` is what the manifest declares (env values already replaced by references);
    ``env_keys`` the env keys kept, ``dropped_env_keys`` those that cannot be a manifest
    key. ``tags`` is the session's full tag list as observed (markers included), which
    adoption extends.
    """

    name: str
    session_id: str
    spec: Mapping[str, Any]
    tags: tuple[str, ...] = ()
    env_keys: tuple[str, ...] = ()
    dropped_env_keys: tuple[str, ...] = ()
    markers: tuple[Marker, ...] = field(default=())

    @property
    def spec_hash(self) -> str:
        return create_only_hash(self.spec)

    def owned_by(self, project: str) -> bool:
        return any(m.project == project for m in self.markers)

    def foreign_markers(self, project: str) -> tuple[Marker, ...]:
        return tuple(m for m in self.markers if m.project != project)


def slugify(text: str, *, max_len: int = NAME_MAX) -> str:
    """A manifest name from free text: ``[a-z0-9][a-z0-9-]*``, at most ``max_len`` long."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].rstrip("-")


def _unique(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[: NAME_MAX - len(suffix)].rstrip("-") + suffix
        if candidate not in taken:
            return candidate
        n += 1


def _clean_repo(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    repo = {k: value[k] for k in REPO_FIELDS if isinstance(value.get(k), str)}
    return repo or None


def _clean_skills(value: Any) -> list[dict[str, Any]]:
    skills: list[dict[str, Any]] = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, Mapping):
            continue
        skill = {k: item[k] for k in SKILL_FIELDS if isinstance(item.get(k), str)}
        if "skillId" in skill and "repo" in skill:
            skills.append(skill)
    return skills


def _clean_loop(detail: Mapping[str, Any], loop_state: Mapping[str, Any] | None) -> dict[str, Any]:
    source: Any = None
    if loop_state is not None:
        source = loop_state.get("loop")
    if not isinstance(source, Mapping):
        source = detail.get("loop")
    if not isinstance(source, Mapping):
        return {}
    loop: dict[str, Any] = {}
    for key in _LOOP_FIELDS:
        value = source.get(key)
        wanted: type | tuple[type, ...] = (
            str if key == "goal" else int if key == "maxIterations" else bool
        )
        # bool is an int: maxIterations must not accept True.
        if isinstance(value, wanted) and not (key == "maxIterations" and isinstance(value, bool)):
            loop[key] = value
    return loop


def export_spec(
    detail: Mapping[str, Any], loop_state: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]:
    """The manifest ``spec`` of one session detail.

    Returns ``(spec, env_keys, dropped_env_keys)``. Fields the hub does not report
    (``savedSkillIds``, ``skillBucketIds``) cannot be exported; ``metadata.reconciler``
    and marker tags are the tool's own and are left out.
    """
    spec: dict[str, Any] = {}
    if isinstance(detail.get("task"), str):
        spec["task"] = detail["task"]
    if isinstance(detail.get("label"), str) and detail["label"]:
        spec["label"] = detail["label"]
    agent = detail.get("defaultAgent")
    if isinstance(agent, str) and agent:
        spec["agent"] = agent
    if isinstance(detail.get("visibility"), str) and detail["visibility"]:
        spec["visibility"] = normalise_visibility(detail["visibility"])
    if isinstance(detail.get("workflowMode"), str) and detail["workflowMode"]:
        spec["workflowMode"] = detail["workflowMode"]
    loop = _clean_loop(detail, loop_state)
    if loop:
        spec["loop"] = loop
    tags = [
        t
        for t in detail.get("tags") or []
        if isinstance(t, str) and not (t.startswith(MARKER_PREFIX) and Marker.parse(t))
    ]
    if tags:
        spec["tags"] = list(dict.fromkeys(tags))
    skills = _clean_skills(detail.get("skills"))
    if skills:
        spec["skills"] = skills
    repo = _clean_repo(detail.get("repo"))
    if repo:
        spec["repo"] = repo
    repos = [r for r in (_clean_repo(x) for x in detail.get("repos") or []) if r]
    if repos:
        spec["repos"] = repos
    workspace = detail.get("workspace")
    if isinstance(workspace, Mapping) and isinstance(workspace.get("id"), str):
        spec["workspaceId"] = workspace["id"]
    elif isinstance(detail.get("workspaceId"), str):
        spec["workspaceId"] = detail["workspaceId"]
    env_keys: list[str] = []
    dropped: list[str] = []
    env = detail.get("env")
    if isinstance(env, Mapping):
        for key in env:
            (env_keys if ENV_KEY_RE.match(str(key)) else dropped).append(str(key))
    if env_keys:
        # The value is never read: only the key becomes a reference.
        spec["env"] = {key: f"${{env:{key}}}" for key in env_keys}
    metadata = detail.get("metadata")
    if isinstance(metadata, Mapping):
        user_metadata = {k: v for k, v in metadata.items() if k != "reconciler"}
        if user_metadata:
            spec["metadata"] = user_metadata
    return spec, tuple(env_keys), tuple(dropped)


def build_exports(
    project: str,
    details: Sequence[Mapping[str, Any]],
    loop_states: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    taken: Iterable[str] = (),
) -> tuple[ExportedSession, ...]:
    """One ``ExportedSession`` per detail, named and de-duplicated.

    A session already carrying this project's marker keeps the marker's name; the
    others are named from their label (else their task, else their id), slugified and
    made unique against ``taken`` and each other.
    """
    loop_states = loop_states or {}
    used = set(taken)
    named: list[tuple[str | None, Mapping[str, Any]]] = []
    for detail in details:
        own = [
            m
            for m in (Marker.parse(t) for t in detail.get("tags") or [] if isinstance(t, str))
            if m is not None and m.project == project
        ]
        name = own[0].name if own else None
        if name is not None:
            name = _unique(name, used)
            used.add(name)
        named.append((name, detail))
    exports: list[ExportedSession] = []
    for name, detail in named:
        session_id = str(detail["sessionId"])
        if name is None:
            source = next(
                (
                    s
                    for s in (detail.get("label"), detail.get("task"))
                    if isinstance(s, str) and slugify(s)
                ),
                None,
            )
            base = slugify(source) if source else slugify(f"session-{session_id}")
            base = base or "session"
            name = _unique(base, used)
            used.add(name)
        spec, env_keys, dropped = export_spec(detail, loop_states.get(session_id))
        tags = tuple(t for t in detail.get("tags") or [] if isinstance(t, str))
        markers = tuple(m for m in (Marker.parse(t) for t in tags) if m is not None)
        exports.append(
            ExportedSession(
                name=name,
                session_id=session_id,
                spec=spec,
                tags=tags,
                env_keys=env_keys,
                dropped_env_keys=dropped,
                markers=markers,
            )
        )
    return tuple(exports)


def adopt_tags(exported: ExportedSession, project: str, marker: Marker) -> list[str]:
    """The PATCH tag set that adopts a session: its tags, minus this project's old
    markers, plus ``marker``."""
    kept = [
        t
        for t in exported.tags
        if not ((m := Marker.parse(t)) is not None and m.project == project) and t != marker.tag
    ]
    return [*dict.fromkeys(kept), marker.tag]


def _dump(value: Any) -> str:
    return yaml.safe_dump(
        value, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))


def render_session(exported: ExportedSession, *, source_note: bool = True) -> str:
    """One Session document (no leading ``---``, no schema comment)."""
    out: list[str] = []
    if source_note:
        out.append(f"# Exported from session {exported.session_id}.\n")
    out.append(_dump({"apiVersion": API_VERSION, "kind": "Session", "name": exported.name}))
    spec = {k: v for k, v in exported.spec.items() if k != "env"}
    if not spec and not exported.env_keys and not exported.dropped_env_keys:
        out.append("spec: {}\n")
        return "".join(out)
    out.append("spec:\n")
    if spec:
        out.append(_indent(_dump(spec), 2))
    if exported.dropped_env_keys:
        out.append(
            "  # env keys not exported (not valid variable names): "
            + ", ".join(exported.dropped_env_keys)
            + "\n"
        )
    if exported.env_keys:
        out.append("  # env values are never exported: each one is read from the environment\n")
        out.append("  # of whoever runs `reconciler apply` (set these variables there).\n")
        out.append("  env:\n")
        for key in exported.env_keys:
            line = _dump({key: exported.spec["env"][key]}).rstrip("\n")
            out.append(f"    {line}  # value not exported: set ${key}\n")
    return "".join(out)


def render_project(project: str) -> str:
    """A Project document with the design's default policy written out, and no
    ``defaults`` (they would change the hash of the sessions exported next to it)."""
    doc = {
        "apiVersion": API_VERSION,
        "kind": "Project",
        "name": project,
        "policy": {"prune": "archive", "maxDestroyPercent": 30, "protectLive": True},
    }
    return _dump(doc)


def render_file(exported: ExportedSession) -> str:
    """A manifest file holding one Session."""
    return _HEADER + render_session(exported)


def render_project_file(project: str) -> str:
    """A manifest file holding the Project."""
    return _HEADER + render_project(project)


def render_stream(
    project: str, exports: Sequence[ExportedSession], *, with_project: bool = True
) -> str:
    """Every document in one YAML stream (for stdout): the Project first, when asked."""
    docs = [render_project(project)] if with_project else []
    docs.extend(render_session(e) for e in exports)
    return _HEADER + "---\n".join(docs)
