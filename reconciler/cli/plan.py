"""`reconciler plan` (placeholder until its issue lands)."""

from __future__ import annotations

import click

from reconciler.errors import UsageError


@click.command("plan")
def command() -> None:
    """Not available yet."""
    raise UsageError("`reconciler plan` is not available yet")
