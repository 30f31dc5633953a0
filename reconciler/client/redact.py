"""Keep the run's secrets out of every message the client produces.

The token travels only in the ``Authorization`` header and ``env`` values only in
request bodies, but text from elsewhere (an httpx exception, a server's error body
echoing a request) is scrubbed anyway, with ``masking.mask_values``, before it becomes
part of an exception or a log line.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.masking import mask_values

__all__ = ["MASK", "redact", "redact_secret"]

MASK = "***"  # a secret's place in a repr
_MAX_TEXT = 300


def redact(text: str, secrets: Iterable[str | None], *, limit: int = _MAX_TEXT) -> str:
    """``text`` with every secret masked (``(sensitive)``), cut to ``limit``."""
    text = mask_values(text, secrets)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def redact_secret(secret: str | None) -> str:
    """How a secret appears in a repr: whether it is set, never any of it."""
    return MASK if secret else "None"
