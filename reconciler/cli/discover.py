"""`reconciler discover`: the organisation's Coder URL (GET /coder)."""

from __future__ import annotations

import click

from reconciler.cli.apicall import call_api, emit_json, format_option
from reconciler.cli.context import pass_options
from reconciler.cli.table import render_fields
from reconciler.settings import GlobalOptions

__all__ = ["command"]


@click.command("discover")
@format_option
@pass_options
def command(opts: GlobalOptions, fmt: str) -> None:
    """Show the Coder URL of the organisation (GET /coder). Pass it as --coder-url to
    talk to that hub the way the official SDK does. The embedded hub (--api-url local)
    has no address: it answers http://local-hub.invalid, which names it and no host."""
    result = call_api(opts, lambda c: c.discover())
    if fmt == "json":
        emit_json(result)
    else:
        click.echo(render_fields([("url", result["url"])]))
