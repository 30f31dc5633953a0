"""What is secret, and how it looks wherever it is shown: ``(sensitive)``, never the value.

The facts of the secrecy rule (docs/concepts/secrets.md), each defined once:

- Values under a secret field (``fields.SECRET_FIELDS``, ``fields.is_secret_path``: a
  session's ``env``) are secret. A ``${env:NAME}`` reference is resolved there at apply
  time, and shown as ``(sensitive)`` everywhere. The field registry says which fields
  are secret; nothing here says it again.
- :data:`CREDENTIAL_VARIABLES`: the variables the tool itself reads credentials from
  (the API token, the served hub's tokens). A manifest may never reference them, not
  even under ``env``, and a Project may never declare them plain.
- Any other field is readable by the whole organisation, so a reference resolves into
  it only for a variable the Project declares plain (:data:`PLAIN_ENV_KEY`);
  ``reconciler.manifest.secrecy`` enforces it.

:func:`mask_values` is the one place text is scrubbed of secret values: the client
passes every text the hub sends back (error messages, which some services fill with
the request they refused) through it, with the token and every secret value the run
has sent, before the text becomes an error, a progress line, a JSON report or a log.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from reconciler.fields import SECRET_FIELDS

__all__ = [
    "CREDENTIAL_VARIABLES",
    "HUB_TOKENS_VARIABLE",
    "PLAIN_ENV_KEY",
    "SENSITIVE",
    "TOKEN_VARIABLES",
    "mask_answer",
    "mask_body_env",
    "mask_values",
    "secret_values",
    "strings_in",
]

SENSITIVE = "(sensitive)"
# The Project key listing the variables whose values are not secret.
PLAIN_ENV_KEY = "plainEnv"
# The API token, read from the first of these that is set.
TOKEN_VARIABLES: tuple[str, ...] = ("AGENTUITY_SDK_KEY", "AGENTUITY_CLI_KEY")
# `hub serve`'s tokens (KEY=ORG:USER,...).
HUB_TOKENS_VARIABLE = "CODER_HUB_TOKENS"
CREDENTIAL_VARIABLES: tuple[str, ...] = (*TOKEN_VARIABLES, HUB_TOKENS_VARIABLE)


def mask_body_env(body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with every value under a secret field (``env``) replaced by ``(sensitive)``
    (the whole field, when a hub sends it as something other than a map)."""
    out = dict(body)
    for name in SECRET_FIELDS:
        if out.get(name) is not None:
            out[name] = _secret_field(out[name])
    return out


def _secret_field(values: Any) -> Any:
    """A secret field's value as shown: its keys kept, every value ``(sensitive)``."""
    return {k: SENSITIVE for k in values} if isinstance(values, Mapping) else SENSITIVE


# The shortest sent value :func:`mask_answer` looks for inside any text. A shorter one
# ("1", "main", "active") is looked for where it stands alone, and never in the fields a
# hub fills itself (ids, times, counts, states: ``_filled_by_hub``), where it would be
# found by chance, breaking the answer scripts read (and saying the value).
ECHO_MIN_LENGTH = 8
_HUB_FILLED = frozenset(
    {
        # states
        "status",
        "mode",
        "visibility",
        "defaultAgent",
        "workflowMode",
        "loopStatus",
        "type",
        "bucket",
        # ids, names, addresses, versions, positions
        "id",
        "name",
        "url",
        "version",
        "sequence",
        "timestamp",
        "iteration",
        "maxIterations",
    }
)


# A key that is a field's name (letters, digits, `_`): what an answer is made of.
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _filled_by_hub(key: Any) -> bool:
    """A field the hub fills in itself: an id, a name, a time, a count, a state."""
    return isinstance(key, str) and (
        key in _HUB_FILLED or key.endswith(("Id", "At", "Count", "Iteration", "Url"))
    )


def _open_values(value: Any) -> Iterator[str]:
    """The strings (and numbers, as text) of a request outside any secret field."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key not in SECRET_FIELDS:
                yield from _open_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _open_values(item)


def _alone(secret: str) -> str:
    """A pattern for ``secret`` standing alone: not continued by a letter or digit on a
    side where it begins or ends with one; one with neither (``-``, ``/``) only between
    blanks or the text's ends."""
    if not re.search(r"\w", secret):
        return rf"(?<!\S){re.escape(secret)}(?!\S)"
    before = r"(?<!\w)" if re.match(r"\w", secret[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", secret[-1]) else ""
    return before + re.escape(secret) + after


def mask_answer(
    body: Mapping[str, Any], request: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A hub's answer as the thin commands show it: whatever a secret field (``env``)
    holds, at any depth but inside ``metadata``, as ``(sensitive)``
    (:func:`mask_body_env`'s rule, wherever a hub nests one); and the secrets the
    ``request`` it answers sent (its ``env`` values) where it echoes them: those of
    ``ECHO_MIN_LENGTH`` characters or more anywhere, in keys and values, in every form
    :func:`mask_values` knows; shorter ones where they stand alone in any text but the
    fields the hub fills itself; a number whose text is a sent value, but in those. A
    short value the ``request`` also sent outside ``env`` (a branch ``main``) is no more
    secret than that, and is shown where it is echoed."""
    secrets = frozenset(secret_values(request))
    long = frozenset(s for s in secrets if len(s) >= ECHO_MIN_LENGTH)
    short = secrets - long - set(_open_values(request or {}))
    by_length = sorted(short, key=len, reverse=True)  # a longer one masked whole first
    alone = re.compile("|".join(_alone(s) for s in by_length)) if short else None

    def text(value: str, filled: bool) -> str:
        if long:
            value = mask_values(value, long)
        if alone is not None and not filled:
            value = alone.sub(SENSITIVE, value)
        return value

    def walk(value: Any, readable: bool = False, filled: bool = False) -> Any:
        if isinstance(value, str):
            return text(value, filled)
        if isinstance(value, int | float) and not isinstance(value, bool):
            # As text: 12345678.0 is the 12345678 a hub turned into a float.
            forms = {str(value)}
            if isinstance(value, float) and value.is_integer():
                forms.add(str(int(value)))
            hidden = bool(forms & long) or (not filled and bool(forms & short))
            return SENSITIVE if hidden else value
        if isinstance(value, Mapping):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                # A field's name (`status`, `id`) is the answer's shape, never an echo:
                # only a long value is looked for in it; other keys are text.
                shown = (
                    text(key, _FIELD_NAME.fullmatch(key) is not None)
                    if isinstance(key, str)
                    else key
                )
                while shown in out:  # two keys masked alike: both kept
                    shown = f"{shown}'"
                if key in SECRET_FIELDS and item is not None and not readable:
                    out[shown] = _secret_field(item)
                else:
                    # A key named env inside metadata is the organisation's to read (the
                    # tool's record there holds references, never values).
                    inside = readable or key == "metadata"
                    out[shown] = walk(item, inside, _filled_by_hub(key))
            return out
        if isinstance(value, list | tuple):
            return [walk(v, readable, filled) for v in value]
        return value

    result: dict[str, Any] = walk(body)
    return result


def strings_in(value: Any) -> Iterator[str]:
    """Every string among ``value``'s values, at any depth (keys not included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)


def secret_values(body: Any) -> list[str]:
    """The non-empty strings under a secret field (``env``) of a request body (any other
    body: none)."""
    if not isinstance(body, Mapping):
        return []
    return [text for name in SECRET_FIELDS for text in strings_in(body.get(name)) if text]


# A secret cut short (a server truncating what it echoes): a beginning of it, from this
# many characters on, is masked where the text ends there or marks the cut right after
# it; an end of it, as long, where a cut mark comes right before it (a cut in the
# middle: `postgres://app:Hunt...ssword=KEY`). Only marks count: a beginning followed by
# anything else is other text sharing it (`-----BEGIN CERTIFICATE----- block`, a
# webhook's public host), so it stays readable.
_PREFIX_FROM = 12  # shorter beginnings are often public (`sk_live_`, `postgres://`)
# After a beginning (compared in lower case): ellipses as written and as JSON escapes
# them, a closing quote (also as JSON and HTML write it), the end of a line, a closing
# parenthesis or tag, and the notes servers append. Not a space, `,` or `}`: public text
# sharing a secret's beginning goes on with those (a PEM header, a webhook's host).
_CUT_AFTER = (
    "...",
    " ...",
    "\u2026",
    " \u2026",
    "&hellip;",
    "&#8230;",
    "\\u2026",
    '"',
    "'",
    '\\"',
    "&quot;",
    "&#34;",
    "&#39;",
    "&#x27;",
    "\n",
    "\r",
    ")",
    "<",
    "[...]",
    "[\u2026]",
    "[truncated",
    " [truncated",
    "(truncated",
    " (truncated",
    " <truncated",
)
# Before an end: the marks of a cut in the middle.
_CUT_BEFORE = (
    "...",
    "... ",
    "\u2026",
    "\u2026 ",
    "\\u2026",
    "&hellip;",
    "&#8230;",
    "[...]",
    "[\u2026]",
    "[truncated]",
    "(truncated)",
    "<truncated>",
)
# How far into a run of a secret a mark may reach: a secret's own `.` next to the cut
# joins the run (`...` then reads `..` after it). Only a mark that goes on past the
# run counts so: a quote the secret holds, ending the run, is the secret's.
_MARK_REACH = 2
# The longest mark after a beginning: how much text past a run is read for one.
_LONGEST_MARK = max(map(len, _CUT_AFTER))
# How HTML escapers write `&<>"'`: each writes `&<>` alike (`&` first, so that no entity
# is escaped again) and differs in quotes: none escaped, Python's html.escape,
# JavaScript's escape-html, Go's html.EscapeString, and Go's html/template, which also
# writes `+` (base64 tokens) as `&#43;`.
_HTML_BASE = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_HTML_ENTITIES = tuple(
    {**_HTML_BASE, **quotes}
    for quotes in (
        {},
        {'"': "&quot;", "'": "&#x27;"},
        {'"': "&quot;", "'": "&#39;"},
        {'"': "&#34;", "'": "&#39;"},
        {'"': "&#34;", "'": "&#39;", "+": "&#43;"},
        {'"': "&quot;", "'": "&#039;"},  # PHP's htmlspecialchars
        {'"': "&quot;", "'": "&apos;"},  # XML's and XHTML's
    )
)
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_UNICODE_ESCAPE = re.compile(r"\\u[0-9a-f]{4}")
# How servers other than Python escape JSON: Go and JavaScript's HTML-safe forms.
_HTML_SAFE = {"&": "\\u0026", "<": "\\u003c", ">": "\\u003e"}


@functools.lru_cache(maxsize=4096)
def _forms(secret: str) -> tuple[frozenset[str], frozenset[str]]:
    """The ways ``secret`` may be written back: as it is, JSON-escaped (ASCII or not,
    with ``&<>`` in Go's and JavaScript's escapes, with ``/`` escaped), URL-encoded (as
    Python, JavaScript's encodeURIComponent and Java's URLEncoder do, escapes in either
    case), HTML-escaped (an error page, by the usual escapers, PHP's and XML's too),
    quoted in a bytes repr; and each escaped form put in a container once more (JSON in
    a JSON string or list, in an HTML page, in a bytes repr). Made once per secret: the
    forms written once, then all of them."""
    from urllib.parse import quote, quote_plus

    escaped = _json_forms(secret) | {repr(secret)[1:-1]}
    slashed = {form.replace("/", "\\/") for form in escaped}
    encoded = {
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        quote(secret, safe="-_.!~*'()"),  # encodeURIComponent
        quote(secret, safe="$&+,:;=@"),  # Go's url.PathEscape
        quote_plus(secret, safe="*").replace("~", "%7E"),  # Java's URLEncoder
    }
    encoded |= {_PERCENT.sub(lambda m: m[0].lower(), form) for form in encoded}
    html = _html_forms(secret)
    quoted = {_bytes_repr(form) for form in {secret} | escaped}
    # Echoed twice over: the request's JSON inside an error body that is a JSON string
    # or a list of them, inside an HTML page, or quoted by an HTTP parser as bytes.
    again: set[str] = set()
    for form in escaped | html | quoted:
        again |= _json_forms(form) | _html_forms(form) | {_bytes_repr(form)}
    first = frozenset({secret} | escaped | slashed | encoded | html | quoted)
    return first, first | again


def _json_forms(text: str) -> set[str]:
    """``text`` as JSON escapes it in a string: ASCII or not, ``\\u00E9`` as Jackson
    writes it, ``&<>`` as Go and JavaScript's HTML-safe encoders write them, and as
    .NET's encoder writes it."""
    forms = {json.dumps(text, ensure_ascii=ascii)[1:-1] for ascii in (True, False)}
    forms |= {_UNICODE_ESCAPE.sub(lambda m: m[0].upper().replace("\\U", "\\u"), f) for f in forms}
    safe = set()
    for form in forms:
        for char, code in _HTML_SAFE.items():
            form = form.replace(char, code)
        safe.add(form)
    return forms | safe | {_dotnet_json(text)}


# What .NET's System.Text.Json escapes besides JSON's own, and how (upper-case hex).
_DOTNET_ESCAPES = {c: f"\\u{ord(c):04X}" for c in "<>&'+`"}


def _dotnet_json(text: str) -> str:
    """``text`` as .NET's default JSON encoder writes it in a string: every character
    outside ASCII and each of ``<>&'+``` as an upper-case ``\\u`` escape, ``"`` as
    ``\\u0022``."""
    form = json.dumps(text, ensure_ascii=True)[1:-1]
    form = _UNICODE_ESCAPE.sub(lambda m: m[0].upper().replace("\\U", "\\u"), form)
    form = form.replace('\\"', "\\u0022")
    for char, code in _DOTNET_ESCAPES.items():
        form = form.replace(char, code)
    return form


def _html_forms(text: str) -> set[str]:
    return {_html_escaped(text, entities) for entities in _HTML_ENTITIES}


def _bytes_repr(text: str) -> str:
    """``text`` as Python quotes it inside a bytes repr between single quotes (``\'``),
    as it quotes a buffer holding both kinds of quote."""
    inner = repr(text.encode("utf-8", "backslashreplace"))
    if inner.startswith('b"'):  # repr chose double quotes; between single ones, ' is \'
        return inner[2:-1].replace("'", "\\'")
    return inner[2:-1]


def _html_escaped(text: str, entities: dict[str, str]) -> str:
    for char, entity in entities.items():
        text = text.replace(char, entity)
    return text


def _cut_spans(text: str, forms: Iterable[str]) -> list[tuple[int, int]]:
    """Where ``text`` holds a secret cut short, as ``(start, end)`` spans: at each place
    where a form's first :data:`_PREFIX_FROM` characters appear, the longest run of any
    form from there, when it is a whole form or a cut mark follows it; and each run of a
    form's last characters that a cut mark comes right before. Each form is searched
    once through the text; each place found costs a binary search over the form."""
    longest: dict[int, tuple[int, bool]] = {}  # start -> (end, a whole form)
    spans: list[tuple[int, int]] = []
    present: dict[str, bool] = {}  # many forms share a head or a tail: each looked for once
    for form in forms:
        if len(form) <= _PREFIX_FROM:
            continue
        head, tail = form[:_PREFIX_FROM], form[-_PREFIX_FROM:]
        for part in (head, tail):
            if part not in present:
                present[part] = part in text
        if not present[head] and not present[tail]:
            continue
        at = text.find(head) if present[head] else -1
        while at != -1:
            length = _common_length(text, at, form)
            end = at + length
            found = longest.get(at)
            if found is None or end > found[0] or (end == found[0] and length == len(form)):
                longest[at] = (end, length == len(form))
            at = text.find(head, max(end, at + 1))
        at = text.find(tail) if present[tail] else -1
        while at != -1:
            end = at + _PREFIX_FROM
            begin = end - _common_suffix(text, end, form)
            # The run may have taken the mark's last characters (a secret with a `.`
            # right after the cut): the mark may end up to _MARK_REACH into it.
            for cut in range(begin, min(begin + _MARK_REACH, end - _PREFIX_FROM) + 1):
                if any(
                    text.endswith(mark, 0, cut) and cut - len(mark) < begin for mark in _CUT_BEFORE
                ):
                    spans.append((cut, end))
                    break
            at = text.find(tail, end)
    visible = len(text.rstrip())
    for at, (end, whole) in longest.items():
        if whole or end >= visible:
            spans.append((at, end))
            continue
        # As above: the mark may start up to _MARK_REACH characters into the run.
        for cut in range(end, max(end - _MARK_REACH, at + _PREFIX_FROM) - 1, -1):
            after = text[cut : cut + _LONGEST_MARK].lower()
            if any(after.startswith(mark) and cut + len(mark) > end for mark in _CUT_AFTER):
                spans.append((at, cut))
                break
    return spans


def _masked_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each span replaced by ``(sensitive)``, overlapping or adjacent ones
    as one."""
    pieces: list[str] = []
    done = 0
    for start, end in sorted(spans):
        if start > done or not pieces:
            pieces += [text[done:start], SENSITIVE]
        done = max(done, end)
    return "".join([*pieces, text[done:]])


def _common_suffix(text: str, end: int, form: str) -> int:
    """How many of ``form``'s last characters ``text`` holds right before ``end``."""
    low, high = 0, min(len(form), end)
    while low < high:
        middle = (low + high + 1) // 2
        if text.endswith(form[-middle:], 0, end):
            low = middle
        else:
            high = middle - 1
    return low


def _common_length(text: str, at: int, form: str) -> int:
    """How many characters of ``form`` ``text`` holds from ``at`` (by halving)."""
    low, high = 0, min(len(form), len(text) - at)
    while low < high:
        middle = (low + high + 1) // 2
        if text.startswith(form[:middle], at):
            low = middle
        else:
            high = middle - 1
    return low


@functools.lru_cache(maxsize=64)
def _all_forms(
    secrets: frozenset[str],
) -> tuple[frozenset[str], tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The forms of every one of ``secrets``: those written once (where a cut is looked
    for), all of them longer ones first in a fixed order, and all of them by their
    first ``_PREFIX_FROM`` characters (a run masks many texts with one set of them)."""
    once: set[str] = set()
    every: set[str] = set()
    for secret in secrets:
        first, all_forms = _forms(secret)
        once |= first
        every |= all_forms
    ordered = tuple(sorted(every, key=lambda form: (-len(form), form)))
    by_head: dict[str, list[str]] = {}
    for form in ordered:
        by_head.setdefault(form[:_PREFIX_FROM], []).append(form)
    return frozenset(once), ordered, {k: tuple(v) for k, v in by_head.items()}


def _widened(
    text: str, span: tuple[int, int], by_head: Mapping[str, Sequence[str]]
) -> tuple[int, int]:
    """``span`` (a cut found at its start) to the end of the longest whole form there."""
    start, end = span
    for form in by_head.get(text[start : start + _PREFIX_FROM], ()):
        if start + len(form) > end and text.startswith(form, start):
            return start, start + len(form)
    return span


def mask_values(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of each non-empty secret replaced by ``(sensitive)``.

    Each secret is also masked in the forms a server may echo it in (``_forms``: JSON
    escapes of Python, Go and JavaScript, escaped slashes, URL encoding), and a
    beginning or an end of it where the text marks a cut (:func:`_cut_spans`). Cuts
    first, judged on the text as it came (a shorter secret masked inside a longer one
    would hide the longer one's beginning), then whole forms, longer ones first, so
    that a secret holding another is masked whole; last, the forms of a secret of
    ``ECHO_MIN_LENGTH`` characters or more written in another case (a server that
    upper-cases the JSON it echoes: an escaped quote stays, a unicode escape's
    hex digits change case; its upper- and lower-cased text has forms of its own: a
    sharp s upper-cased is SS).
    """
    wanted = frozenset(s for s in secrets if s)
    once, forms, by_head = _all_forms(_with_cases(wanted))
    if not forms:
        return text
    # A cut is looked for in the forms written once (a server cuts what it echoes); a
    # cut found where a longer form is whole (one in a second container) takes it all.
    spans = [_widened(text, span, by_head) for span in _cut_spans(text, once)]
    text = _masked_spans(text, spans)
    # A form whose beginning the text does not hold is not in it: each beginning looked
    # for once (a secret has over a hundred forms, most sharing one).
    heads: dict[str, bool] = {}
    for secret in forms:
        head = secret[:_PREFIX_FROM]
        if head not in heads:
            heads[head] = head in text
        if heads[head] and secret in text:
            text = text.replace(secret, SENSITIVE)
            heads.clear()  # the text changed
    # A server may echo a secret upper- or lower-cased (a normalised value, an error
    # code made from it): each form long enough not to be met by chance, in any case.
    lowered = text.lower()
    for form in forms:
        if len(form) >= ECHO_MIN_LENGTH and form.lower() in lowered:
            text = re.sub(re.escape(form), SENSITIVE, text, flags=re.IGNORECASE)
            lowered = text.lower()
    return text


def _with_cases(secrets: frozenset[str]) -> frozenset[str]:
    """``secrets`` and, of each long enough not to be met by chance, its upper- and
    lower-cased text (which may differ in more than case: ``ß``, ``İ``)."""
    long = [s for s in secrets if len(s) >= ECHO_MIN_LENGTH]
    return secrets.union(*({s.upper(), s.lower()} for s in long)) if long else secrets
