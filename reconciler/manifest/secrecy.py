"""Secrets cannot leave through fields: where a ``${env:NAME}`` reference may resolve.

Every field of a session but ``env`` (label, tags, task, skills, repo, metadata, loop...)
is readable by the whole organisation, and plans show it. So (the field registry,
``fields.SECRET_FIELDS``, says which fields are secret; ``reconciler.masking`` holds the
credential variables and the ``plainEnv`` key):

- under ``env`` (a Session's ``spec.env``, the Project's ``defaults.env``) any variable
  may be referenced: the value is resolved at apply and shown as ``(sensitive)``;
- anywhere else, only a variable the Project declares plain (``plainEnv``);
- the tool's own credential variables (the API token...) nowhere, and never plain.

The check runs on the documents as they will be used: a SessionSet's sessions after
rendering, so a template that assembles a reference (``"${" ~ "env:X}"``) is caught
like a written one, at the template's position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.errors import ManifestError
from reconciler.fields import SECRET_FIELDS
from reconciler.manifest.envref import REF_PREFIX, REF_RE, find_refs, resolve_reference
from reconciler.manifest.sets import GeneratedDocument
from reconciler.manifest.yamlread import MAX_REF_POSITIONS, RawDocument
from reconciler.masking import CREDENTIAL_VARIABLES, PLAIN_ENV_KEY, TOKEN_VARIABLES, strings_in

__all__ = [
    "TOKEN_SOURCES",
    "api_tokens",
    "field_references",
    "holds_token",
    "plain_env_errors",
    "reference_errors",
    "token_sources",
    "token_spans",
]

# Where, per document kind, the spec fields are: a secret one's values are secret there
# (and only there: a key named ``env`` inside ``metadata`` is readable by the org).
_SPEC_PATHS = {"Session": "spec", "Project": "defaults"}


def field_references(spec: Mapping[str, Any]) -> set[str]:
    """Names referenced in a spec or request body outside ``env`` (and outside the
    tool's own record, ``metadata.reconciler``, which holds the manifest as written)."""
    outside = {k: v for k, v in spec.items() if k not in SECRET_FIELDS}
    metadata = outside.get("metadata")
    if isinstance(metadata, Mapping):
        outside["metadata"] = {k: v for k, v in metadata.items() if k != "reconciler"}
    return find_refs(outside)


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _credential(name: str) -> str:
    return (
        f"${{env:{name}}}: {name} holds a credential of the tool itself; a manifest may "
        "never reference it, not even under env"
    )


def _not_plain(where: str, name: str) -> str:
    return (
        f"{where}: ${{env:{name}}} would put the value of {name} where the whole "
        f"organisation can read it (and plans show it); if it is not secret, declare it "
        f"in the Project ({PLAIN_ENV_KEY}: [{name}]), else pass it to the session under "
        f"{' or '.join(f'spec.{n}' for n in sorted(SECRET_FIELDS))}"
    )


def _plain_unknown(where: str, name: str) -> str:
    return (
        f"{where}: ${{env:{name}}} is allowed outside "
        f"{' and '.join(f'spec.{n}' for n in sorted(SECRET_FIELDS))} only when the Project "
        f"declares {name} in {PLAIN_ENV_KEY}, and no Project was read: not checked here "
        "(a plan of the folder checks it)"
    )


# The shortest API token looked for in plain values: a placeholder (``dummy``, ``dev``)
# set where the token is not used (the embedded hub) would otherwise refuse a harmless
# variable holding the same word; a real token is far longer.
TOKEN_MIN_LENGTH = 8
# Where the API token is read from, as errors name it.
TOKEN_SOURCES = " or ".join(TOKEN_VARIABLES)


def api_tokens(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The API token's values in ``environ`` (``TOKEN_VARIABLES``) worth looking for."""
    return tuple(
        t for t in (environ.get(v) for v in TOKEN_VARIABLES) if t and len(t) >= TOKEN_MIN_LENGTH
    )


# A part of the token as long as this (or half the token, if longer) is looked for as
# the token is: most of a token is as good as all of it to whoever reads it, and no
# other value shares so many characters in a row with a random one. A shorter token (a
# placeholder) is looked for whole.
TOKEN_PART_MIN_LENGTH = 16
# Occurrences of one anchor (16 characters of the token) looked at in one text: those
# in no long part of the token, and all. No real text repeats a piece of a random token
# so often: one that does is taken to hold the token, the whole text (every variable in
# it named), rather than looked at further; stopping quietly would let the repeats hide
# a real part after them.
_MAX_STRAY_OCCURRENCES = 1000
_MAX_OCCURRENCES = 10_000
# A long part is found through a few short anchors of the token (``_anchors``), each
# sought once, rather than through every part of its length (a search of the whole text
# each: hundreds for a long token).
_ANCHOR_LENGTH = 16


def _folded(text: str) -> str:
    """``text`` with letter case folded and every character where it was: the token
    lower-cased is still the token. Each character alone: İ is the one character whose
    lower case is longer (taken for I first, so a match is only more likely), and Σ the
    one whose lower case depends on its neighbours (σ, or ς at a word's end: both σ)."""
    return text.replace("\u0130", "I").lower().replace("\u03c2", "\u03c3")


def _part_length(token: str) -> int:
    return min(len(token), max(TOKEN_PART_MIN_LENGTH, len(token) // 2))


def _anchors(token: str, size: int) -> list[int]:
    """Offsets in ``token`` of anchors (``_ANCHOR_LENGTH`` characters, or ``size``)
    such that every part of ``size`` characters holds one whole: they are ``step``
    apart, and a part is ``step + anchor - 1`` long."""
    anchor = min(_ANCHOR_LENGTH, size)
    step = size - anchor + 1
    return list(range(0, len(token) - anchor + 1, step))


def _run_length(text: str, at: int, token: str, offset: int, direction: int) -> int:
    """How many characters ``text`` and ``token`` share going ``direction`` (1 or -1)
    from ``text[at]`` and ``token[offset]`` (both included): a binary search over
    lengths, each compared in one slice comparison."""
    if direction > 0:
        most = min(len(text) - at, len(token) - offset)

        def same(n: int) -> bool:
            return text[at : at + n] == token[offset : offset + n]
    else:
        most = min(at + 1, offset + 1)

        def same(n: int) -> bool:
            return text[at - n + 1 : at + 1] == token[offset - n + 1 : offset + 1]

    low, high = 0, max(most, 0)  # same(low) holds; find the largest n that does
    while low < high:
        middle = (low + high + 1) // 2
        if same(middle):
            low = middle
        else:
            high = middle - 1
    return low


def token_spans(text: str, tokens: Sequence[str]) -> list[tuple[int, int]]:
    """(start, end) of each place ``text`` holds one of ``tokens`` (:func:`api_tokens`),
    or a long part of one (half of it, at least ``TOKEN_PART_MIN_LENGTH`` characters in
    a row), whatever the case of its letters: each the longest run of the token there;
    sorted by start, maybe overlapping."""
    if not tokens or not text:
        return []
    folded: str | None = None
    spans: set[tuple[int, int]] = set()
    for token in tokens:
        size = _part_length(token)
        if len(text) < size:
            continue
        folded = folded if folded is not None else _folded(text)
        token = _folded(token)
        anchor = min(_ANCHOR_LENGTH, size)
        for offset in _anchors(token, size):
            part = token[offset : offset + anchor]
            start = folded.find(part)
            found = stray = 0
            while start != -1:
                found += 1
                if found > _MAX_OCCURRENCES or stray > _MAX_STRAY_OCCURRENCES:
                    spans.add((0, len(text)))
                    break
                # The run of the token around the anchor: before it, then from it on.
                before = _run_length(folded, start - 1, token, offset - 1, -1)
                after = _run_length(folded, start, token, offset, 1)
                if before + after >= size:
                    spans.add((start - before, start + after))
                else:
                    stray += 1
                start = folded.find(part, start + 1)
    return sorted(spans)


def holds_token(value: Any, tokens: Sequence[str]) -> bool:
    """Whether any string in ``value`` (a resolved field, a variable's value) holds one
    of ``tokens`` (:func:`api_tokens`), or a long part of one (:func:`token_spans`).
    Keys are not read: references in them are never resolved."""
    return bool(tokens) and any(token_spans(text, tokens) for text in strings_in(value))


def token_sources(text: str, environ: Mapping[str, str], tokens: Sequence[str]) -> set[str]:
    """The variables whose values, as ``text``'s references resolve in ``environ``, make
    up part of the API token (one of ``tokens``, :func:`api_tokens`, or a long part of
    one: :func:`token_spans`) in the result: a copy of it under another name, or pieces
    put together. Where the token is the text's
    own characters alone (written beside the references, or a default used) no variable
    is named: that is the manifest's doing, not a variable's."""
    if not tokens or REF_PREFIX not in text:
        return set()
    pieces: list[tuple[str, str | None]] = []  # each piece, and the variable it came from
    at = 0
    for m in REF_RE.finditer(text):
        pieces.append((text[at : m.start()], None))
        pieces.append(resolve_reference(m, environ))
        at = m.end()
    pieces.append((text[at:], None))
    resolved = "".join(piece for piece, _ in pieces)
    spans = []
    position = 0
    for piece, name in pieces:
        if name is not None and piece:
            spans.append((position, position + len(piece), name))
        position += len(piece)
    found: set[str] = set()
    # Occurrences and spans both run left to right: each span is passed once (a long
    # text putting the token together thousands of times stays linear).
    passed = 0
    for start, end in token_spans(resolved, tokens):
        while passed < len(spans) and spans[passed][1] <= start:
            passed += 1
        index = passed
        while index < len(spans) and spans[index][0] < end:
            found.add(spans[index][2])
            index += 1
    return found


def _token_copy(name: str) -> str:
    return (
        f"${{env:{name}}}: {name} holds the API token (the value of {TOKEN_SOURCES}); a "
        "manifest may never send it, not even under env"
    )


def _token_part(name: str) -> str:
    return (
        f"${{env:{name}}}: the value of {name} and of the references beside it put the API "
        f"token (the value of {TOKEN_SOURCES}) together; a manifest may never send it, "
        "not even under env"
    )


def plain_env_errors(doc: RawDocument, environ: Mapping[str, str]) -> list[ManifestError]:
    """A Project's ``plainEnv`` naming a credential variable, or a variable whose value
    (in ``environ``) holds the API token: a copy of the token under another name would
    otherwise be resolved into fields the whole organisation reads, and plans show."""
    declared = doc.value.get(PLAIN_ENV_KEY) or []
    tokens = api_tokens(environ)
    errors = []
    for index, name in enumerate(declared):
        if name in CREDENTIAL_VARIABLES:
            why = "holds a credential of the tool itself"
        elif holds_token(environ.get(name), tokens):
            why = f"holds the API token (the value of {TOKEN_SOURCES})"
        else:
            continue
        message = f"{PLAIN_ENV_KEY}[{index}]: {name} {why}; it can never be declared plain"
        errors.append(doc.error([PLAIN_ENV_KEY, index], message))
    return errors


def _problems(
    text: str,
    secret: bool,
    plain: frozenset[str],
    environ: Mapping[str, str],
    tokens: Sequence[str],
) -> tuple[tuple[str, str], ...]:
    """(name, why) of each reference in ``text`` its place may not hold: a
    ``credential``; under ``env`` (``secret``), one whose value makes up the API token
    (:func:`token_sources`), as a copy (``token``) or a part (``token part``; elsewhere
    ``plainEnv`` and the model builder refuse these); or ``not plain``."""
    sources = token_sources(text, environ, tokens) if secret else set()
    found = []
    for name in dict.fromkeys(m["name"] for m in REF_RE.finditer(text)):
        if name in CREDENTIAL_VARIABLES:
            found.append((name, "credential"))
        elif not secret and name not in plain:
            found.append((name, "not plain"))
        elif name in sources:
            whole = holds_token(environ[name], tokens)
            found.append((name, "token" if whole else "token part"))
    return tuple(found)


def reference_errors(
    docs: Sequence[RawDocument],
    plain: Iterable[str] | None,
    environ: Mapping[str, str],
    unjudged: list[ManifestError] | None = None,
) -> list[ManifestError]:
    """The references the rule refuses in ``docs`` (checked documents, any kind).

    ``plain`` is the Project's ``plainEnv``, None when no Project was read (files
    checked alone): a reference outside ``env`` is then neither allowed nor refused,
    as only the Project can say; each is added to ``unjudged`` instead, worded as a
    warning. ``environ`` holds the variables' values, which say where the API token
    would be sent. One error per place and variable: a
    template value that fails alike for every session of a set is reported once (for
    the first), an aliased reference once (at its anchor). The first
    ``MAX_REF_POSITIONS`` are listed, then one error says there are more (aliases can
    repeat a reference a million times: the report stays small).
    """
    allowed = frozenset(plain or ())
    tokens = api_tokens(environ)
    errors: list[ManifestError] = []
    seen: set[tuple[Any, ...]] = set()
    # Each text's problems, where it is secret and where not: judged once for all the
    # documents (the same reference recurs in session after session, and aliases can
    # repeat one a million times).
    judged: dict[tuple[str, bool], tuple[tuple[str, str], ...]] = {}
    for doc in docs:
        spec_path = _SPEC_PATHS.get(doc.value["kind"])
        if not doc.refs or spec_path is None:  # a SessionSet: its sessions are checked
            continue
        suffix = ""
        if isinstance(doc, GeneratedDocument):
            suffix = f" (SessionSet {doc.set_name!r}, {doc.item})"
        for path, text in doc.reference_strings():
            secret = len(path) > 1 and path[0] == spec_path and path[1] in SECRET_FIELDS
            problems = judged.get((text, secret))
            if problems is None:
                problems = judged[text, secret] = _problems(text, secret, allowed, environ, tokens)
            if not problems:
                continue
            line, column = doc.position(path)  # an aliased reference: its anchor's
            for name, why in problems:
                key = (doc.file, line, column, name)
                if key in seen:
                    continue
                if len(errors) == MAX_REF_POSITIONS:
                    more = "more references are refused like these (not listed)"
                    errors.append(ManifestError(more, file=doc.file, line=line, column=column))
                    return errors
                seen.add(key)
                where = _dotted(path)
                if why == "not plain" and plain is None:
                    # Listed as the errors are: the first MAX_REF_POSITIONS, then one line.
                    if unjudged is not None and len(unjudged) <= MAX_REF_POSITIONS:
                        message = _plain_unknown(where, name) + suffix
                        if len(unjudged) == MAX_REF_POSITIONS:
                            message = "more references are left unchecked like these (not listed)"
                        unjudged.append(
                            ManifestError(message, file=doc.file, line=line, column=column)
                        )
                    continue
                if why == "credential":
                    message = f"{where}: {_credential(name)}"
                elif why == "token":
                    message = f"{where}: {_token_copy(name)}"
                elif why == "token part":
                    message = f"{where}: {_token_part(name)}"
                else:
                    message = _not_plain(where, name)
                error = ManifestError(message + suffix, file=doc.file, line=line, column=column)
                errors.append(error)
    return errors
