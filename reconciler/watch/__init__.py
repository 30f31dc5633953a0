"""Continuous reconciliation: ``reconciler watch``.

- :mod:`~reconciler.watch.schedule`: the ``--interval`` syntax; backoff while the hub fails.
- :mod:`~reconciler.watch.cycle`: one reconcile (reload, plan, heal) -> :class:`Reconcile`.
- :mod:`~reconciler.watch.metrics`: the Prometheus metrics (prometheus-client).
- :mod:`~reconciler.watch.server`: ``/metrics`` and ``/healthz``.
- :mod:`~reconciler.watch.logs`: text or JSON log lines.
- :mod:`~reconciler.watch.loop`: :func:`run_watch`, the loop.
"""

from __future__ import annotations

from reconciler.watch.cycle import Reconcile, WatchRequest, reconcile_once
from reconciler.watch.logs import LogFormat, watch_handler
from reconciler.watch.loop import WatchSummary, run_watch
from reconciler.watch.metrics import WatchMetrics
from reconciler.watch.schedule import failure_delay, parse_interval

__all__ = [
    "LogFormat",
    "Reconcile",
    "WatchMetrics",
    "WatchRequest",
    "WatchSummary",
    "failure_delay",
    "parse_interval",
    "reconcile_once",
    "run_watch",
    "watch_handler",
]
