"""``ExportedSession`` values as manifest YAML: one file per session, or one stream.

Rendering is deterministic (same sessions, same bytes), so exporting again into the
same folder finds every file unchanged. A value nested too deeply for the YAML emitter
is written as JSON, which YAML reads as the same value.

A session file carries an ``# export-digest:`` line: a hash of the rest of the file as
export wrote it. Exporting again may rewrite a file whose digest still matches (nobody
edited it since) or whose content, the session-id comment and the digest aside, is what
export writes now (:func:`may_rewrite`); any other file a person changed is left alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

import yaml

from reconciler.apifacts import API_VERSION
from reconciler.export.spec import ExportedSession
from reconciler.manifest.envref import find_refs
from reconciler.masking import PLAIN_ENV_KEY
from reconciler.model import Policy
from reconciler.render.values import HIDDEN, escape_matches

__all__ = [
    "API_VERSION",
    "ExportRenderError",
    "exported_from",
    "may_rewrite",
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
_SOURCE_NOTE = "# Exported from session "
_DIGEST_NOTE = "# export-digest: "
_DIGEST_RE = re.compile(rf"^{_DIGEST_NOTE}([0-9a-f]{{16}}) .*\n", re.MULTILINE)
# Characters YAML reads as line breaks or refuses, escaped inside JSON strings.
_YAML_UNSAFE = re.compile("[\x85\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")
# Controls and bidirectional overrides in hub text (anyone in the organisation writes a
# label, render.values.HIDDEN): an exported file goes to code review, where such a
# character would hide or reorder what the reviewer reads. A string holding one is
# written double-quoted, the character as an escape.


class ExportRenderError(ValueError):
    """A session's values cannot be written as YAML (nested beyond any limit)."""


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, but a string holding a hidden character is double-quoted
    (PyYAML escapes the C0 and C1 controls there itself; :func:`_dump` the rest)."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = '"' if HIDDEN.search(data) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(value: Any) -> str:
    text = yaml.dump(
        value,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    # What PyYAML deems printable (the bidirectional controls) is left raw, only ever
    # inside the double-quoted strings above, where an escape means the same.
    return escape_matches(HIDDEN, text)


def _as_json(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (RecursionError, ValueError) as exc:
        raise ExportRenderError("nested too deeply to write") from exc
    return escape_matches(HIDDEN, escape_matches(_YAML_UNSAFE, text))


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
        out.append(f"{_SOURCE_NOTE}{exported.session_id}.\n")
    head = {"apiVersion": API_VERSION, "kind": "Session", "name": exported.name}
    if exported.adopt is not None:
        head["adopt"] = exported.adopt
    out.append(_dump(head))
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


def render_project(project: str, plain_env: Sequence[str] = ()) -> str:
    """A Project document with the design's default policy written out, and no
    ``defaults`` (they would change the hash of the sessions exported next to it).
    ``plain_env``: what a Project a person wrote declares plain; export never derives it
    from text read from the hub (``reconciler.export.workflow``)."""
    doc: dict[str, Any] = {"apiVersion": API_VERSION, "kind": "Project", "name": project}
    if plain_env:
        doc[PLAIN_ENV_KEY] = list(plain_env)
    doc["policy"] = Policy().to_manifest()
    return _dump(doc)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def render_file(exported: ExportedSession) -> str:
    """A manifest file holding one Session, its digest line after the header."""
    body = render_session(exported)
    digest = _digest(_HEADER + body)
    note = f"{_DIGEST_NOTE}{digest} (export rewrites this file only while it is unedited)\n"
    return _HEADER + note + body


_SOURCE_RE = re.compile(rf"^{_SOURCE_NOTE}(\S+)\.$", re.MULTILINE)


def exported_from(text: str) -> str | None:
    """The session id a file export wrote names in its source comment, or None."""
    found = _SOURCE_RE.search(text)
    return found[1] if found else None


def _untouched(text: str) -> bool:
    """True when ``text`` holds a digest line that matches the rest of it."""
    found = _DIGEST_RE.search(text)
    if found is None:
        return False
    return _digest(text[: found.start()] + text[found.end() :]) == found[1]


def _stable(text: str) -> str:
    """``text`` without the lines that change when nothing a person wrote did."""
    lines = text.splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith((_SOURCE_NOTE, _DIGEST_NOTE)))


def may_rewrite(current: str, exported: str) -> bool:
    """Whether export may write ``exported`` over a file holding ``current``: nobody
    edited the file since export wrote it (its digest matches), or it differs from
    ``exported`` only in the session-id comment and the digest (a file exported before
    digests, after its session was replaced)."""
    return _untouched(current) or _stable(current) == _stable(exported)


def render_project_file(project: str, plain_env: Sequence[str] = ()) -> str:
    """A manifest file holding the Project."""
    return _HEADER + render_project(project, plain_env)


def render_stream(
    project: str,
    exports: Sequence[ExportedSession],
    *,
    with_project: bool = True,
) -> str:
    """Every document in one YAML stream (for stdout): the Project first, when asked."""
    docs = [render_project(project)] if with_project else []
    docs.extend(render_session(e) for e in exports)
    return _HEADER + "---\n".join(docs)
