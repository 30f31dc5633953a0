"""`reconciler apply` (placeholder until its issue lands)."""

from __future__ import annotations

import click

from reconciler.errors import UsageError


@click.command("apply")
def command() -> None:
    """Not available yet."""
    raise UsageError("`reconciler apply` is not available yet")
