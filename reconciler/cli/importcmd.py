"""`reconciler import NAME SESSION_ID`: adopt one existing session as a declared one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import click

from reconciler import markerops
from reconciler.applyrun import ApplyRequest
from reconciler.cli import jsonout
from reconciler.cli.apply import run_and_render
from reconciler.cli.context import (
    format_option,
    hub_endpoint,
    pass_options,
    project_option,
    session_id_argument,
)
from reconciler.settings import GlobalOptions

__all__ = ["command"]


@click.command("import")
@click.argument("name")
@session_id_argument(metavar="SESSION_ID")
@click.argument("paths", nargs=-1, type=click.Path())
@project_option
@click.option(
    "--write",
    is_flag=True,
    help="Print the manifest that declares the session as it is, as NAME; change nothing.",
)
@click.option(
    "--yes", "-y", is_flag=True, help="Import without asking (needed without a terminal)."
)
@format_option(
    "text", "json", help="json: the apply report on stdout (with --write: the manifest in it)."
)
@pass_options
def command(
    opts: GlobalOptions,
    name: str,
    session_id: str,
    paths: Sequence[str],
    project_name: str | None,
    write: bool,
    yes: bool,
    fmt: str,
) -> None:
    """Adopt the existing session SESSION_ID as the session NAME declared in the
    manifests under PATH (default .), as `terraform import` does: the session gets
    NAME's marker tag, nothing else changes; the next plan treats it as NAME.

    Refused (exit 3) when the session's create-only fields (task, repos, workflow mode,
    metadata, env keys...) differ from the manifest's, naming them: adopted, it would
    pass for running what the manifest declares. Mutable fields (label, tags...) may
    differ: the next plan updates them. With --write, print the manifest that declares
    the session as it is (save it under PATH, then import again). `export --adopt`
    adopts many sessions at once.

    Exit codes: 0 imported (or already), 1 no such session or the update failed, 3
    create-only fields differ, 64 NAME not declared, the session managed elsewhere or
    NAME managed already, no --yes without a terminal, or no hub configured, 65 invalid
    manifests.
    """
    if write:
        endpoint = hub_endpoint(opts)
        text, notes = asyncio.run(
            markerops.write_manifest(
                opts, paths, name, session_id, endpoint=endpoint, project_name=project_name
            )
        )
        for note in notes:  # as export says them: what the manifest leaves to the defaults
            click.echo(note, err=True)
        if fmt == "json":
            jsonout.emit({"name": name, "sessionId": session_id, "manifest": text})
        else:
            click.echo(text, nl=False)
        return
    request = ApplyRequest(
        paths=tuple(paths),
        project_name=project_name,
        make_plan=markerops.import_session(name, session_id),
    )
    run_and_render(opts, request, fmt=fmt, yes=yes)
