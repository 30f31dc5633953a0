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

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from reconciler.fields import SECRET_FIELDS

__all__ = [
    "CREDENTIAL_VARIABLES",
    "HUB_TOKENS_VARIABLE",
    "PLAIN_ENV_KEY",
    "SENSITIVE",
    "TOKEN_VARIABLES",
    "mask_body_env",
    "mask_values",
    "secret_values",
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
    """``body`` with every value under a secret field (``env``) replaced by ``(sensitive)``."""
    out = dict(body)
    for name in SECRET_FIELDS:
        values = out.get(name)
        if isinstance(values, Mapping):
            out[name] = {k: SENSITIVE for k in values}
    return out


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def secret_values(body: Any) -> list[str]:
    """The non-empty strings under a secret field (``env``) of a request body (any other
    body: none)."""
    if not isinstance(body, Mapping):
        return []
    return [text for name in SECRET_FIELDS for text in _strings(body.get(name)) if text]


# A secret cut short (a server truncating what it echoes): its prefix is masked from
# this many characters on, where the text ends or goes on with anything but a letter,
# digit, `_` or `-` (`...`, `…`, `"`, ` [truncated]`, `(+300 chars)`: how a cut is
# marked varies); text going on with a word's characters is another word sharing a
# beginning (`https://hooks.example.com/docs` beside a webhook's secret URL).
_PREFIX_FROM = 12  # shorter beginnings are often public (`sk_live_`, `postgres://`)
# How servers other than Python escape JSON: Go and JavaScript's HTML-safe forms.
_HTML_SAFE = {"&": "\\u0026", "<": "\\u003c", ">": "\\u003e"}


def _forms(secret: str) -> set[str]:
    """The ways ``secret`` may be written back: as it is, JSON-escaped (ASCII or not,
    with ``&<>`` in Go's and JavaScript's escapes, with ``/`` escaped), URL-encoded."""
    from urllib.parse import quote, quote_plus

    escaped = {json.dumps(secret, ensure_ascii=ascii)[1:-1] for ascii in (True, False)}
    html_safe = set()
    for form in escaped:
        for char, code in _HTML_SAFE.items():
            form = form.replace(char, code)
        html_safe.add(form)
    slashed = {form.replace("/", "\\/") for form in escaped | html_safe}
    encoded = {quote(secret, safe=""), quote(secret), quote_plus(secret)}
    return {secret} | escaped | html_safe | slashed | encoded


def _mask_cut(text: str, form: str) -> str:
    """``text`` with a prefix of ``form`` masked where the text ends with it or goes on
    with no word character (:data:`_PREFIX_FROM`). Linear in the text for each place
    the secret's first characters appear."""
    start = form[:_PREFIX_FROM]
    if len(form) <= _PREFIX_FROM or start not in text:
        return text
    pieces: list[str] = []
    done = 0
    at = text.find(start)
    while at != -1:
        length = _common_length(text, at, form)
        end = at + length
        if length < len(form) and (end == len(text) or not _continues_word(text[end])):
            pieces += [text[done:at], SENSITIVE]
            done = end
        at = text.find(start, max(end, at + 1))
    return "".join([*pieces, text[done:]])


def _continues_word(char: str) -> bool:
    return char.isalnum() or char in "_-"


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


def mask_values(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of each non-empty secret replaced by ``(sensitive)``.

    Each secret is also masked in the forms a server may echo it in (``_forms``: JSON
    escapes of Python, Go and JavaScript, escaped slashes, URL encoding), and a prefix
    of it where the text was cut short. Longer forms first, so that a secret holding
    another is masked whole.
    """
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= _forms(secret)
    ordered = sorted(forms, key=len, reverse=True)
    for secret in ordered:
        if secret in text:
            text = text.replace(secret, SENSITIVE)
    for secret in ordered:
        text = _mask_cut(text, secret)
    return text
