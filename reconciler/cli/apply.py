"""`reconciler apply`: make the hub match the manifests (or a saved plan).

Without ``--plan`` it plans afresh, shows the plan, re-checks safety and asks (a
terminal) or needs ``--yes``. With ``--plan FILE`` it checks the file's checksum,
endpoint, org and project, re-lists and refuses the whole plan if any action is stale.
Progress goes to stderr; ``--format json`` writes the report to stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import click

from reconciler.applier import apply_plan, check_stale
from reconciler.applier.envresolve import resolve_bodies
from reconciler.applier.progress import format_bar, format_result, format_summary
from reconciler.cli.context import GlobalOptions, format_option, pass_options
from reconciler.errors import ApplyError, Interrupted, UsageError
from reconciler.model import ActionResult, ApplyReport, Plan, RemoteSession

if TYPE_CHECKING:  # imported when used: `reconciler --help` stays quick
    from reconciler.client.core import CoderClient
    from reconciler.manifest import LoadResult

__all__ = ["command"]


@dataclass(frozen=True)
class _Args:
    paths: tuple[str, ...]
    project_name: str | None
    plan_file: str | None
    yes: bool
    force: bool
    parallelism: int
    targets: tuple[str, ...]
    excludes: tuple[str, ...]
    fmt: str


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
            "(Ctrl-C again to abandon them)\n"
        )

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _check_plan_matches_run(plan: Plan, opts: GlobalOptions, args: _Args) -> None:
    from reconciler.client.endpoint import resolve_endpoint

    if args.paths or args.targets or args.excludes:
        raise UsageError("--plan applies a saved plan as it is: no PATH, --target or --exclude")
    if args.project_name and args.project_name != plan.project:
        raise UsageError(
            f"the saved plan is for project {plan.project!r}, not {args.project_name!r}"
        )
    endpoint = resolve_endpoint(opts)
    if plan.endpoint and plan.endpoint != endpoint.display:
        raise UsageError(f"the saved plan was made against {plan.endpoint}, not {endpoint.display}")
    # An org named for this run (--org, AGENTUITY_ORG_ID) must be the plan's, even when
    # the plan was made without one (the token's default org): a reviewed plan never
    # lands in another organisation. Without one here, the plan's org is used.
    if endpoint.org_id and endpoint.org_id != plan.org_id:
        made_for = f"org {plan.org_id}" if plan.org_id else "the token's default org"
        raise UsageError(f"the saved plan is for {made_for}, not org {endpoint.org_id}")


async def _saved_plan(opts: GlobalOptions, args: _Args) -> ApplyReport | None:
    from reconciler.client.endpoint import open_client
    from reconciler.planfile import read_plan
    from reconciler.planner import check_safety

    assert args.plan_file is not None
    plan = read_plan(args.plan_file)
    _check_plan_matches_run(plan, opts, args)
    resolve_bodies(plan.actions, opts.environ)  # an unset variable stops before any request
    check_safety(plan, force=args.force)
    if not plan.has_changes:
        click.echo("No changes in the saved plan.", err=True)
        return None
    async with open_client(opts, org_id=plan.org_id) as client:
        listed = await client.list_all_sessions(include_archived=True)
        check_stale(plan, [RemoteSession.from_api(item) for item in listed])
        return await _execute(plan, client, opts, args)


async def _fresh_plan(opts: GlobalOptions, args: _Args) -> ApplyReport | None:
    from reconciler.client.endpoint import open_client
    from reconciler.pipeline import load_checked

    paths = list(args.paths) or ["."]
    load = load_checked(
        opts, paths, targets=args.targets, excludes=args.excludes, project_name=args.project_name
    )
    # One client (one connection pool) for the listing and the writes after it.
    async with open_client(opts, org_id=load.project.org_id) as client:
        return await _plan_then_apply(opts, args, paths, load, client)


async def _plan_then_apply(
    opts: GlobalOptions, args: _Args, paths: list[str], load: LoadResult, client: CoderClient
) -> ApplyReport | None:
    from reconciler.pipeline import build_plan
    from reconciler.planner import check_safety
    from reconciler.render.text import render_plan_text

    context = await build_plan(
        opts, paths, targets=args.targets, excludes=args.excludes, client=client, load=load
    )
    for warning in context.load.warnings:
        click.echo(f"warning: {warning}", err=True)
    plan = context.plan
    plan_stream = sys.stderr if args.fmt == "json" else sys.stdout
    click.echo(render_plan_text(plan, color=opts.color(plan_stream)), nl=False, file=plan_stream)
    if not plan.has_changes:
        return None
    check_safety(plan, context.desired, force=args.force)
    resolve_bodies(plan.actions, opts.environ)  # before asking, and before any write
    if not args.yes:
        if not _stdin_is_terminal():
            raise UsageError("no terminal to confirm on: pass --yes to apply without asking")
        n = len(plan.actions)
        question = "Apply this 1 action?" if n == 1 else f"Apply these {n} actions?"
        if not click.confirm(question, err=True):
            click.echo("Apply cancelled; nothing changed.", err=True)
            return None
    return await _execute(plan, client, opts, args)


async def _execute(plan: Plan, client: Any, opts: GlobalOptions, args: _Args) -> ApplyReport:
    stop = asyncio.Event()
    progress = _ProgressWriter(len(plan.actions), sys.stderr, bar=_is_terminal(sys.stderr))
    started = time.monotonic()
    with _ctrl_c_stops(stop, asyncio.current_task()):
        try:
            report = await apply_plan(
                plan,
                client,
                environ=opts.environ,
                parallelism=args.parallelism,
                on_result=progress,
                stop_event=stop,
            )
        finally:
            progress.close()
    sys.stderr.write(format_summary(report, time.monotonic() - started) + "\n")
    return report


def _emit_json(report: ApplyReport | None) -> None:
    from reconciler.render.jsondoc import report_to_dict

    document = report_to_dict(report if report is not None else ApplyReport(results=()))
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@click.command("apply")
@click.argument("paths", nargs=-1, type=click.Path(), metavar="[PATH]...")
@click.option("--project", "project_name", help="Project name when no Project document.")
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Apply a plan saved by `plan --out` (refused if stale).",
)
@click.option("--yes", "-y", is_flag=True, help="Apply without asking (needed without a terminal).")
@click.option("--force", is_flag=True, help="Lift overridable safety rules (not preventDestroy).")
@click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Actions run at once inside a phase.",
)
@click.option("--target", "targets", multiple=True, metavar="NAME", help="Only these sessions.")
@click.option("--exclude", "excludes", multiple=True, metavar="NAME", help="Leave these alone.")
@format_option("text", "json", help="json: the apply report on stdout.")
@pass_options
def command(
    opts: GlobalOptions,
    paths: Sequence[str],
    project_name: str | None,
    plan_file: str | None,
    yes: bool,
    force: bool,
    parallelism: int,
    targets: Sequence[str],
    excludes: Sequence[str],
    fmt: str,
) -> None:
    """Make the hub match the manifests: creates, then updates and resumes, then archives,
    then deletes, PARALLELISM at a time.

    Exit 0 when every action succeeded, 1 when some failed (the others carried on; the
    next apply finishes the work), 3 refused by a safety rule, 4 saved plan stale,
    65 an ${env:...} the actions need is unset, 130 interrupted.
    """
    args = _Args(
        tuple(paths),
        project_name,
        plan_file,
        yes,
        force,
        parallelism,
        tuple(targets),
        tuple(excludes),
        fmt,
    )
    runner = _saved_plan if plan_file else _fresh_plan
    try:
        report = asyncio.run(runner(opts, args))
    except asyncio.CancelledError:  # a second Ctrl-C abandoned the running requests
        raise Interrupted("interrupted: running actions abandoned; apply again") from None
    if fmt == "json":
        _emit_json(report)
    if report is None:
        return
    if report.interrupted:
        raise Interrupted("interrupted: actions not yet started were skipped; apply again")
    if report.failed:
        raise ApplyError([f"{r.action.kind} {r.action.name}" for r in report.failed])
