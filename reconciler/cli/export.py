"""`reconciler export` (placeholder until its issue lands)."""

from __future__ import annotations

import click

from reconciler.errors import UsageError


@click.command("export")
def command() -> None:
    """Not available yet."""
    raise UsageError("`reconciler export` is not available yet")
