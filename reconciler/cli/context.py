"""Click helpers every command shares: the settings object and ``--format``.

The settings themselves (:class:`reconciler.settings.GlobalOptions`) are click-free.
"""

from __future__ import annotations

from collections.abc import Callable

import click
from click.decorators import FC

from reconciler.settings import GlobalOptions

__all__ = ["format_option", "pass_options"]


pass_options = click.make_pass_decorator(GlobalOptions)


def format_option(*choices: str, help: str, dest: str = "fmt") -> Callable[[FC], FC]:
    """``--format`` with ``choices``, the first being the default."""
    return click.option(
        "--format",
        dest,
        type=click.Choice(list(choices)),
        default=choices[0],
        show_default=True,
        help=help,
    )
