"""When ``watch`` reconciles next: the ``--interval`` syntax and the backoff while the hub fails.

Pure: a string in, seconds out; a failure count (and a random source) in, seconds out.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

__all__ = [
    "DEFAULT_INTERVAL_S",
    "MAX_BACKOFF_S",
    "MIN_INTERVAL_S",
    "failure_delay",
    "parse_interval",
]

DEFAULT_INTERVAL_S = 300.0
MIN_INTERVAL_S = 1.0
# A hub that keeps failing is asked at most this rarely (unless the interval is longer).
MAX_BACKOFF_S = 900.0

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_INTERVAL_RE = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<unit>[smh]?)")


def parse_interval(text: str) -> float:
    """Seconds in ``30s``, ``5m``, ``1h`` or a plain number of seconds (``90``, ``2.5``).

    Raises ``ValueError`` (its message fit for a usage error) for anything else or for
    less than one second.
    """
    match = _INTERVAL_RE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not an interval: use 30s, 5m, 1h or a number of seconds")
    seconds = float(match["number"]) * _UNITS[match["unit"]]
    if seconds < MIN_INTERVAL_S:
        raise ValueError(f"{text!r} is shorter than the minimum of {MIN_INTERVAL_S:g} s")
    return seconds


def failure_delay(
    failures: int,
    *,
    interval_s: float,
    max_backoff_s: float = MAX_BACKOFF_S,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after ``failures`` (>= 1) reconciles in a row found the hub failing.

    The cap doubles from the interval with each failure, up to ``max_backoff_s`` (or the
    interval when that is longer); the wait is uniform in the upper half of the cap
    ("equal jitter"), so watchers of several projects do not return to a recovering hub
    all at once, and none comes back at once.
    """
    if failures < 1:
        raise ValueError("failures must be >= 1")
    ceiling = max(interval_s, max_backoff_s)
    # Capped before it is raised to a power, so a long outage cannot overflow it.
    cap = min(ceiling, interval_s * 2.0 ** min(failures - 1, 32))
    return cap / 2 + rand() * cap / 2
