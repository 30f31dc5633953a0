"""The Prometheus metrics of ``watch``, through prometheus-client.

One :class:`WatchMetrics` per watcher, on a registry of its own (never the process-wide
default, so two in one process do not collide). Every label value a series can take is
created up front, so a query sees zeros rather than no series at all.

docs/how-to/watch.md has the table of metrics and labels; the label values
come from their single definitions (``cycle.RESULTS``, ``cycle.ERROR_KINDS``,
``status.SYNC_WORDS``, ``model.ActionKind``/``ActionOutcome``).
"""

from __future__ import annotations

from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from reconciler.model import ActionKind, ActionOutcome, ActionResult
from reconciler.status import SYNC_WORDS
from reconciler.watch.cycle import ERROR_KINDS, RESULTS, Reconcile

__all__ = ["WatchMetrics"]

# From a quick plan on the embedded hub to a slow apply of hundreds of sessions.
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class WatchMetrics:
    """The metrics of one watcher (module doc), updated from each :class:`Reconcile`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "reconciler_reconcile_runs", "Reconciles run, by result.", ["result"], registry=r
        )
        self.duration = Histogram(
            "reconciler_reconcile_duration_seconds",
            "How long one reconcile took (reload, plan and any apply).",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "reconciler_reconcile_errors",
            "Reconciles that ended in an error, by kind.",
            ["kind"],
            registry=r,
        )
        self.last_success = Gauge(
            "reconciler_last_successful_reconcile_timestamp_seconds",
            "Unix time of the end of the last reconcile that ended without an error.",
            registry=r,
        )
        self.sessions = Gauge(
            "reconciler_sessions",
            "The project's sessions by sync state, as the last plan found them.",
            ["project", "sync"],
            registry=r,
        )
        self.actions = Counter(
            "reconciler_actions",
            "Actions applied under --self-heal, by kind and outcome.",
            ["kind", "outcome"],
            registry=r,
        )
        for result in RESULTS:
            self.runs.labels(result=result)
        for kind in ERROR_KINDS:
            self.errors.labels(kind=kind)
        for action_kind in get_args(ActionKind):
            for outcome in get_args(ActionOutcome):
                self.actions.labels(kind=action_kind, outcome=outcome)

    def action_done(self, result: ActionResult) -> None:
        """One applied action (counted as it finishes, not at the end of the apply)."""
        self.actions.labels(kind=result.action.kind, outcome=result.outcome).inc()

    def record(self, reconcile: Reconcile, *, now: float) -> None:
        """Count a finished reconcile; ``now`` is the Unix time it ended."""
        self.runs.labels(result=reconcile.result).inc()
        self.duration.observe(reconcile.duration_s)
        if reconcile.error_kind is not None:
            self.errors.labels(kind=reconcile.error_kind).inc()
        else:
            self.last_success.set(now)
        if reconcile.project is not None and reconcile.sync:
            # A renamed Project leaves no stale series behind.
            self.sessions.clear()
            for word in SYNC_WORDS:
                count = reconcile.sync.get(word, 0)
                self.sessions.labels(project=reconcile.project, sync=word).set(count)
        if reconcile.report is not None:
            # Duplicates archived after the creates are actions too.
            for result in reconcile.report.duplicates:
                self.action_done(result)
