"""When and how long to wait before repeating a request.

Only requests whose repetition cannot duplicate anything are retried: GET, PATCH,
archive, resume and DELETE. ``POST /hub/session`` (create) never is: a create whose
response was lost may have happened, and only the applier can settle that.
"""

from __future__ import annotations

import email.utils
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "is_retryable_exception", "parse_retry_after"]

RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and by total time.

    ``attempts`` counts every try (5: one request and up to four repeats). The wait
    before repeat *n* (1-based) is uniform in ``[0, min(max_delay, base_delay * 2**(n-1))]``
    (full jitter, so concurrent clients spread out), or exactly the server's
    ``Retry-After`` when it sent one. A repeat whose wait would end after
    ``total_seconds`` since the first try is not made; the last error is raised instead.
    ``jitter=False`` waits the full cap (deterministic, for tests).
    """

    attempts: int = 5
    total_seconds: float = 60.0
    base_delay: float = 0.5
    max_delay: float = 8.0
    statuses: frozenset[int] = field(default=RETRYABLE_STATUSES)
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if self.total_seconds < 0 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must be >= 0")

    def backoff(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before repeat ``retry_number`` (1 for the first repeat)."""
        if retry_after is not None:
            return max(0.0, retry_after)
        cap = min(self.max_delay, self.base_delay * 2 ** (retry_number - 1))
        return random.uniform(0, cap) if self.jitter else cap

    @classmethod
    def never(cls) -> RetryPolicy:
        """One try only."""
        return cls(attempts=1)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date.

    None when absent or unreadable (then the policy's own backoff applies).
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def is_retryable_exception(exc: httpx.HTTPError) -> bool:
    """Connection refused/reset, timeouts, a connection dropped before the response."""
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)
