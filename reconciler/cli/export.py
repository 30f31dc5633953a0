"""`reconciler export`: manifests from existing sessions, and `--adopt` to manage them.

A thin shell over ``reconciler.export``: options in, ``export_sessions`` called and its
notes written to stderr; with ``--adopt`` the export runs inside the apply workflow
(``run_apply`` with a ``plan_source``), as ``import`` and ``forget`` do.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler import asyncrun
from reconciler.apifacts import PROJECT_NAME_PATTERN, PROJECT_NAME_RULE
from reconciler.applyrun import ApplyRequest, ApplyRun
from reconciler.cli.apply import lock_timeout_option, run_and_render
from reconciler.cli.context import hub_endpoint, pass_options
from reconciler.errors import UsageError
from reconciler.export import (
    ExportFolder,
    ExportOutcome,
    export_sessions,
    folder_project,
    read_export_folder,
    spend_adopt_lines,
)
from reconciler.model import Plan
from reconciler.settings import GlobalOptions

if TYPE_CHECKING:  # imported when used: `reconciler --help` stays quick
    from reconciler.client.core import CoderClient
    from reconciler.connect import Endpoint

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
    help="Only sessions carrying this tag (repeatable: sessions carrying every one given).",
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
    "--unmanaged-only",
    is_flag=True,
    help="Only sessions no project manages (no marker tag): the ones still to adopt.",
)
@click.option(
    "--adopt", is_flag=True, help="Then mark the exported sessions as managed by the project."
)
@click.option("--yes", "-y", is_flag=True, help="Adopt without asking (needed without a terminal).")
@lock_timeout_option
@pass_options
def command(
    opts: GlobalOptions,
    project: str | None,
    search: str | None,
    tags: tuple[str, ...],
    out_dir: Path | None,
    unmanaged_only: bool,
    adopt: bool,
    yes: bool,
    lock_timeout: float,
) -> int:
    """Write manifests for existing (non-archived) sessions.

    Each session's detail (GET /hub/session/{id}) becomes a Session manifest: task,
    label, agent, visibility, workflowMode, loop, tags, skills, repo(s), workspaceId
    and metadata; a session this tool created is written as it was declared
    (references, lifecycle, fields left out). env values are never written: each key
    becomes a ${env:KEY} reference. Sessions managed by another project, and sessions
    whose manifest would not validate, are skipped with a note. A session the project
    does not manage yet is written with `adopt: ID`, so the next apply adopts it
    instead of creating a copy (with --adopt too: should the adoption be declined or
    fail, the files still adopt; each file of a session it adopts is then rewritten
    without the spent line). With --out, every file
    is checked before any is written; a name a file of DIR declares already is left to
    it. Exporting again into DIR adds new sessions and
    updates the files it wrote whose session changed (the session-id comment too); files
    already up to date are left alone, and so is a file someone edited since export
    wrote it (its export-digest line no longer matches): it is theirs, and a note says so.

    --adopt then adds the marker tag reconciler:<project>/<name>@<hash> to each one
    (a plan of tag updates, applied as `apply` applies a plan: the embedded hub's lock,
    the plan shown and confirmed, refused if a session changed meanwhile, duplicates
    settled), so that `reconciler plan` on the exported files creates and replaces
    nothing. A session it finds paused is written with lifecycle.ignoreChanges:
    [status], so it stays paused.
    """
    endpoint = hub_endpoint(opts)
    if project is None:
        project = folder_project(out_dir).name if out_dir is not None else None
        if project is None:
            raise UsageError(
                "--project NAME is needed (or --out DIR holding a Project document to name it)"
            )
    if not _PROJECT_RE.fullmatch(project):
        raise UsageError(
            f"--project {project!r} is not a valid project name: use {PROJECT_NAME_RULE}"
        )
    if adopt and not yes and not sys.stdin.isatty():
        raise UsageError("--adopt without a terminal needs --yes")
    # The folder is read and checked before a client is opened: an invalid one costs
    # no connection, no lock and (the embedded hub) no database.
    read = read_export_folder(out_dir, opts.environ, project)
    exporting = _Export(opts, project, search, tags, out_dir, unmanaged_only, read)
    if not adopt:
        asyncrun.run(_export_only(endpoint, exporting))
        return 0
    # Adoption is an apply: the run's lock from before the listing, the plan shown and
    # confirmed, re-checked against a fresh listing, duplicates of the markers settled.
    request = ApplyRequest(plan_source=exporting.adoption, lock_timeout_s=lock_timeout)
    run_and_render(
        opts,
        request,
        fmt="text",
        yes=yes,
        plan_to_stderr=True,
        endpoint=endpoint,
        after=exporting.spend,
    )
    return 0


@dataclass
class _Export:
    opts: GlobalOptions
    project: str
    search: str | None
    tags: tuple[str, ...]
    out_dir: Path | None
    unmanaged_only: bool
    read: ExportFolder
    # What the export did (set by ``run``): the files whose `adopt:` line a successful
    # adoption spends.
    outcome: ExportOutcome | None = None

    async def run(self, client: CoderClient) -> ExportOutcome:
        outcome = await export_sessions(
            client,
            project=self.project,
            environ=self.opts.environ,
            search=self.search,
            tags=self.tags,
            out_dir=self.out_dir,
            org_id=self.opts.org,
            unmanaged_only=self.unmanaged_only,
            read=self.read,
        )
        _show(outcome)
        self.outcome = outcome
        return outcome

    def spend(self, run: ApplyRun) -> None:
        """Drop the ``adopt:`` line of each session the run adopted (those that failed
        keep theirs: the next apply adopts them)."""
        if run.report is None or self.outcome is None:
            return
        adopted = {r.session_id for r in run.report.results if r.outcome == "succeeded"}
        rewritten, problems = spend_adopt_lines(self.outcome, {i for i in adopted if i})
        for path in rewritten:
            click.echo(f"updated {path}: adopted, its adopt: line dropped", err=True)
        for problem in problems:
            click.echo(f"warning: {problem}", err=True)

    async def adoption(self, client: CoderClient) -> Plan:
        """Export, then the plan that adopts what was exported (``PlanSource``)."""
        outcome = await self.run(client)
        for exported in outcome.already_adopted:
            click.echo(f"{exported.name}: already adopted ({exported.session_id})", err=True)
        return outcome.adoption


async def _export_only(endpoint: Endpoint, exporting: _Export) -> None:
    from reconciler.connect import open_client

    async with open_client(endpoint) as client:
        await exporting.run(client)


def _show(outcome: ExportOutcome) -> None:
    for note in outcome.notes:
        click.echo(note, err=True)
    if outcome.stream is not None:
        click.echo(outcome.stream, nl=False)
    for path in outcome.written:
        click.echo(f"wrote {path}", err=True)
    for path in outcome.updated:
        click.echo(f"updated {path}", err=True)
    if outcome.unchanged and not outcome.written and not outcome.updated:
        click.echo(f"unchanged: {len(outcome.unchanged)} file(s) already up to date", err=True)
