"""Click helpers commands share: the settings object, the hub a command talks to,
``--format``, and the option groups of plan, apply and status (scope; replace and
destroy).

The settings themselves (:class:`reconciler.settings.GlobalOptions`) are click-free.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click
from click.decorators import FC

from reconciler.cli import jsonout
from reconciler.settings import GlobalOptions

if TYPE_CHECKING:
    from reconciler.connect import Endpoint
    from reconciler.errors import ManifestErrors

__all__ = [
    "echo_manifest_errors",
    "format_option",
    "hub_endpoint",
    "override_policy_option",
    "pass_options",
    "plan_shape_options",
    "project_option",
    "scope_options",
    "session_id_argument",
]


pass_options = click.make_pass_decorator(GlobalOptions)


def _project_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    import re

    from reconciler.apifacts import PROJECT_NAME_PATTERN, PROJECT_NAME_RULE

    if value is not None and not re.fullmatch(PROJECT_NAME_PATTERN, value):
        raise click.BadParameter(f"{value!r} is not a valid project name: use {PROJECT_NAME_RULE}")
    return value


# ``--project NAME`` of every command that reads manifests: the name when they hold no
# Project document.
project_option = click.option(
    "--project",
    "project_name",
    metavar="NAME",
    callback=_project_name,
    help="Project name when no Project document.",
)


# `kind: Policy` denies that a reviewed run may lift (only `overridable: true` ones).
override_policy_option = click.option(
    "--override-policy",
    "overrides",
    multiple=True,
    metavar="NAME",
    help="Lift the deny of Policy NAME (repeatable); only a policy declaring "
    "`overridable: true`. --force never lifts a policy.",
)


def hub_endpoint(opts: GlobalOptions) -> Endpoint:
    """The hub this command talks to, resolved once (exit 64 when none is configured,
    before anything is read or created); a new embedded database is announced on
    stderr when a client first opens it (``Endpoint.announce``)."""
    import dataclasses

    from reconciler.connect import resolve_endpoint

    endpoint = resolve_endpoint(opts)
    if endpoint.kind != "local":
        return endpoint
    return dataclasses.replace(endpoint, announce=lambda line: click.echo(line, err=True))


def format_option(*choices: str, help: str, dest: str = "fmt") -> Callable[[FC], FC]:
    """``--format`` with ``choices``, the first being the default; ``json`` makes the
    run's stdout one JSON document whatever the exit code (``cli.jsonout``)."""
    return click.option(
        "--format",
        dest,
        type=click.Choice(list(choices)),
        default=choices[0],
        show_default=True,
        help=help,
        callback=jsonout.requested,
    )


def scope_options(command: FC) -> FC:
    """``--target``, ``--exclude`` and ``--selector``: the scope of plan, apply and status."""
    for option in reversed(
        (
            click.option(
                "--target",
                "targets",
                multiple=True,
                metavar="NAME",
                help="Only these sessions (an unknown name is an error).",
            ),
            click.option(
                "--exclude", "excludes", multiple=True, metavar="NAME", help="Leave these alone."
            ),
            click.option(
                "--selector",
                "selectors",
                multiple=True,
                metavar="tag=VALUE",
                help="Also the declared sessions carrying this tag (repeatable: any of them).",
            ),
        )
    ):
        command = option(command)
    return command


def plan_shape_options(command: FC) -> FC:
    """``--replace`` and ``--destroy``: what plan and apply plan, besides the manifests."""
    command = click.option(
        "--destroy",
        is_flag=True,
        help="Plan removing every managed session of the project (retiring it); "
        "refused by removeAll unless --force.",
    )(command)
    return click.option(
        "--replace",
        multiple=True,
        metavar="NAME",
        help="Replace this declared session even if unchanged (safety rules apply).",
    )(command)


def _session_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    import re

    from reconciler.apifacts import SESSION_ID_PATTERN

    # fullmatch: the pattern's `$` would let a trailing newline through re.match.
    if not re.fullmatch(SESSION_ID_PATTERN, value):
        raise click.BadParameter(
            f"{value!r} is not a session id (a letter or digit, then up to 127 letters, "
            "digits, '_', '.', '-': `reconciler sessions list` shows them)"
        )
    return value


def session_id_argument(name: str = "session_id", metavar: str = "ID") -> Callable[[FC], FC]:
    """A session id argument, refused (exit 64) unless it looks like one: a path or a
    typo never becomes part of a request's URL."""
    return click.argument(name, metavar=metavar, callback=_session_id)


def echo_manifest_errors(exc: ManifestErrors) -> None:
    """What every command says of invalid manifests on stderr, beside any JSON document
    on stdout: one located line per problem (editors and CI annotations pick each up),
    the warnings first."""
    for warning in exc.warnings:
        click.echo(f"warning: {warning.located()}", err=True)
    for error in exc.problems():
        click.echo(f"error: {error.located()}", err=True)
