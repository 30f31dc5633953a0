"""`reconciler validate [PATH...]`: check manifests offline; no request, no secrets."""

from __future__ import annotations

import json

import click

from reconciler.cli.context import format_option, pass_options, project_option
from reconciler.errors import EXIT_INVALID, EXIT_OK, ManifestErrors
from reconciler.manifest import inspect_manifests
from reconciler.settings import GlobalOptions

__all__ = ["command"]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path())
@format_option(
    "text",
    "json",
    help="text: warnings on stderr, a summary line; json: one object on stdout.",
    dest="output_format",
)
@project_option
@pass_options
def command(
    opts: GlobalOptions, paths: tuple[str, ...], output_format: str, project_name: str | None
) -> int:
    """Check manifests: YAML, schema, names, ${env:...} syntax (default path `.`).

    Says how many sessions each SessionSet yields.

    Exits 0 when valid (unset variables are warnings), 65 with every error as
    file:line:col: message. Sends no request and needs no secrets.
    """
    try:
        result = inspect_manifests(paths or ["."], environ=opts.environ, project_name=project_name)
    except ManifestErrors as exc:
        if output_format != "json":
            raise
        errors = [
            {"file": e.file, "line": e.line, "column": e.column, "message": e.detail}
            for e in exc.errors
        ]
        click.echo(json.dumps({"valid": False, "errors": errors, "warnings": []}, indent=2))
        return EXIT_INVALID
    sets = [
        {"name": s.name, "file": s.file, "line": s.line, "sessions": s.sessions}
        for s in result.sets
    ]
    if output_format == "json":
        warnings = [w.to_dict() for w in result.warnings]
        doc = {"valid": True, "errors": [], "warnings": warnings, "sets": sets}
        click.echo(json.dumps(doc, indent=2))
        return EXIT_OK
    for warning in result.warnings:
        click.echo(f"warning: {warning.located()}", err=True)
    project = "1 project" if result.project is not None else "no project"
    click.echo(
        f"OK: {project}, {_plural(len(result.sessions), 'session')} in "
        f"{_plural(len(result.files), 'file')}"
    )
    for summary in result.sets:
        click.echo(
            f"  SessionSet {summary.name} ({summary.file}:{summary.line}): "
            f"{_plural(summary.sessions, 'session')}"
        )
    return EXIT_OK
