"""`reconciler status`: the project's managed sessions and whether each is in sync."""

from __future__ import annotations

from collections.abc import Sequence

import click

from reconciler import asyncrun, gctune
from reconciler.cli import jsonout
from reconciler.cli.context import (
    format_option,
    hub_endpoint,
    pass_options,
    project_option,
    scope_options,
)
from reconciler.cli.table import Column, render_table
from reconciler.model import CREATE_ONLY_DIFFERS
from reconciler.render.findings import refused_adoption_line
from reconciler.render.text import header_line
from reconciler.settings import GlobalOptions
from reconciler.status import StatusRow, status_rows, status_to_dict, sync_counts

__all__ = ["command", "render_status_text"]


@click.command("status")
@click.argument("paths", nargs=-1, type=click.Path())
@project_option
@scope_options
@format_option("text", "json", help="Output format.")
@pass_options
def command(
    opts: GlobalOptions,
    paths: tuple[str, ...],
    project_name: str | None,
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    selectors: tuple[str, ...],
    fmt: str,
) -> int:
    """Show the managed sessions of the project: status, loop, last activity, sync.

    SYNC is one of: in-sync; pending (the manifests changed since the last apply);
    drifted (the hub changed since: an edited field, a paused session); differs (an
    update, and no last-applied record says which side changed); replace (create-only
    fields differ); missing (declared, absent; one with adopt: is pending); orphan (managed,
    no longer declared, or a duplicate). A session declared `state: archived` is
    in-sync when it is absent or archived; one declared `state: forgotten`, once no
    session is managed as it. Read-only: safety rules do not apply, and
    the exit code is 0 whatever it shows (64 for an unknown --target, --exclude or
    --selector, or no hub configured; 65 for invalid manifests). The first line names
    the project, organisation and endpoint.
    """
    from reconciler.pipeline import build_plan
    from reconciler.planner.scope import ScopeFlags

    endpoint = hub_endpoint(opts)
    # build_plan never applies the safety rules: status only reads.
    with gctune.bulk_allocation():
        ctx = asyncrun.run(
            build_plan(
                opts,
                list(paths),
                endpoint=endpoint,
                project_name=project_name,
                flags=ScopeFlags(targets, excludes, selectors),
            )
        )
    for note in ctx.notes:
        click.echo(f"warning: {note}", err=True)
    for refused in ctx.plan.refused_adoptions:  # pending, and apply would refuse it
        line = refused_adoption_line(refused)
        click.echo(f"warning: apply refuses to adopt {line} ({CREATE_ONLY_DIFFERS})", err=True)
    rows = status_rows(
        ctx.project.name,
        ctx.plan,
        ctx.desired,
        ctx.observed,
        scope=ctx.scope,
        formerly=ctx.project.previously,
    )
    if fmt == "json":
        doc = status_to_dict(
            ctx.project.name, rows, endpoint=ctx.plan.endpoint, org=ctx.plan.org_id
        )
        jsonout.emit(doc)
    else:
        plan = ctx.plan
        click.echo(header_line(plan.project, plan.org_id, plan.endpoint) + "\n")
        click.echo(render_status_text(rows), nl=False)
    return 0


_COLUMNS: tuple[Column, ...] = (
    ("NAME", "name"),
    ("SESSION", "sessionId"),
    ("STATUS", "status"),
    ("LOOP", "loopStatus"),
    ("ITERATION", "loopIteration"),
    ("LAST ACTIVITY", "lastActivityAt"),
    ("SYNC", "sync"),
)


def render_status_text(rows: Sequence[StatusRow]) -> str:
    """An aligned table and a one-line summary."""
    table = render_table([r.to_dict() for r in rows], _COLUMNS, empty="(no sessions)")
    counts = sync_counts(rows)
    summary = ", ".join(f"{n} {word}" for word, n in counts.items() if n)
    return f"{table}\n{len(rows)} session(s): {summary or 'none'}\n"
