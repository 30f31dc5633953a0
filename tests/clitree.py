"""The subcommands of a click group through click's own API (``list_commands`` and
``get_command``), so lazily loaded commands (reconciler.cli.main.LazyGroup) are seen."""

from __future__ import annotations

import click


def subcommands(group: click.Group) -> dict[str, click.Command]:
    ctx = click.Context(group)
    found = {name: group.get_command(ctx, name) for name in group.list_commands(ctx)}
    return {name: command for name, command in found.items() if command is not None}
