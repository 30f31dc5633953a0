"""`reconciler sessions` (placeholder until its issue lands)."""

from __future__ import annotations

import click

from reconciler.errors import UsageError


@click.command("sessions")
def command() -> None:
    """Not available yet."""
    raise UsageError("`reconciler sessions` is not available yet")
