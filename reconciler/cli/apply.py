"""`reconciler apply`: make the hub match the manifests (or a saved plan).

A shell over :func:`reconciler.applyrun.run_apply`: it draws the plan, asks on a
terminal (or needs ``--yes``), writes progress to stderr, stops on Ctrl-C, and turns
the report into output (``--format json``: the report on stdout) and an exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

import click

from reconciler import asyncrun, gctune
from reconciler.applier.executor import ABANDONED
from reconciler.applyrun import ApplyHooks, ApplyRequest, ApplyRun, run_apply
from reconciler.cli import jsonout
from reconciler.cli.context import (
    format_option,
    hub_endpoint,
    override_policy_option,
    pass_options,
    plan_shape_options,
    project_option,
    scope_options,
)
from reconciler.errors import ApplyError, Interrupted, ReconcilerError, UsageError
from reconciler.model import ActionResult, ApplyReport, Plan
from reconciler.planner.scope import ScopeFlags
from reconciler.render.progress import format_bar, format_result, format_summary
from reconciler.runlock import DEFAULT_LOCK_TIMEOUT_S
from reconciler.settings import GlobalOptions

if TYPE_CHECKING:
    from reconciler.connect import Endpoint

__all__ = ["command", "lock_timeout_option", "parallelism_option", "run_and_render"]

# Shared with `watch --self-heal`, which applies the same way.
parallelism_option = click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Actions run at once inside a phase.",
)
lock_timeout_option = click.option(
    "--lock-timeout",
    type=click.FloatRange(0, 86400),
    default=DEFAULT_LOCK_TIMEOUT_S,
    show_default=True,
    metavar="SECONDS",
    help="Embedded hub: how long to wait for another apply on the same database.",
)


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _stdin_is_terminal() -> bool:
    # A seam for tests: CliRunner's stdin is never a terminal.
    return _is_terminal(sys.stdin)


class _ProgressWriter:
    """One line per finished action on stderr; on a terminal, a bar redrawn below them."""

    def __init__(self, total: int, stream: IO[str], *, bar: bool) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.bar = bar

    def __call__(self, result: ActionResult) -> None:
        self.done += 1
        line = format_result(result, self.done, self.total)
        if self.bar:
            self.stream.write(f"\r\x1b[K{line}\n{format_bar(self.done, self.total)}")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.bar:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


@contextlib.contextmanager
def _ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C or SIGTERM at the prompt aborts it at once: asyncio's own handler only
    cancels the task at its next await, and the prompt would wait for an answer, then
    apply. Python's own handler raises in the prompt instead; so does SIGTERM, when the
    command line handles it (``cli.main``), SIGINT ignored or not. A SIGINT ignored (a
    background job) stays so."""
    from reconciler.cli.main import sigterm_is_ours

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    restore: list[tuple[signal.Signals, Any]] = []
    if callable(signal.getsignal(signal.SIGINT)):
        restore.append((signal.SIGINT, signal.signal(signal.SIGINT, signal.default_int_handler)))
    if sigterm_is_ours():
        # Python's own Ctrl-C handler raises KeyboardInterrupt whatever the signal.
        restore.append((signal.SIGTERM, signal.signal(signal.SIGTERM, signal.default_int_handler)))
    try:
        yield
    finally:
        for signum, previous in restore:
            if previous is not None:
                signal.signal(signum, previous)


@contextlib.contextmanager
def _ctrl_c_stops(stop: asyncio.Event, task: asyncio.Task[Any] | None) -> Iterator[None]:
    """First Ctrl-C: start nothing new, let running requests finish. Second: cancel."""
    loop = asyncio.get_running_loop()

    def on_sigint() -> None:
        if stop.is_set():
            if task is not None:
                task.cancel()
            return
        stop.set()
        sys.stderr.write(
            "\nInterrupted: finishing running actions, starting no new one "
            "(interrupt again to abandon them)\n"
        )

    pressed: list[bool] = []

    def after() -> None:
        if pressed and task is not None:
            task.cancel()  # a second one while it closes: stop waiting
            return
        pressed.append(True)
        sys.stderr.write("\nInterrupted: the actions are done; finishing the report\n")

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
        yield
        return
    try:
        yield
    finally:
        # Until the loop closes, an interrupt must not lose the report: Python's own
        # handler, which removing this one would put back, raises wherever the run is.
        loop.add_signal_handler(signal.SIGINT, after)


class _Terminal(ApplyHooks):
    """The plan on stdout (stderr under ``--format json``, or when stdout carries other
    data: ``plan_to_stderr``), the rest on stderr."""

    def __init__(
        self, opts: GlobalOptions, *, fmt: str, yes: bool, plan_to_stderr: bool = False
    ) -> None:
        self.opts = opts
        self.fmt = fmt
        self.yes = yes
        self.plan_to_stderr = plan_to_stderr
        self.progress: _ProgressWriter | None = None

    def notice(self, message: str) -> None:
        click.echo(message, err=True)

    def show_plan(self, plan: Plan) -> None:
        from reconciler.render.text import render_plan_text

        stream = sys.stderr if self.fmt == "json" or self.plan_to_stderr else sys.stdout
        click.echo(render_plan_text(plan, color=self.opts.color(stream)), nl=False, file=stream)

    def confirm(self, plan: Plan) -> bool:
        if self.yes:
            return True
        if not _stdin_is_terminal():
            raise UsageError("no terminal to confirm on: pass --yes to apply without asking")
        n = len(plan.actions)
        question = "Apply this 1 action?" if n == 1 else f"Apply these {n} actions?"
        with _ctrl_c_raises():
            return click.confirm(question, err=True)

    @contextlib.contextmanager
    def executing(self, plan: Plan, stop: asyncio.Event) -> Iterator[None]:
        self.progress = _ProgressWriter(len(plan.actions), sys.stderr, bar=_is_terminal(sys.stderr))
        with _ctrl_c_stops(stop, asyncio.current_task()):
            try:
                yield
            finally:
                self.progress.close()

    def on_result(self, result: ActionResult) -> None:
        if self.progress is not None:
            self.progress(result)


def _render(run: ApplyRun, *, fmt: str, saved: bool) -> None:
    from reconciler.render.applynotes import apply_notes
    from reconciler.render.jsondoc import report_to_dict

    if run.status == "cancelled":
        click.echo("Apply cancelled; nothing changed.", err=True)
    elif run.status == "no-changes" and saved:
        click.echo("No changes in the saved plan.", err=True)
    if run.report is not None:
        lines = [format_summary(run.report, run.elapsed_s), *apply_notes(run.report, saved=saved)]
        click.echo("\n".join(lines), err=True)
    if fmt == "json":
        jsonout.emit(report_to_dict(run.report or ApplyReport(results=())))


def _raise_for(report: ApplyReport, *, saved: bool) -> None:
    from reconciler.render.applynotes import AGAIN_SAVED, next_step

    again = next_step(saved)
    if report.interrupted:
        if any(r.error == ABANDONED for r in report.results):
            raise Interrupted(
                "interrupted twice: running actions abandoned (what they did shows in the "
                f"next plan), actions not yet started skipped; {again}"
            )
        raise Interrupted(f"interrupted: actions not yet started were skipped; {again}")
    if report.unreachable:
        raise ReconcilerError(f"hub unreachable: actions not started; once it answers, {again}")
    if report.failed:
        error = ApplyError([f"{r.action.kind} {r.action.name}" for r in report.failed])
        if saved and len(report.failed) < len(report.results):
            error.add_note(AGAIN_SAVED)
        raise error
    if report.duplicates_error:
        raise ReconcilerError(f"duplicates not settled: {report.duplicates_error}")


def run_and_render(
    opts: GlobalOptions,
    request: ApplyRequest,
    *,
    fmt: str,
    yes: bool,
    plan_to_stderr: bool = False,
    endpoint: Endpoint | None = None,
    after: Callable[[ApplyRun], None] | None = None,
) -> None:
    """Run :func:`run_apply` with the terminal's hooks, render the outcome, raise for
    the exit code: the body of `apply`, and of `forget`, `import` and `export --adopt`,
    which apply a plan of their own the same way. ``endpoint``: when the command has
    resolved it already. ``after`` sees the run once it is rendered, before the exit
    code is raised (some actions may have failed)."""
    endpoint = endpoint if endpoint is not None else hub_endpoint(opts)
    hooks = _Terminal(opts, fmt=fmt, yes=yes, plan_to_stderr=plan_to_stderr)
    try:
        with gctune.bulk_allocation():
            run = asyncrun.run(run_apply(opts, request, hooks, endpoint=endpoint))
    except asyncio.CancelledError:  # a second Ctrl-C abandoned the running requests
        from reconciler.render.applynotes import next_step

        again = next_step(request.plan_file is not None)
        raise Interrupted(f"interrupted: running actions abandoned; {again}") from None
    _render(run, fmt=fmt, saved=request.plan_file is not None)
    if after is not None:
        after(run)
    if run.report is not None:
        _raise_for(run.report, saved=request.plan_file is not None)


@click.command("apply")
@click.argument("paths", nargs=-1, type=click.Path())
@project_option
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Apply a plan saved by `plan --out`: planned again, applied only if nothing "
    "differs (exit 4 otherwise); not asked, the saved plan was the one reviewed.",
)
@click.option(
    "--expect-checksum",
    metavar="SHA256",
    help="With --plan: apply the file only if its checksum is this one (what `plan --out` "
    "printed when the reviewed plan was saved): the file applied is the file reviewed.",
)
@click.option("--yes", "-y", is_flag=True, help="Apply without asking (needed without a terminal).")
@click.option("--force", is_flag=True, help="Lift overridable safety rules (not preventDestroy).")
@override_policy_option
@parallelism_option
@scope_options
@plan_shape_options
@lock_timeout_option
@format_option("text", "json", help="json: the apply report on stdout.")
@pass_options
def command(
    opts: GlobalOptions,
    paths: Sequence[str],
    project_name: str | None,
    plan_file: str | None,
    expect_checksum: str | None,
    yes: bool,
    force: bool,
    overrides: Sequence[str],
    parallelism: int,
    targets: Sequence[str],
    excludes: Sequence[str],
    selectors: Sequence[str],
    replace: Sequence[str],
    destroy: bool,
    lock_timeout: float,
    fmt: str,
) -> None:
    """Make the hub match the manifests: creates, then updates and resumes, then archives,
    then deletes, PARALLELISM at a time.

    Without --plan it plans, shows the plan and asks (--yes without a terminal). With
    --plan FILE, given the PATHs and flags the plan was made from, it checks them against
    what the file records (which cannot choose them alone: anyone who can edit it can
    make its checksum again), plans again from them against this hub and organisation,
    and applies only when that fresh plan would do exactly what the file says; it does
    not ask (the saved plan is the one reviewed, as Terraform's `apply PLANFILE`).
    --expect-checksum SHA256, what `plan --out` printed, ties it to the file reviewed
    (edited into what the hub became since, a file would still pass).

    Exit 0 when every action succeeded, 1 when some failed (the others carried on; the
    next apply finishes the work) or the hub was unreachable, 3 refused by a safety rule
    or a deny Policy (--override-policy NAME lifts an overridable one), 4 the saved plan
    is not what a fresh plan would do now (stale, already applied, edited, other
    manifests, another endpoint, organisation or project, or made from other PATHs or
    flags than this apply gives; nothing was applied), 64 usage
    error (an unknown --target, --exclude, --selector, --replace or --override-policy
    name, no --yes without a terminal, no hub configured), 65 invalid manifests, a
    Policy rule that does not compile, or an ${env:...} the actions need is unset, 130
    interrupted.
    """
    if expect_checksum is not None and plan_file is None:
        raise UsageError("--expect-checksum goes with --plan FILE: it names the file's checksum")
    from reconciler.planfile import parse_checksum

    if expect_checksum is not None and parse_checksum(expect_checksum) is None:
        raise UsageError(
            "--expect-checksum takes the checksum `plan --out` printed: sha256: and 64 hex "
            "digits (the file's `checksum` member; `sha256sum FILE` is another: the "
            "checksum covers the plan's content, not the file's bytes)"
        )
    endpoint = hub_endpoint(opts)
    request = ApplyRequest(
        paths=tuple(paths),
        project_name=project_name,
        plan_file=plan_file,
        expect_checksum=expect_checksum,
        force=force,
        parallelism=parallelism,
        lock_timeout_s=lock_timeout,
        scope=ScopeFlags(
            tuple(targets), tuple(excludes), tuple(selectors), tuple(replace), destroy
        ),
        overrides=tuple(overrides),
        invocation=opts.invocation(endpoint.options),
    )
    run_and_render(opts, request, fmt=fmt, yes=yes, endpoint=endpoint)
