"""`reconciler show PLANFILE`: render a plan saved by `plan --out`, without a hub."""

from __future__ import annotations

import click

from reconciler.cli import jsonout
from reconciler.cli.context import format_option, pass_options
from reconciler.planfile import read_plan_checksum
from reconciler.render import PLAN_FORMATS, render_plan_as
from reconciler.settings import GlobalOptions

__all__ = ["command"]


@click.command("show")
@click.argument("plan_file", metavar="PLANFILE", type=click.Path(dir_okay=False))
@format_option(*PLAN_FORMATS, help="Output format on stdout.")
@pass_options
def command(opts: GlobalOptions, plan_file: str, fmt: str) -> None:
    """Show the plan saved in PLANFILE (by `plan --out`), as `plan` showed it.

    The file is checked as `apply --plan` checks it (format version, checksum, schema);
    no request is made. Values under env are shown as (sensitive). Its checksum, what
    `apply --plan --expect-checksum` takes, is said on stderr.

    Exit codes: 0 shown, 4 the file is not a plan, of another version or changed after
    it was made, 64 it cannot be read.
    """
    plan, checksum = read_plan_checksum(plan_file)
    click.echo(f"{plan_file}: checksum {checksum}", err=True)
    rendered = render_plan_as(plan, fmt, color=opts.color())
    if fmt == "json":
        jsonout.echo(rendered)
    else:
        click.echo(rendered, nl=False)
