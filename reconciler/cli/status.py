"""`reconciler status` (placeholder until its issue lands)."""

from __future__ import annotations

import click

from reconciler.errors import UsageError


@click.command("status")
def command() -> None:
    """Not available yet."""
    raise UsageError("`reconciler status` is not available yet")
