"""`reconciler schema` (placeholder until its issue lands)."""

from __future__ import annotations

import click

from reconciler.errors import UsageError


@click.command("schema")
def command() -> None:
    """Not available yet."""
    raise UsageError("`reconciler schema` is not available yet")
