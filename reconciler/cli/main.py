"""The `reconciler` command group, its global options, and the one place exit codes are decided."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from reconciler import __version__
from reconciler.connect import DEFAULT_API_URL
from reconciler.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ManifestErrors,
    ReconcilerError,
)
from reconciler.settings import GlobalOptions

__all__ = ["cli", "main", "run"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="reconciler")
@click.option(
    "--api-url",
    envvar="CODER_API_URL",
    metavar="URL|local",
    help="Coder API base URL (hub at /hub/...), or `local` for the embedded hub (only "
    "when asked for). [env CODER_API_URL] Unset: AGENTUITY_SDK_KEY selects "
    f"{DEFAULT_API_URL}; with neither, commands that need a hub exit 64.",
)
@click.option(
    "--coder-url",
    envvar="AGENTUITY_CODER_URL",
    metavar="URL",
    help="Coder service URL; the hub is under {url}/api/hub/... as the official SDK does. "
    "[env AGENTUITY_CODER_URL]",
)
@click.option(
    "--org", envvar="AGENTUITY_ORG_ID", metavar="ID", help="Organisation id. [env AGENTUITY_ORG_ID]"
)
@click.option(
    "--local-db",
    default=".reconciler/hub.sqlite3",
    show_default=True,
    metavar="PATH",
    help="SQLite file of the embedded hub, relative to the current folder (each folder "
    "has its own hub).",
)
@click.option("--no-color", is_flag=True, help="No colour in output (also NO_COLOR).")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for requests).")
@click.pass_context
def cli(
    ctx: click.Context,
    api_url: str | None,
    coder_url: str | None,
    org: str | None,
    local_db: str,
    no_color: bool,
    verbose: int,
) -> None:
    """Sessions as code for the Agentuity Coder API.

    Declare coding sessions in YAML, review `reconciler plan` in pull requests, and let
    CI `reconciler apply` them. The token comes from AGENTUITY_SDK_KEY, never a flag.
    """
    ctx.obj = GlobalOptions(
        api_url=api_url or None,
        coder_url=coder_url or None,
        org=org or None,
        local_db=local_db,
        no_color=no_color,
        verbose=verbose,
        environ=dict(os.environ),
    )
    _configure_logging(verbose)


def _configure_logging(verbose: int) -> None:
    import logging

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    # httpx logs full URLs at INFO; our client logs its own redacted lines instead.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def _register() -> None:
    from reconciler.cli import (
        apply,
        discover,
        export,
        forget,
        hub,
        importcmd,
        plan,
        schema,
        sessions,
        show,
        status,
        users,
        validate,
        watch,
    )

    for module in (
        validate,
        plan,
        show,
        apply,
        forget,
        importcmd,
        status,
        export,
        schema,
        sessions,
        users,
        discover,
        hub,
        watch,
    ):
        cli.add_command(module.command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map every outcome to an exit code in one place.

    The codes are docs/reference/exit-codes.md's table.
    """
    code = run(argv)
    sys.exit(code)


def run(argv: list[str] | None = None, **extra: Any) -> int:
    try:
        result = cli.main(args=argv, prog_name="reconciler", standalone_mode=False, **extra)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_INTERRUPTED
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except ManifestErrors as exc:
        # One located line per problem, so editors and CI annotations can pick each up.
        for error in exc.errors or (exc,):
            click.echo(f"error: {error.located()}", err=True)
        return exc.exit_code
    except ReconcilerError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except Exception:
        traceback.print_exc()
        click.echo(
            "error: this is a bug in coder-reconciler; please report it with the traceback above.",
            err=True,
        )
        return EXIT_ERROR
    return int(result) if isinstance(result, int) else 0
