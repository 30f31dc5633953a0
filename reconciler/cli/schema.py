"""`reconciler schema [manifest|project|plan|status]`: print a JSON Schema shipped with it."""

from __future__ import annotations

from importlib import resources

import click

from reconciler.errors import ReconcilerError

__all__ = ["command"]

NAMES = ("manifest", "project", "plan", "status")


@click.command("schema")
@click.argument("name", type=click.Choice(NAMES), default="manifest", required=False)
def command(name: str) -> None:
    """Print the JSON Schema of manifests (default), the Project document, plan files, or
    watch's /status.json."""
    resource = resources.files("reconciler") / "schemas" / f"{name}.schema.json"
    try:
        text = resource.read_text("utf-8")
    except OSError as exc:
        raise ReconcilerError(f"schema {name!r} is not available in this installation") from exc
    click.echo(text, nl=not text.endswith("\n"))
