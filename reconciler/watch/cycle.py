"""One reconcile of ``watch``: reload the manifests, plan, and (under ``--self-heal``) apply.

``reconcile_once`` never raises for what a long-running watcher must survive: invalid
manifests, an unset variable, a hub that fails, a plan refused by safety, the lock held
by an apply. Each is an outcome in the :class:`Reconcile` it returns; only a bug
escapes.

- Without ``self_heal`` it plans as ``reconciler plan`` does (read-only, no lock) and
  reports the drift; a plan that safety would refuse is reported as such.
- With it, it runs the apply workflow (:func:`reconciler.applyrun.run_apply`): the
  embedded hub's lock, every safety rule, never ``--force``, the settlement of
  duplicates. A refused plan is reported, never forced.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from reconciler.applyrun import ApplyHooks, ApplyRequest, run_apply
from reconciler.errors import (
    EXIT_INVALID,
    ApiError,
    LockedError,
    ReconcilerError,
    SafetyError,
    SafetyViolation,
)
from reconciler.model import ActionResult, ApplyReport, Plan
from reconciler.planner import safety_violations
from reconciler.runlock import DEFAULT_LOCK_TIMEOUT_S
from reconciler.status import StatusRow, status_rows, sync_counts

if TYPE_CHECKING:
    from reconciler.connect import Endpoint
    from reconciler.manifest.filecache import ManifestCache
    from reconciler.pipeline import PlanContext
    from reconciler.settings import GlobalOptions

__all__ = [
    "DEFAULT_HISTORY",
    "ERROR_KINDS",
    "RESULTS",
    "ErrorKind",
    "Reconcile",
    "ReconcileResult",
    "WatchRequest",
    "reconcile_once",
    "settled",
]

ReconcileResult = Literal["in-sync", "drift", "applied", "refused", "error"]
RESULTS: tuple[ReconcileResult, ...] = ("in-sync", "drift", "applied", "refused", "error")
log = logging.getLogger("reconciler.watch")
# hub: the API failed or could not be reached (the loop backs off); manifest: invalid
# files or an unset ${env:...}; locked: an apply held the embedded hub too long;
# actions: some applied actions failed; other: any other error of the tool's tree.
ErrorKind = Literal["hub", "manifest", "locked", "actions", "other"]
ERROR_KINDS: tuple[ErrorKind, ...] = ("hub", "manifest", "locked", "actions", "other")
# Reconciles the status page's history keeps (``watch --history``).
DEFAULT_HISTORY = 100


@dataclass(frozen=True)
class WatchRequest:
    """The flags of ``reconciler watch``."""

    paths: tuple[str, ...] = ()
    project_name: str | None = None
    interval_s: float = 300.0
    self_heal: bool = False
    parallelism: int = 8
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    notify: tuple[str, ...] = ()  # apprise URLs (reconciler.watch.notify)
    history: int = DEFAULT_HISTORY


@dataclass(frozen=True)
class Reconcile:
    """What one reconcile found and did."""

    result: ReconcileResult
    duration_s: float = 0.0
    project: str | None = None
    plan: Plan | None = None
    sync: Mapping[str, int] = field(default_factory=dict)  # status words -> sessions
    report: ApplyReport | None = None
    refusal: tuple[SafetyViolation, ...] = ()  # the safety rules the plan breaks
    error: str | None = None
    error_kind: ErrorKind | None = None
    # What the plan was made from and its status rows (the status page reads them).
    context: PlanContext | None = field(default=None, repr=False, compare=False)
    rows: tuple[StatusRow, ...] = field(default=(), repr=False, compare=False)

    @property
    def hub_failed(self) -> bool:
        return self.error_kind == "hub"


class _Observer(ApplyHooks):
    """The apply workflow's hooks for an unattended run: record, never ask."""

    def __init__(
        self,
        stop: asyncio.Event,
        notice: Callable[[str], None],
        on_result: Callable[[ActionResult], None],
        warning: Callable[[str], None],
        on_plan: Callable[[Plan], None],
    ) -> None:
        self.stop = stop
        self._notice = notice
        self._warning = warning
        self._on_result = on_result
        self._on_plan = on_plan
        self.context: PlanContext | None = None

    def notice(self, message: str) -> None:
        self._notice(message)

    def warning(self, message: str) -> None:
        self._warning(message)

    def planned(self, context: PlanContext) -> None:
        self.context = context
        self._on_plan(context.plan)  # before any action runs

    def confirm(self, plan: Plan) -> bool:
        return not self.stop.is_set()  # stopping: plan reported, nothing started

    @contextlib.contextmanager
    def executing(self, plan: Plan, stop: asyncio.Event) -> Iterator[None]:
        # The watcher's stop (SIGTERM, Ctrl-C) becomes apply's: running actions finish,
        # none starts.
        async def relay() -> None:
            await self.stop.wait()
            stop.set()

        task = asyncio.ensure_future(relay())
        try:
            yield
        finally:
            task.cancel()

    def on_result(self, result: ActionResult) -> None:
        self._on_result(result)


def _rows(context: PlanContext | None) -> tuple[StatusRow, ...]:
    if context is None:
        return ()
    project = context.project
    return status_rows(
        project.name, context.plan, context.desired, context.observed, formerly=project.previously
    )


def _kind_of(exc: ReconcilerError) -> ErrorKind:
    if isinstance(exc, ApiError):
        return "hub"
    if exc.exit_code == EXIT_INVALID:  # the manifests (or the variables they name)
        return "manifest"
    if isinstance(exc, LockedError):
        return "locked"
    return "other"


# A manifest file or folder changed this recently is taken to be mid-write (an editor,
# `git pull` writing one file after another: a declaration moved between two files is
# in neither for a moment, and a plan then would archive it): the reconcile waits until
# nothing changed for this long, at most SETTLE_WAIT_S.
SETTLE_S = 1.0
SETTLE_WAIT_S = 10.0


def _last_change_age(paths: Sequence[str], now: float) -> tuple[float, str] | None:
    """Seconds since the newest change of a manifest file or of a folder discovery
    searched under ``paths`` (a file removed changes its folder, which may hold no
    manifest any more), and which; a change's time is the later of the modification and
    the status change, so that a copy keeping its old time (`cp -p`, `rsync -a`, `tar
    x`) counts. Times in the future are left out. None when there is nothing to look at."""
    from reconciler.manifest.discover import discover

    folders: list[str] = []
    found, _errors = discover(list(paths), folders=folders)
    newest: tuple[float, str] | None = None
    for place in (*(m.path for m in found), *folders):
        try:
            info = os.stat(place)
        except OSError:
            continue  # gone meanwhile: its folder's time says so
        changed = max(info.st_mtime, info.st_ctime)
        if changed <= now and (newest is None or changed > newest[0]):
            newest = (changed, place)
    return None if newest is None else (now - newest[0], newest[1])


async def settled(
    paths: Sequence[str],
    stop: asyncio.Event,
    notice: Callable[[str], None] = lambda message: None,
    *,
    settle_s: float | None = None,
    wait_s: float = SETTLE_WAIT_S,
) -> None:
    """Return once no manifest file or folder under ``paths`` changed in the last
    ``settle_s`` seconds (:data:`SETTLE_S`, read at each call), or after ``wait_s``, or
    when ``stop`` is set (the caller then starts no reconcile)."""
    if settle_s is None:
        settle_s = SETTLE_S
    if settle_s <= 0:
        return
    deadline = time.monotonic() + wait_s
    told = False
    while not stop.is_set():
        found = _last_change_age(paths, time.time())
        left = deadline - time.monotonic()
        if found is None or found[0] >= settle_s or left <= 0:
            return
        if not told:
            notice(f"waiting for the manifests to settle ({found[1]} changed {found[0]:.1f} s ago)")
            told = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(settle_s - found[0], left))


async def reconcile_once(
    opts: GlobalOptions,
    request: WatchRequest,
    *,
    endpoint: Endpoint,
    stop: asyncio.Event,
    notice: Callable[[str], None] = lambda message: None,
    on_result: Callable[[ActionResult], None] = lambda result: None,
    warning: Callable[[str], None] | None = None,
    cache: ManifestCache | None = None,
    on_plan: Callable[[Plan], None] = lambda plan: None,
) -> Reconcile:
    """Reload, plan, and heal when asked (module doc). ``stop`` set: start nothing new.

    ``notice`` hears waits (the embedded hub's lock); ``warning`` the manifests'
    warnings, without a prefix (by default a notice ``warning: ...``); ``on_plan`` the
    plan once made, before any of its actions runs. ``cache`` is the watcher's: the
    manifest files that did not change since it read them are not read again."""
    started = time.monotonic()
    warn = warning if warning is not None else (lambda message: notice(f"warning: {message}"))
    observer = _Observer(stop, notice, on_result, warn, on_plan)
    found = await _reconcile(opts, endpoint, request, observer, cache)
    context = observer.context
    rows = _rows(context)
    return dataclasses.replace(
        found,
        duration_s=time.monotonic() - started,
        project=context.project.name if context else None,
        plan=context.plan if context else None,
        sync=sync_counts(rows) if context else {},
        context=context,
        rows=rows,
    )


async def _reconcile(
    opts: GlobalOptions,
    endpoint: Endpoint,
    request: WatchRequest,
    observer: _Observer,
    cache: ManifestCache | None,
) -> Reconcile:
    try:
        if not request.self_heal:
            from reconciler.pipeline import build_plan

            context = await build_plan(
                opts,
                request.paths,
                endpoint=endpoint,
                project_name=request.project_name,
                cache=cache,
            )
            for warning in (*map(str, context.load.warnings), *context.notes):
                observer.warning(warning)
            observer.planned(context)
            return _drift_only(context)
        apply_request = ApplyRequest(
            paths=request.paths,
            project_name=request.project_name,
            parallelism=request.parallelism,
            lock_timeout_s=request.lock_timeout_s,
        )
        run = await run_apply(opts, apply_request, observer, endpoint=endpoint, cache=cache)
    except SafetyError as exc:
        return Reconcile("refused", refusal=exc.violations)
    except ReconcilerError as exc:
        return Reconcile("error", error=str(exc), error_kind=_kind_of(exc))
    except Exception as exc:  # a bug: logged with its traceback; the watcher lives on
        log.exception("reconcile failed on an internal error (a bug in coder-reconciler)")
        message = f"internal error (a bug in coder-reconciler): {type(exc).__name__}: {exc}"
        return Reconcile("error", error=message, error_kind="other")
    if run.report is None:  # no changes, or stopping before any action started
        return Reconcile("in-sync" if run.status == "no-changes" else "drift")
    return _healed(run.report)


def _drift_only(context: PlanContext) -> Reconcile:
    # Checked first: a deny Policy refuses a plan without changes too.
    violations = safety_violations(context.plan, context.desired)
    if violations:
        return Reconcile("refused", refusal=tuple(violations))
    if not context.plan.has_changes:
        return Reconcile("in-sync")
    return Reconcile("drift")


def _healed(report: ApplyReport) -> Reconcile:
    if report.unreachable:
        return Reconcile("error", report=report, error="hub unreachable", error_kind="hub")
    if report.failed:
        failed = ", ".join(f"{r.action.kind} {r.action.name}" for r in report.failed)
        # A create the hub may still be making (its answer timed out): the hub is slower
        # than the client waits, so the watcher backs off as from a failing hub, and the
        # next reconcile does not send it again before the hub had time to make it.
        kind: ErrorKind = "hub" if any(r.in_doubt for r in report.failed) else "actions"
        return Reconcile("error", report=report, error=f"actions failed: {failed}", error_kind=kind)
    if report.duplicates_error:
        return Reconcile("error", report=report, error=report.duplicates_error, error_kind="hub")
    return Reconcile("applied", report=report)
