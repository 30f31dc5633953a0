"""`reconciler validate` (placeholder until its issue lands)."""

from __future__ import annotations

import click

from reconciler.errors import UsageError


@click.command("validate")
def command() -> None:
    """Not available yet."""
    raise UsageError("`reconciler validate` is not available yet")
