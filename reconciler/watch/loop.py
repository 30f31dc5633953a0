"""``reconciler watch``: reconcile every interval until told to stop.

One reconcile at a time, by construction (a single loop; self-healing applies also hold
the embedded hub's lock, as ``apply`` does). Between reconciles it sleeps on ``stop``,
so SIGTERM or Ctrl-C ends the wait at once. While the hub fails the wait grows
(:func:`~reconciler.watch.schedule.failure_delay`); the first reconcile that reaches the
hub again returns to the interval.

Everything it does is logged on the ``reconciler.watch`` logger, one record per
reconcile and per applied action (naming the session, the fields and any new session
id), the facts also as ``extra`` fields (``event``, ``result``, ``project``...) for a
JSON formatter (:mod:`reconciler.watch.logs`). The manifests' warnings are logged at
WARNING, each once until it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler import gctune
from reconciler.manifest.filecache import ManifestCache
from reconciler.model import ActionResult, Plan
from reconciler.render.findings import finding_line
from reconciler.render.text import header_line
from reconciler.watch.board import Board
from reconciler.watch.cycle import Reconcile, WatchRequest, reconcile_once, settled
from reconciler.watch.metrics import WatchMetrics
from reconciler.watch.schedule import failure_delay

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from reconciler.connect import Endpoint
    from reconciler.settings import GlobalOptions
    from reconciler.watch.notify import Notifier

__all__ = ["WatchSummary", "describe", "heal_line", "run_watch"]

log = logging.getLogger("reconciler.watch")

# Each reconcile allocates as a plan does, and runs under plan's GC thresholds
# (``gctune.bulk_allocation``): under the default ones, full collections traversing
# every long-lived object (the manifests kept between reconciles, the last plan) cost a
# quarter of the CPU of a steady reconcile of 10,000 sessions (bench_watch_steady.py,
# same load: 0.90 s under the defaults, 0.67 s so). What the raised thresholds leave to
# a full collection (the cycles a reconcile leaves, some hundreds of objects) is
# collected between reconciles: one full collection every this many.
FULL_COLLECTION_EVERY = 10


@dataclass(frozen=True)
class WatchSummary:
    """How the watch ended."""

    reconciles: int
    last: Reconcile | None = None


@dataclass
class _Health:
    reconciles: int = 0
    hub_failures: int = 0  # in a row
    last_success: float | None = None
    last_result: str | None = None

    def update(self, reconcile: Reconcile, now: float) -> None:
        self.reconciles += 1
        self.last_result = reconcile.result
        self.hub_failures = self.hub_failures + 1 if reconcile.hub_failed else 0
        if reconcile.error_kind is None:
            self.last_success = now

    def as_dict(self) -> Mapping[str, Any]:
        return {
            "reconciles": self.reconciles,
            "lastResult": self.last_result,
            "lastSuccessfulReconcile": self.last_success,
            "hubFailuresInARow": self.hub_failures,
        }


def describe(reconcile: Reconcile) -> str:
    """One line on what a reconcile found and did (no secret: names, counts, errors)."""
    plan = reconcile.plan
    changes = plan.summary().removeprefix("Plan: ") if plan is not None else ""
    if reconcile.result == "in-sync":
        return "in sync"
    if reconcile.result == "drift":
        # Out of sync, whichever side changed: the manifests (pending) or the hub (drift).
        return f"out of sync: {changes} Not applied (watch without --self-heal)."
    if reconcile.result == "refused":
        rules = "; ".join(
            f"{v.rule}: {v.message}: {', '.join(v.sessions)}" for v in reconcile.refusal
        )
        # A deny over the declarations refuses a plan with nothing to change, too.
        changed = plan is not None and plan.has_changes
        found = f"out of sync: {changes}" if changed else "no changes."
        return f"{found} Refused (safety rules and policies), never forced: {rules}"
    if reconcile.result == "applied":
        assert reconcile.report is not None
        results = reconcile.report.results
        ok = sum(1 for r in results if r.outcome in ("succeeded", "adopted", "noop"))
        stopped = " (stopping: the rest not started)" if reconcile.report.interrupted else ""
        return f"applied {ok} of {len(results)} action(s){stopped}"
    return f"error ({reconcile.error_kind}): {reconcile.error}"


def heal_line(result: ActionResult) -> str:
    """One applied action: the session (name and id), the fields it changed, how it
    ended, and the new session's id when one was made (a create or a replacement).

    A replacement's fields are those its ``planner.replacement.Replacement`` named (nested
    paths, secrets by key); when it could name none, the plan's reason says why."""
    action = result.action
    message = f"{action.kind} {action.name}"
    if action.session_id:
        message += f" [{action.session_id}]"
    fields = ", ".join(c.field for c in action.changes)
    if not fields and action.kind == "replace":
        fields = action.reason
    if fields:
        message += f" ({fields})"
    message += f": {result.outcome}"
    if result.session_id and result.session_id != action.session_id:
        message += f", new session {result.session_id}"
    if result.error:
        message += f": {result.error}"
    return message


def _log_action(result: ActionResult) -> None:
    action = result.action
    level = logging.WARNING if result.outcome == "failed" else logging.INFO
    made = result.session_id if result.session_id != action.session_id else None
    log.log(
        level,
        heal_line(result),
        extra={
            "event": "action",
            "kind": action.kind,
            "session": action.name,
            "outcome": result.outcome,
            "session_id": result.session_id,
            "fields": [c.field for c in action.changes],
            "new_session_id": made,
            "error": result.error,
        },
    )


def _log_header(plan: Plan, logged: str | None) -> str | None:
    """Log the plan's header (project, organisation, endpoint) when it is new, before
    the plan's actions; return the header logged last."""
    line = header_line(plan.project, plan.org_id, plan.endpoint)
    if line != logged:
        log.info(
            line,
            extra={
                "event": "header",
                "project": plan.project,
                "org": plan.org_id,
                "endpoint": plan.endpoint,
            },
        )
    return line


class _Warnings:
    """The manifests' warnings at WARNING, each distinct one once until it changes: one
    still there at the next reconcile is not logged again; one that went away and
    comes back is (a watcher would otherwise repeat them all every interval)."""

    def __init__(self) -> None:
        self._standing: set[str] = set()  # the last reconcile's
        self._now: set[str] = set()

    def __call__(self, message: str) -> None:
        if message in self._now:
            return
        self._now.add(message)
        if message not in self._standing:
            # The level says it is one (the other lines carry no "error:" either).
            log.warning(message, extra={"event": "warning"})

    def reconciled(self, *, planned: bool) -> None:
        """A reconcile ended; ``planned``: it got as far as a plan, where the warnings
        are told (one that failed before, the hub down, say, leaves them standing)."""
        if planned:
            self._standing = self._now
        else:
            self._standing |= self._now
        self._now = set()


def _log_reconcile(number: int, reconcile: Reconcile, next_in_s: float | None) -> None:
    level = {"error": logging.ERROR, "refused": logging.WARNING, "drift": logging.WARNING}
    message = f"reconcile {number}: {describe(reconcile)}"
    if next_in_s is not None:
        message = f"{message.rstrip('.')}; next in {next_in_s:.1f} s"
    log.log(
        level.get(reconcile.result, logging.INFO),
        message,
        extra={
            "event": "reconcile",
            "reconcile": number,
            "result": reconcile.result,
            "project": reconcile.project,
            "duration_s": round(reconcile.duration_s, 3),
            "sync": dict(reconcile.sync),
            "changes": len(reconcile.plan.actions) if reconcile.plan is not None else None,
            "error_kind": reconcile.error_kind,
            "next_in_s": None if next_in_s is None else round(next_in_s, 3),
        },
    )


def _notifier(urls: Sequence[str]) -> Notifier | None:
    """The ``--notify`` targets; None without any (apprise is then never imported)."""
    if not urls:
        return None
    from reconciler.watch.notify import Notifier

    return Notifier(urls)


def _page_routes(board: Board, request: WatchRequest, endpoint: Endpoint) -> list[BaseRoute]:
    """The status pages, served beside /metrics and /healthz (which match first)."""
    from reconciler.watch.pages import page_routes

    hub_url = endpoint.base_url + endpoint.hub_prefix if endpoint.kind == "remote" else None
    refresh_s = int(min(60.0, max(5.0, request.interval_s)))
    return list(page_routes(board, refresh_s=refresh_s, hub_url=hub_url))


# After a create the hub may still be making (its answer timed out), the next reconcile
# waits this many times the client's wait for an answer, so that the hub's list shows
# the session before a plan would create it again (a hub slower still can make a twin,
# live until a later reconcile's plan archives it, the oldest kept).
IN_DOUBT_WAITS = 2


def _answer_wait(opts: GlobalOptions) -> float:
    from reconciler.client import Timeouts

    return opts.timeout if opts.timeout is not None else Timeouts.read


async def _sleep(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def run_watch(
    opts: GlobalOptions,
    request: WatchRequest,
    *,
    endpoint: Endpoint,
    stop: asyncio.Event,
    metrics: WatchMetrics | None = None,
    clock: Callable[[], float] = time.time,
    rand: Callable[[], float] = random.random,
) -> WatchSummary:
    """Reconcile ``request.paths`` on ``endpoint`` every ``request.interval_s`` until
    ``stop`` is set.

    A reconcile running when ``stop`` is set finishes its running actions and starts no
    new one. Raises only for what no later reconcile can mend: a usage error (the
    metrics port), or a bug.
    """
    metrics = metrics if metrics is not None else WatchMetrics()
    notifier = _notifier(request.notify)
    # Kept only for a reader: the page (served with the metrics) or the notifications.
    board = Board(history_size=request.history)
    keep_board = request.metrics_port is not None or notifier is not None
    health = _Health()
    number = 0
    last: Reconcile | None = None
    header: str | None = None
    async with contextlib.AsyncExitStack() as stack:
        if request.metrics_port is not None:
            # Starlette and uvicorn load only for a watcher that serves.
            from reconciler.watch.server import metrics_app, serving_metrics

            app = metrics_app(
                metrics.registry, health.as_dict, routes=_page_routes(board, request, endpoint)
            )
            host = request.metrics_host
            port = await stack.enter_async_context(
                serving_metrics(app, host=host, port=request.metrics_port)
            )
            shown = f"[{host}]" if ":" in host else host  # an IPv6 address in brackets
            log.info(
                f"metrics on http://{shown}:{port}/metrics",
                extra={"event": "listening", "host": host, "port": port},
            )
            log.info(f"status page on http://{shown}:{port}/", extra={"event": "page"})
        mode = "healing" if request.self_heal else "reporting"
        log.info(
            f"watching {', '.join(request.paths) or '.'} on {endpoint.display} every "
            f"{request.interval_s:g} s, {mode} drift",
            extra={
                "event": "start",
                "interval_s": request.interval_s,
                "self_heal": request.self_heal,
            },
        )

        def on_result(result: ActionResult) -> None:
            metrics.action_done(result)
            _log_action(result)

        def on_plan(plan: Plan) -> None:
            nonlocal header
            header = _log_header(plan, header)
            # A warn Policy's findings, said as the manifests' warnings are (each once
            # until it changes); a deny's are the refusal's.
            for finding in plan.findings:
                if finding.action == "warn":
                    warnings(f"policy: {finding_line(finding)}")

        warnings = _Warnings()
        cache = ManifestCache()  # the files that did not change are not read again
        while not stop.is_set():
            # Manifests being written (git pull) are waited for; a stop meanwhile ends
            # the watcher without a reconcile of the half-written files.
            await settled(request.paths, stop, lambda m: log.info(m, extra={"event": "notice"}))
            if stop.is_set():
                break
            number += 1
            with gctune.bulk_allocation():
                last = await reconcile_once(
                    opts,
                    request,
                    endpoint=endpoint,
                    stop=stop,
                    notice=lambda message: log.info(message, extra={"event": "notice"}),
                    on_result=on_result,
                    warning=warnings,
                    cache=cache,
                    on_plan=on_plan,
                )
            if number % FULL_COLLECTION_EVERY == 0:
                gc.collect()
            warnings.reconciled(planned=last.context is not None or last.error_kind is None)
            metrics.record(last, now=clock())
            health.update(last, clock())
            if keep_board:
                update = board.record(last, number=number, now=clock())
                if notifier is not None:
                    from reconciler.watch.events import events

                    await notifier.send(events(update))
            delay: float | None = None
            if not stop.is_set():
                delay = request.interval_s
                if last.hub_failed:
                    delay = failure_delay(
                        health.hub_failures, interval_s=request.interval_s, rand=rand
                    )
                if last.report is not None and any(r.in_doubt for r in last.report.failed):
                    # Twice the wait that ran out before the next look at the hub's list.
                    delay = max(delay, IN_DOUBT_WAITS * _answer_wait(opts))
            _log_reconcile(number, last, delay)
            if delay is not None:
                await _sleep(delay, stop)
        log.info("stopped", extra={"event": "stop", "reconciles": number})
    return WatchSummary(number, last)
