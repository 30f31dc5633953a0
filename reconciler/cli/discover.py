"""`reconciler discover` (placeholder until its issue lands)."""

from __future__ import annotations

import click

from reconciler.errors import UsageError


@click.command("discover")
def command() -> None:
    """Not available yet."""
    raise UsageError("`reconciler discover` is not available yet")
