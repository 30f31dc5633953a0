"""Timestamps: stored as epoch milliseconds, shown as ISO-8601 UTC (or epoch ms for loops)."""

from __future__ import annotations

import time

__all__ = ["iso", "now_ms"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(ms: int) -> str:
    """``2024-05-01T12:00:00.123Z``: millisecond precision, always UTC."""
    # time.gmtime, not datetime: a list page formats two per session, at half the cost.
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
