"""`reconciler users` (placeholder until its issue lands)."""

from __future__ import annotations

import click

from reconciler.errors import UsageError


@click.command("users")
def command() -> None:
    """Not available yet."""
    raise UsageError("`reconciler users` is not available yet")
