"""`reconciler users`: the Coder hub's known users (GET /hub/users)."""

from __future__ import annotations

import click

from reconciler.cli.apicall import call_api, emit_json, format_option
from reconciler.cli.context import pass_options
from reconciler.cli.table import render_table
from reconciler.settings import GlobalOptions

__all__ = ["command"]


@click.command("users")
@click.option("--search", metavar="S", help="Only users matching this search.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N users.")
@click.option("--offset", type=click.IntRange(min=0), metavar="N", help="Skip the first N.")
@format_option
@pass_options
def command(
    opts: GlobalOptions, search: str | None, limit: int | None, offset: int | None, fmt: str
) -> None:
    """List the users the Coder hub knows (GET /hub/users)."""
    result = call_api(opts, lambda c: c.list_users(search=search, limit=limit, offset=offset))
    if fmt == "json":
        emit_json(result)
        return
    columns = [
        ("USER", "userId"),
        ("NAME", "displayName"),
        ("EMAIL", "email"),
        ("PROVIDER", "provider"),
        ("LAST SEEN", "lastSeenAt"),
    ]
    users = result["users"]
    click.echo(render_table(users, columns, empty="(no users)"))
    total = result.get("total")
    click.echo(f"{len(users)} of {total if total is not None else '?'} users", err=True)
