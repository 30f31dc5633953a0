"""``ExportedSession`` values as manifest YAML: one file per session, or one stream.

Rendering is deterministic (same sessions, same bytes), so exporting again into the
same folder finds every file unchanged. A value nested too deeply for the YAML emitter
is written as JSON, which YAML reads as the same value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import yaml

from reconciler.apifacts import API_VERSION
from reconciler.export.spec import ExportedSession
from reconciler.manifest.envref import find_refs
from reconciler.model import Policy

__all__ = [
    "API_VERSION",
    "ExportRenderError",
    "render_file",
    "render_project",
    "render_project_file",
    "render_session",
    "render_stream",
]

_HEADER = (
    "# coder-reconciler manifest (`reconciler validate` checks it;\n"
    "# `reconciler schema manifest` prints its JSON Schema).\n"
)
# Characters YAML reads as line breaks or refuses, escaped inside JSON strings.
_YAML_UNSAFE = re.compile("[\x85\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")


class ExportRenderError(ValueError):
    """A session's values cannot be written as YAML (nested beyond any limit)."""


def _dump(value: Any) -> str:
    return yaml.safe_dump(
        value, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )


def _as_json(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (RecursionError, ValueError) as exc:
        raise ExportRenderError("nested too deeply to write") from exc
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def _dump_field(key: str, value: Any) -> str:
    """``key: value`` as YAML; as JSON when the emitter cannot nest that deep."""
    try:
        return _dump({key: value})
    except RecursionError:
        return f"{key}: {_as_json(value)}\n"  # keys are spec field names: plain words


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))


def _env_lines(exported: ExportedSession) -> list[str]:
    env = exported.spec.get("env") or {}
    out = [
        "  # env values are never exported: each one is read from the environment\n",
        "  # of whoever runs `reconciler apply` (set these variables there).\n",
    ]
    if not env:
        return [*out, "  env: {}\n"]
    out.append("  env:\n")
    for key, value in env.items():
        line = _dump({key: value}).rstrip("\n")
        names = sorted(find_refs(value)) or [key]
        out.append(f"    {line}  # value not exported: set " + ", ".join(f"${n}" for n in names))
        out.append("\n")
    return out


def render_session(exported: ExportedSession, *, source_note: bool = True) -> str:
    """One Session document (no leading ``---``, no schema comment).

    Raises ``ExportRenderError`` when a value cannot be written at all.
    """
    out: list[str] = []
    if source_note:
        out.append(f"# Exported from session {exported.session_id}.\n")
    out.append(_dump({"apiVersion": API_VERSION, "kind": "Session", "name": exported.name}))
    spec = {k: v for k, v in exported.spec.items() if k != "env"}
    if not spec and "env" not in exported.spec and not exported.dropped_env_keys:
        out.append("spec: {}\n")
    else:
        out.append("spec:\n")
        out += [_indent(_dump_field(k, v), 2) for k, v in spec.items()]
        if exported.dropped_env_keys:
            out.append(
                "  # env keys not exported (not valid variable names): "
                + ", ".join(exported.dropped_env_keys)
                + "\n"
            )
        if "env" in exported.spec:
            out += _env_lines(exported)
    if exported.lifecycle:
        out.append(_dump({"lifecycle": dict(exported.lifecycle)}))
    return "".join(out)


def render_project(project: str) -> str:
    """A Project document with the design's default policy written out, and no
    ``defaults`` (they would change the hash of the sessions exported next to it)."""
    doc = {
        "apiVersion": API_VERSION,
        "kind": "Project",
        "name": project,
        "policy": Policy().to_manifest(),
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
