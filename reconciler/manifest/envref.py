"""``${env:NAME}`` and ``${env:NAME:-default}`` references inside manifest strings.

Only text starting with ``${env:`` is a reference; other ``${...}`` (shell snippets in a
task, say) is left alone. Values are never part of an error: only names are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.apifacts import ENV_NAME
from reconciler.errors import UnsetEnvError

__all__ = [
    "NAME_RE",
    "REF_PREFIX",
    "REF_RE",
    "find_malformed",
    "find_refs",
    "holds_reference",
    "ref_strings",
    "resolve",
    "resolve_partial",
    "unset_names",
]

REF_PREFIX = "${env:"
NAME_RE = re.compile(ENV_NAME)
# A default runs to the first `}`: defaults cannot contain `}` (nor nest references).
REF_RE = re.compile(rf"\$\{{env:(?P<name>{ENV_NAME})(?::-(?P<default>[^}}]*))?\}}")


def find_malformed(text: str) -> list[str]:
    """Every ``${env:`` in ``text`` that does not start a well-formed reference.

    Each item is the offending fragment (up to the next ``}`` or 40 characters), so an
    error can show it when the string is not secret.
    """
    bad: list[str] = []
    start = text.find(REF_PREFIX)
    while start != -1:
        match = REF_RE.match(text, start)
        if match is None:
            end = text.find("}", start)
            stop = start + 40 if end == -1 else min(end + 1, start + 40)
            bad.append(text[start:stop])
            start = text.find(REF_PREFIX, start + len(REF_PREFIX))
        else:
            start = text.find(REF_PREFIX, match.end())
    return bad


def holds_reference(value: Any) -> bool:
    """Whether ``value`` is a string holding a well-formed reference.

    A value under ``env`` that does not is written literally: a secret, never saved.
    """
    return isinstance(value, str) and REF_RE.search(value) is not None


def _walk_strings(value: Any) -> list[str]:
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if REF_PREFIX in item:
                found.append(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


def ref_strings(value: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """``(path, string)`` for every string in ``value`` holding ``${env:``, in order."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if REF_PREFIX in item:
                yield path, item
        elif isinstance(item, Mapping):
            stack.extend(((*path, k), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list | tuple):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(item))))


def find_refs(value: Any) -> set[str]:
    """Names of every well-formed reference in ``value`` (any nesting of str/dict/list)."""
    return {m["name"] for text in _walk_strings(value) for m in REF_RE.finditer(text)}


def unset_names(value: Any, environ: Mapping[str, str]) -> set[str]:
    """Names referenced in ``value`` that are unset in ``environ`` and have no default."""
    names: set[str] = set()
    for text in _walk_strings(value):
        for m in REF_RE.finditer(text):
            if m["default"] is None and m["name"] not in environ:
                names.add(m["name"])
    return names


def _substitute(text: str, environ: Mapping[str, str], missing: set[str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m["name"]
        if name in environ:
            return environ[name]
        if m["default"] is not None:
            return m["default"]
        missing.add(name)
        return m[0]

    return REF_RE.sub(repl, text)


def resolve_partial(value: Any, environ: Mapping[str, str]) -> tuple[Any, set[str]]:
    """``value`` with set references substituted; unset ones stay as written.

    Returns the new value and the unset names. Containers without references are
    returned as they are (not copied).
    """
    missing: set[str] = set()

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return _substitute(item, environ, missing) if REF_PREFIX in item else item
        if isinstance(item, Mapping):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    if not _walk_strings(value):
        return value, missing
    return walk(value), missing


def resolve(value: Any, environ: Mapping[str, str]) -> Any:
    """``value`` with every reference substituted.

    Raises ``UnsetEnvError`` naming (only) the variables that are unset and have no
    default.
    """
    resolved, missing = resolve_partial(value, environ)
    if missing:
        raise UnsetEnvError(missing)
    return resolved
