"""``${env:NAME}`` and ``${env:NAME:-default}`` references inside manifest strings.

Only text starting with ``${env:`` is a reference; other ``${...}`` (shell snippets in a
task, say) is left alone. Values are never part of an error: only names are.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

from reconciler.apifacts import ENV_NAME
from reconciler.errors import EnvNotTextError, UnsetEnvError
from reconciler.manifest.budget import text_size

__all__ = [
    "NAME_RE",
    "REF_PREFIX",
    "REF_RE",
    "find_malformed",
    "find_refs",
    "as_written_is_secret_free",
    "literal_form",
    "misspelled_reference",
    "sole_reference",
    "whole_value_variable",
    "holds_reference",
    "not_text_names",
    "ref_strings",
    "resolve",
    "resolve_partial",
    "resolve_reference",
    "resolved_growth",
    "unset_names",
]

REF_PREFIX = "${env:"
NAME_RE = re.compile(ENV_NAME)
# A default runs to the first `}`: defaults cannot contain `}`, nor nest a reference
# (`${env:A:-${env:B}}` is malformed, not A's default `${env:B` and a stray `}`).
REF_RE = re.compile(rf"\$\{{env:(?P<name>{ENV_NAME})(?::-(?P<default>(?:(?!\$\{{env:)[^}}])*))?\}}")


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


def sole_reference(value: Any) -> re.Match[str] | None:
    """The reference ``value`` is, when it is one ``${env:...}`` and nothing else."""
    return REF_RE.fullmatch(value) if isinstance(value, str) else None


# A value meant as a reference that is not one: `${ENV:NAME}`, `$env:NAME`, `${env: NAME}`.
_LOOKALIKE = re.compile(rf"\$\{{?\s*env\s*:\s*(?P<name>{ENV_NAME})\s*\}}?", re.IGNORECASE)


def misspelled_reference(value: Any) -> str | None:
    """The variable a value names when, whole, it is a reference misspelled (``${ENV:BAR}``,
    ``$env:BAR``): it reads as text written literally, where ``${env:BAR}`` was meant."""
    if not isinstance(value, str) or sole_reference(value) is not None:
        return None
    found = _LOOKALIKE.fullmatch(value.strip())
    return found["name"] if found is not None else None


def whole_value_variable(key: str, value: Any) -> str:
    """The variable to hold a secret value ``value`` (under key ``key``) whole, as a bare
    reference: the one it names when it is one reference (its default dropped); else
    (text beside a reference, a literal) one named as the key."""
    match = sole_reference(value)
    return match["name"] if match is not None else key


def as_written_is_secret_free(value: Any, plain: Collection[str] = ()) -> bool:
    """Whether a secret field's value (one under ``env``) may be recorded or saved as
    written: it is one reference and nothing else, with no default but an empty one or
    one of a ``plain`` variable (the Project's ``plainEnv``). Text beside a reference
    (``postgres://app:pw@${env:HOST}``) and any other default (``${env:NAME:-value}``)
    are values written literally, as secret as one with no reference at all."""
    match = sole_reference(value)
    if match is None:
        return False
    return not match["default"] or match["name"] in plain


def literal_form(value: Any) -> str:
    """How a secret field's value that :func:`as_written_is_secret_free` refuses is
    written, as the warnings and errors about it say it."""
    if holds_reference(value):
        return "holds a value written literally beside its reference (text, or a default)"
    return "is written literally"


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
    """``(path, string)`` for every string in ``value`` holding ``${env:``, in order.

    Lazy: it holds one iterator per level, not every path of a long list (aliases can
    make a list of a million references; a caller may want only the first few).
    """
    if isinstance(value, str):
        if REF_PREFIX in value:
            yield (), value
        return
    stack: list[tuple[tuple[str | int, ...], Iterator[tuple[str | int, Any]]]] = []
    top = _children(value)
    if top is None:
        return
    stack.append(((), top))
    while stack:
        path, children = stack[-1]
        step = next(children, None)
        if step is None:
            stack.pop()
            continue
        key, item = step
        if isinstance(item, str):
            if REF_PREFIX in item:
                yield (*path, key), item
            continue
        nested = _children(item)
        if nested is not None:
            stack.append(((*path, key), nested))


def _children(item: Any) -> Iterator[tuple[str | int, Any]] | None:
    if isinstance(item, Mapping):
        return iter(item.items())
    if isinstance(item, list | tuple):
        return enumerate(item)
    return None


def _distinct_strings(value: Any) -> Iterable[str]:
    """Each string of ``value`` holding ``${env:`` once: aliases can repeat one text a
    million times, and its references are the same each time."""
    return dict.fromkeys(_walk_strings(value))


def find_refs(value: Any) -> set[str]:
    """Names of every well-formed reference in ``value`` (any nesting of str/dict/list)."""
    return {m["name"] for text in _distinct_strings(value) for m in REF_RE.finditer(text)}


def unset_names(value: Any, environ: Mapping[str, str]) -> set[str]:
    """Names referenced in ``value`` that are unset in ``environ`` and have no default."""
    names: set[str] = set()
    for text in _distinct_strings(value):
        for m in REF_RE.finditer(text):
            if m["default"] is None and m["name"] not in environ:
                names.add(m["name"])
    return names


def resolved_growth(value: Any, environ: Mapping[str, str]) -> int:
    """The bytes resolving ``value``'s references would add (what ``resolve_partial``
    would build, computed without building it): one large variable referenced many
    times, through aliases or templates, is charged before it is copied."""
    growth = 0
    sizes: dict[str, int] = {}  # each name's value, sized once
    texts: dict[str, int] = {}  # each text read once (aliases repeat one)
    for text in _walk_strings(value):
        known = texts.get(text)
        if known is not None:
            growth += known
            continue
        before = growth
        for m in REF_RE.finditer(text):
            name = m["name"]
            if name in environ:
                size = sizes.get(name)
                if size is None:
                    size = sizes[name] = text_size(environ[name])
            elif m["default"] is not None:
                size = text_size(m["default"])
            else:
                continue  # stays as written
            growth += max(0, size - len(m[0]))
        texts[text] = growth - before
    return growth


def _is_text(value: str) -> bool:
    """Whether ``value`` encodes as UTF-8 (no lone surrogate: bytes that were not)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def resolve_reference(m: re.Match[str], environ: Mapping[str, str]) -> tuple[str, str | None]:
    """What one reference (a ``REF_RE`` match) resolves to, and the variable whose value
    that is: the variable's value when it is set (even empty); else its default, or the
    reference as written when it has none (unset), both the text's own (None)."""
    name = m["name"]
    if name in environ:
        return environ[name], name
    return (m["default"] if m["default"] is not None else m[0]), None


def _substitute(text: str, environ: Mapping[str, str], missing: set[str]) -> str:
    def repl(m: re.Match[str]) -> str:
        value, variable = resolve_reference(m, environ)
        if variable is None and m["default"] is None:
            missing.add(m["name"])
        return value

    return REF_RE.sub(repl, text)


def resolve_partial(value: Any, environ: Mapping[str, str]) -> tuple[Any, set[str]]:
    """``value`` with set references substituted; unset ones stay as written.

    Returns the new value and the unset names. Containers without references are
    returned as they are (not copied).
    """
    missing: set[str] = set()
    done: dict[str, str] = {}  # each text substituted once (aliases repeat one)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            if REF_PREFIX not in item:
                return item
            new = done.get(item)
            if new is None:
                new = done[item] = _substitute(item, environ, missing)
            return new
        if isinstance(item, Mapping):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    if not _walk_strings(value):
        return value, missing
    return walk(value), missing


def resolve(value: Any, environ: Mapping[str, str]) -> Any:
    """``value`` with every reference substituted: what a request carries.

    Raises ``UnsetEnvError`` naming (only) the variables that are unset and have no
    default, ``EnvNotTextError`` those whose value is not UTF-8 text (no request can
    carry it). Values are never part of either.
    """
    not_text = not_text_names(value, environ)
    if not_text:
        raise EnvNotTextError(not_text)
    resolved, missing = resolve_partial(value, environ)
    if missing:
        raise UnsetEnvError(missing)
    return resolved


def not_text_names(value: Any, environ: Mapping[str, str]) -> set[str]:
    """The variables ``value``'s references name that hold bytes that are not UTF-8
    (Python passes them on as lone surrogates)."""
    return {name for name in find_refs(value) if name in environ and not _is_text(environ[name])}
