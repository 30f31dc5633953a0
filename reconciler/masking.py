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


def mask_values(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of each non-empty secret replaced by ``(sensitive)``.

    Each secret is also masked in its JSON-escaped forms (a body echoed as raw text).
    Longer forms first, so that a secret holding another is masked whole.
    """
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            escaped = (json.dumps(secret, ensure_ascii=ascii)[1:-1] for ascii in (True, False))
            forms |= {secret, *escaped}
    for secret in sorted(forms, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, SENSITIVE)
    return text
