"""`reconciler export`: manifests from existing sessions, and `--adopt` to manage them.

A thin shell over ``reconciler.export``: options in, ``export_sessions`` and ``adopt``
called, their notes and progress written to stderr, an exit code out.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.apifacts import PROJECT_NAME, PROJECT_NAME_PATTERN
from reconciler.cli.context import pass_options
from reconciler.errors import ApplyError, UsageError
from reconciler.export import ExportOutcome, adopt, export_sessions, folder_project
from reconciler.model import ActionResult
from reconciler.render.progress import format_result, format_summary
from reconciler.settings import GlobalOptions

if TYPE_CHECKING:  # imported when used: `reconciler --help` stays quick
    from reconciler.client.core import CoderClient

_PROJECT_RE = re.compile(PROJECT_NAME_PATTERN)


__all__ = ["command"]


@click.command("export")
@click.option(
    "--project",
    "project",
    metavar="NAME",
    help="Project to export for (default: the Project document in --out DIR).",
)
@click.option("--search", metavar="S", help="Only sessions the hub's search matches.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="T",
    help="Only sessions carrying this tag (repeatable).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write one <name>.yaml per session (and project.yaml when DIR has no Project); "
    "default: print the documents to stdout.",
)
@click.option(
    "--adopt", is_flag=True, help="Then mark the exported sessions as managed by the project."
)
@click.option("--yes", "-y", is_flag=True, help="Adopt without asking (needed without a terminal).")
@pass_options
def command(
    opts: GlobalOptions,
    project: str | None,
    search: str | None,
    tags: tuple[str, ...],
    out_dir: Path | None,
    adopt: bool,
    yes: bool,
) -> int:
    """Write manifests for existing (non-archived) sessions.

    Each session's detail (GET /hub/session/{id}) becomes a Session manifest: task,
    label, agent, visibility, workflowMode, loop, tags, skills, repo(s), workspaceId
    and metadata; a session this tool created is written as it was declared
    (references, lifecycle, fields left out). env values are never written: each key
    becomes a ${env:KEY} reference. Sessions managed by another project, and sessions
    whose manifest would not validate, are skipped with a note. With --out, every file
    is checked before any is written, and files already there unchanged are left alone.

    --adopt then adds the marker tag reconciler:<project>/<name>@<hash> to each one
    (a plan of tag updates, applied like any plan), so that `reconciler plan` on the
    exported files creates and replaces nothing.
    """
    if project is None:
        project = folder_project(out_dir).name if out_dir is not None else None
        if project is None:
            raise UsageError(
                "--project NAME is needed (or --out DIR holding a Project document to name it)"
            )
    if not _PROJECT_RE.match(project):
        raise UsageError(f"--project {project!r} is not a valid name ({PROJECT_NAME})")
    if adopt and not yes and not sys.stdin.isatty():
        raise UsageError("--adopt without a terminal needs --yes")
    return asyncio.run(_run(opts, project, search, tags, out_dir, adopt, yes))


async def _run(
    opts: GlobalOptions,
    project: str,
    search: str | None,
    tags: tuple[str, ...],
    out_dir: Path | None,
    adopting: bool,
    yes: bool,
) -> int:
    from reconciler.connect import open_client

    async with open_client(opts) as client:
        outcome = await export_sessions(
            client,
            project=project,
            environ=opts.environ,
            search=search,
            tags=tags,
            out_dir=out_dir,
            org_id=opts.org,
        )
        _show(outcome)
        if adopting:
            await _adopt(client, opts, outcome, yes)
    return 0


def _show(outcome: ExportOutcome) -> None:
    for note in outcome.notes:
        click.echo(note, err=True)
    if outcome.stream is not None:
        click.echo(outcome.stream, nl=False)
    for path in outcome.written:
        click.echo(f"wrote {path}", err=True)
    if outcome.unchanged and not outcome.written:
        click.echo(f"unchanged: {len(outcome.unchanged)} file(s) already up to date", err=True)


async def _adopt(
    client: CoderClient, opts: GlobalOptions, outcome: ExportOutcome, yes: bool
) -> None:
    for exported in outcome.already_adopted:
        click.echo(f"{exported.name}: already adopted ({exported.session_id})", err=True)
    plan = outcome.adoption
    if not plan.has_changes:
        return
    click.echo(f"Adopt {len(plan.actions)} session(s) into project {plan.project}:", err=True)
    for action in plan.actions:
        click.echo(f"  {action.session_id} as {action.name} (tag {action.marker_tag})", err=True)
    if not yes and not click.confirm("Add these marker tags?", default=False, err=True):
        click.echo("Nothing adopted.", err=True)
        return
    done = 0

    def progress(result: ActionResult) -> None:
        nonlocal done
        done += 1
        click.echo(format_result(result, done, len(plan.actions)), err=True)

    started = time.monotonic()
    report = await adopt(client, plan, environ=opts.environ, on_result=progress)
    click.echo(format_summary(report, time.monotonic() - started), err=True)
    if report.failed:
        raise ApplyError([f"adopt {r.action.name}" for r in report.failed])
