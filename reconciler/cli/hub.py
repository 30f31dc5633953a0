"""`reconciler hub` (placeholder until its issue lands)."""

from __future__ import annotations

import click

from reconciler.errors import UsageError


@click.command("hub")
def command() -> None:
    """Not available yet."""
    raise UsageError("`reconciler hub` is not available yet")
