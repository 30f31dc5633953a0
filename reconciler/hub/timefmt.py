"""Timestamps: stored as epoch milliseconds, shown as ISO-8601 UTC (or epoch ms for loops)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["iso", "now_ms"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(ms: int) -> str:
    """``2024-05-01T12:00:00.123Z``: millisecond precision, always UTC."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
