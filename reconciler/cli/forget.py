"""`reconciler forget NAME`: stop managing one session, touching nothing else."""

from __future__ import annotations

from collections.abc import Sequence

import click

from reconciler import markerops
from reconciler.applyrun import ApplyRequest
from reconciler.cli.apply import run_and_render
from reconciler.cli.context import format_option, pass_options, project_option
from reconciler.settings import GlobalOptions

__all__ = ["command"]


@click.command("forget")
@click.argument("name")
@click.argument("paths", nargs=-1, type=click.Path())
@project_option
@click.option(
    "--yes", "-y", is_flag=True, help="Forget without asking (needed without a terminal)."
)
@click.option("--force", is_flag=True, help="Forget it even though NAME is still declared.")
@format_option("text", "json", help="json: the apply report on stdout.")
@pass_options
def command(
    opts: GlobalOptions,
    name: str,
    paths: Sequence[str],
    project_name: str | None,
    yes: bool,
    force: bool,
    fmt: str,
) -> None:
    """Stop managing the session NAME of the manifests under PATH (default .), as
    `terraform state rm` does: its marker tag is removed, nothing else changes. The
    session keeps running; plans no longer see it.

    Remove NAME from the manifests first: while it is declared, the next plan would
    create it again, so forget refuses (exit 3) unless --force.

    Exit codes: 0 forgotten (or nothing to forget), 1 the update failed, 3 NAME is
    still declared, 64 NAME is neither declared nor managed (close names suggested) or
    no --yes without a terminal or no hub configured, 65 invalid manifests.
    """
    request = ApplyRequest(
        paths=tuple(paths), project_name=project_name, make_plan=markerops.forget(name, force=force)
    )
    run_and_render(opts, request, fmt=fmt, yes=yes)
