"""`reconciler watch`: reconcile every interval; report drift, or heal it with --self-heal.

A shell over :func:`reconciler.watch.run_watch`: it parses the flags, sets up the log
lines, and turns signals into the watcher's stop: SIGTERM finishes the running action
and exits 0; Ctrl-C does the same and exits 130, a second Ctrl-C abandons the running
requests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from reconciler import asyncrun
from reconciler.cli.apply import lock_timeout_option, parallelism_option
from reconciler.cli.context import hub_endpoint, pass_options, project_option
from reconciler.errors import Interrupted
from reconciler.settings import GlobalOptions
from reconciler.watch import LogFormat, WatchRequest, parse_interval, run_watch, watch_handler
from reconciler.watch.cycle import DEFAULT_HISTORY
from reconciler.watch.schedule import DEFAULT_INTERVAL_S

if TYPE_CHECKING:
    from reconciler.connect import Endpoint

__all__ = ["command"]


class _Interval(click.ParamType[float]):
    name = "INTERVAL"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_interval(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _log_to_stderr(fmt: LogFormat) -> None:
    # Every reconciler.* record in one format on stderr; the watcher's own at INFO.
    logger = logging.getLogger("reconciler")
    logger.handlers[:] = [watch_handler(fmt, sys.stderr)]
    logger.propagate = False
    logging.getLogger("reconciler.watch").setLevel(logging.INFO)


async def _watch(opts: GlobalOptions, endpoint: Endpoint, request: WatchRequest) -> list[str]:
    """Run the watcher; the signals that stopped it."""
    stop = asyncio.Event()
    received: list[str] = []
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    log = logging.getLogger("reconciler.watch")

    def on_signal(name: str) -> None:
        if name == "SIGINT" and "SIGINT" in received and task is not None:
            task.cancel()  # a second Ctrl-C: abandon the running requests
            return
        received.append(name)
        if not stop.is_set():
            # Between reconciles nothing is running: the words hold either way.
            log.info(
                f"{name}: stopping (a reconcile under way finishes its running actions first)",
                extra={"event": name},
            )
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum.name)
    try:
        await run_watch(opts, request, endpoint=endpoint, stop=stop)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return received


@click.command("watch")
@click.argument("paths", nargs=-1, type=click.Path(), metavar="[PATH]...")
@project_option
@click.option(
    "--interval",
    type=_Interval(),
    default=DEFAULT_INTERVAL_S,
    show_default="5m",
    help="Time between reconciles: 30s, 5m, 1h or seconds (at least 1 s).",
)
@click.option(
    "--self-heal",
    is_flag=True,
    help="Apply the plan when every safety rule passes (a refused plan is reported, never forced).",
)
@parallelism_option
@lock_timeout_option
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Serve the status page (/, /history, /status.json, /badge.svg), Prometheus "
    "/metrics and /healthz on this port.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    metavar="HOST",
    help="Address for --metrics-port (0.0.0.0 in a container).",
)
@click.option(
    "--notify",
    multiple=True,
    metavar="URL",
    envvar="RECONCILER_NOTIFY",
    help="Send an event when drift is found, healed, a heal or reconcile fails, a plan is "
    "refused, and on recovery: an apprise URL (slack://, msteams://, discord://, "
    "mailto://, json://...). Repeatable; RECONCILER_NOTIFY holds URLs separated by "
    "spaces, out of the process list. URLs are never logged.",
)
@click.option(
    "--history",
    type=click.IntRange(1, 100_000),
    default=DEFAULT_HISTORY,
    show_default=True,
    metavar="N",
    help="Reconciles the status page's history keeps (in memory).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr: text, or JSON lines.",
)
@pass_options
def command(
    opts: GlobalOptions,
    paths: Sequence[str],
    project_name: str | None,
    interval: float,
    self_heal: bool,
    parallelism: int,
    lock_timeout: float,
    metrics_port: int | None,
    metrics_host: str,
    notify: Sequence[str],
    history: int,
    log_format: LogFormat,
) -> None:
    """Reconcile the manifests under PATH (default .) every --interval, until stopped.

    Each reconcile reloads the manifests and plans. Without --self-heal it only reports
    drift; with it, it applies plans that pass every safety rule, holding the embedded
    hub's lock as apply does. Invalid manifests and a failing hub are logged and tried
    again (backing off while the hub fails). SIGTERM finishes the running action and
    exits 0; Ctrl-C exits 130 (a second one abandons running requests). The log names
    the endpoint, then the project and organisation of the first plan (again when they
    change). No hub configured: exit 64 before anything starts.
    """
    # A new embedded database is announced in the log, as one of its records (in the
    # JSON format too), when the first reconcile opens it.
    endpoint = dataclasses.replace(
        hub_endpoint(opts), announce=logging.getLogger("reconciler.watch").info
    )
    _log_to_stderr(log_format)
    request = WatchRequest(
        paths=tuple(paths),
        project_name=project_name,
        interval_s=interval,
        self_heal=self_heal,
        parallelism=parallelism,
        lock_timeout_s=lock_timeout,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        notify=tuple(notify),
        history=history,
    )
    try:
        received = asyncrun.run(_watch(opts, endpoint, request))
    except asyncio.CancelledError:
        raise Interrupted("interrupted: running requests abandoned") from None
    if "SIGINT" in received:
        raise Interrupted("interrupted")
