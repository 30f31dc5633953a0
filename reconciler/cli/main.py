"""The `reconciler` command group, its global options, and the one place exit codes are decided."""

from __future__ import annotations

import contextlib
import gc
import importlib
import math
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from reconciler import __version__, gctune
from reconciler.apifacts import DEFAULT_API_URL
from reconciler.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    ManifestErrors,
    ReconcilerError,
)
from reconciler.settings import GlobalOptions
from reconciler.textsafe import HIDDEN, escape_matches

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

__all__ = ["COMMANDS", "LazyGroup", "cli", "main", "run", "sigterm_is_ours"]

# Every command: where it lives ("module:attr", imported only when the command runs or
# its own help is asked for) and its short help for `reconciler --help`, the first
# paragraph of its docstring (tests/test_lazy_imports.py checks it against the command).
COMMANDS: dict[str, tuple[str, str]] = {
    "apply": (
        "reconciler.cli.apply:command",
        "Make the hub match the manifests: creates, then updates and resumes, then "
        "archives, then deletes, PARALLELISM at a time.",
    ),
    "discover": (
        "reconciler.cli.discover:command",
        "Show the Coder URL of the organisation (GET /coder).",
    ),
    "export": (
        "reconciler.cli.export:command",
        "Write manifests for existing (non-archived) sessions.",
    ),
    "forget": (
        "reconciler.cli.forget:command",
        "Stop managing the session NAME of the manifests under PATH (default .), as "
        "`terraform state rm` does: its marker tag is removed, nothing else changes.",
    ),
    "hub": (
        "reconciler.cli.hub:command",
        "Run the local Coder hub (the whole Coder API over SQLite).",
    ),
    "import": (
        "reconciler.cli.importcmd:command",
        "Adopt the existing session SESSION_ID as the session NAME declared in the "
        "manifests under PATH (default .), as `terraform import` does: the session gets "
        "NAME's marker tag, nothing else changes; the next plan treats it as NAME.",
    ),
    "plan": (
        "reconciler.cli.plan:command",
        "Show what `apply` would change on the hub for the manifests under PATH (default .).",
    ),
    "schema": (
        "reconciler.cli.schema:command",
        "Print the JSON Schema of manifests (default), the Project document, plan files, or "
        "watch's /status.json.",
    ),
    "sessions": (
        "reconciler.cli.sessions:command",
        "List, inspect and change Coder sessions one API call at a time.",
    ),
    "show": (
        "reconciler.cli.show:command",
        "Show the plan saved in PLANFILE (by `plan --out`), as `plan` showed it.",
    ),
    "status": (
        "reconciler.cli.status:command",
        "Show the managed sessions of the project: status, loop, last activity, sync.",
    ),
    "users": (
        "reconciler.cli.users:command",
        "List the users the Coder hub knows (GET /hub/users).",
    ),
    "validate": (
        "reconciler.cli.validate:command",
        "Check manifests: YAML, schema, names, ${env:...} syntax (default path `.`), and "
        "the Policy session rules that need no hub (neither `live` nor `change`).",
    ),
    "watch": (
        "reconciler.cli.watch:command",
        "Reconcile the manifests under PATH (default .) every --interval, until stopped.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when used: click's documented pattern
    ("Advanced Patterns: Lazily Loading Subcommands"), so `validate` never imports the
    hub, httpx or prometheus-client that other commands need.

    ``lazy_subcommands`` maps a name to ("module:attr", short help). The group's help
    lists the short help kept there, so `reconciler --help` imports no command.
    """

    def __init__(
        self,
        *args: Any,
        lazy_subcommands: Mapping[str, tuple[str, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})
        # The command this run asked for, named before its module is imported.
        self.invoked: str | None = None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_subcommands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            self.invoked = cmd_name
            return self._lazy_load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # click suggests close names from ``self.commands``, which holds none of the lazy
        # ones: an unknown name is answered with close names from every command.
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:
            raise click.exceptions.NoSuchCommand(
                exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names with their short help, from the table: completing
        `reconciler <TAB>` imports no command (click's own loads each to ask its help)."""
        from click.shell_completion import CompletionItem

        # Cut as click cuts a command's own: a stand-in command with the same help.
        shorts = {
            name: click.Command(name, help=short).get_short_help_str()
            for name, (_, short) in self.lazy_subcommands.items()
        }
        for name, command in self.commands.items():  # any added eagerly
            if not command.hidden:
                shorts[name] = command.get_short_help_str()
        names = [
            CompletionItem(name, help=shorts[name])
            for name in sorted(shorts)
            if name.startswith(incomplete)
        ]
        return [*names, *click.Command.shell_complete(self, ctx, incomplete)]

    def _lazy_load(self, cmd_name: str) -> click.Command:
        import_path, _ = self.lazy_subcommands[cmd_name]
        module_name, attr = import_path.split(":")
        # A command's modules make long-lived objects only (modules, classes,
        # functions): collections while they load find no garbage (8-10 ms of CPU for
        # `plan`'s, 45 collections; ``gctune``).
        with gctune.bulk_allocation():
            module = importlib.import_module(module_name)
        command = getattr(module, attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{import_path} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own listing loads every command for its short help; ours are kept.
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.lazy_subcommands:
                # Shortened as click shortens a command's help (a stand-in, not imported).
                stand_in = click.Command(name, help=self.lazy_subcommands[name][1])
                rows.append((name, stand_in.get_short_help_str(limit)))
            else:
                command = super().get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy_subcommands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
@click.option(
    "--timeout",
    envvar="CODER_TIMEOUT",
    callback=lambda ctx, _param, value: _seconds(ctx, value),
    metavar="SECONDS",
    help="Seconds to wait for each answer of a remote hub (and to send a request); "
    "connecting waits at most 5. A request that times out is a lost connection: a read "
    "is retried; a timed-out create is looked for in the hub's list (adopted when found) "
    "and never sent again in that run (watch waits twice this before its next "
    "reconcile). [env CODER_TIMEOUT] [default: 30]",
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
    timeout: float | None,
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
        timeout=timeout,
        no_color=no_color,
        verbose=verbose,
        environ=dict(os.environ),
        hub_flags=_hub_flags(ctx),
    )
    _configure_logging(verbose)


# The global options that choose the hub and the org.
_HUB_OPTIONS = ("api_url", "coder_url", "org", "local_db")


def _hub_flags(ctx: click.Context) -> dict[str, str]:
    """Those of ``_HUB_OPTIONS`` given on the command line, by name
    (``GlobalOptions.hub_flags``)."""
    return {
        name: str(ctx.params[name])
        for name in _HUB_OPTIONS
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    }


# What --timeout (CODER_TIMEOUT) takes: seconds, a tenth at least (less and every request
# times out: 1e-300 passed), an hour at most.
_TIMEOUT_RANGE = click.FloatRange(min=0.1, max=3600)


def _seconds(ctx: click.Context, given: str | None) -> float | None:
    """``--timeout`` or ``CODER_TIMEOUT`` as a number of seconds in ``_TIMEOUT_RANGE``,
    an error naming the one it came from (click's own would say ``--timeout`` of a
    value the environment gave). NaN is refused: every comparison with it is false, so
    the range lets it through (and httpx would fail on it at the first request)."""
    if given is None:
        return None
    from_env = ctx.get_parameter_source("timeout") is ParameterSource.ENVIRONMENT
    hint = "CODER_TIMEOUT (from the environment)" if from_env else "'--timeout'"
    try:
        seconds = float(given)
        if math.isnan(seconds):
            raise ValueError(given)
        checked: float = _TIMEOUT_RANGE.convert(seconds, None, ctx)
    except (ValueError, click.BadParameter) as exc:
        if from_env:
            # Not echoed: whatever was pasted into the variable (a token, by mistake).
            said = "not a number of seconds from 0.1 to 3600 (its value is not shown)"
        elif isinstance(exc, click.BadParameter):
            said = exc.message
        else:
            said = f"{given!r} is not a number of seconds"
        raise click.BadParameter(said, ctx=ctx, param_hint=hint) from None
    return checked


def _configure_logging(verbose: int) -> None:
    import logging

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    # httpx logs full URLs at INFO; our client logs its own redacted lines instead.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map every outcome to an exit code in one place.

    The codes are docs/reference/exit-codes.md's table.

    The process ends here, so what it still holds (a plan's manifests and sessions:
    about a million objects for 10,000 sessions) is frozen out of the full collection
    the interpreter runs on its way out: a traversal of all of them, a moment before
    the process ends, that cost about 50 ms of such a plan's CPU (6 %). Everything
    else of the exit runs as before (``atexit``, flushing and closing files, freeing
    what is not in a reference cycle); what is, the operating system reclaims, as
    Python never promises to collect it at exit.
    """
    _without_httpx_cli()
    # Once the outcome is decided and said, a SIGTERM would only turn it into 143: the
    # process ends ignoring it.
    code = run(argv, _then_sigterm=signal.SIG_IGN)
    gc.freeze()
    sys.exit(code)


def _without_httpx_cli() -> None:
    """Keep httpx from importing its own command-line client with itself.

    ``import httpx`` imports ``httpx._main`` (click, pygments and rich's console, tables
    and progress bars) whenever those happen to be installed, for the ``httpx`` command
    this tool never runs: about 35 ms of every command that talks to a hub (a fifth of
    a plan's imports). An absent entry in ``sys.modules`` makes that one import fail,
    which httpx handles itself (its ``main`` then only says the CLI's packages are
    missing). Done by :func:`main` alone, the command's process, before httpx is first
    imported: a program that imports ``reconciler`` or calls :func:`run` keeps its httpx
    whole.
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def run(
    argv: list[str] | None = None,
    *,
    _then_sigterm: signal.Handlers | None = None,
    **extra: Any,
) -> int:
    """Run the CLI in this process; the exit code. SIGTERM is handled as Ctrl-C while it
    runs, then as before (``_then_sigterm``: as ``main`` leaves it instead)."""
    from reconciler.cli import jsonout

    token = jsonout.begin(sys.argv[1:] if argv is None else argv)
    _Terminated.seen = False
    try:
        with _sigterm_as_ctrl_c(then=_then_sigterm):
            return _run(argv, **extra)
    finally:
        _Terminated.seen = False  # nothing of this run is read by the next
        jsonout.reset(token)


# The commands for which SIGTERM is the way to stop, not an interruption: exit 0, as
# docs/reference/exit-codes.md says (``watch`` handles it itself once it runs; before,
# here).
_SIGTERM_STOPS = frozenset({"watch"})


class _Terminated:
    """Whether this run got SIGTERM (``_on_sigterm``)."""

    seen = False


@contextlib.contextmanager
def _sigterm_as_ctrl_c(then: signal.Handlers | None = None) -> Iterator[None]:
    """SIGTERM (a CI runner cancelling the job, a container stopping) does what Ctrl-C
    does (``docs/reference/exit-codes.md``): whatever handles SIGINT at that moment
    handles it (an apply starts nothing new and reports; ``asyncio.run`` cancels its
    task; ``watch`` and ``hub serve`` install their own), else the same: exit 130. Not
    when SIGINT is ignored either: a shell starts a background job (`cmd &`) with
    SIGINT ignored, and SIGTERM must still stop it; nor when SIGTERM itself came
    ignored (every command stops on it alike, as ``watch`` and ``hub serve`` always
    did). A handler of the program embedding us is left in place; ours is taken down
    on the way out, for the one found, or ``then``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, signal.SIG_IGN):
        yield  # the program embedding us handles it
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, then if then is not None else previous)


def sigterm_is_ours() -> bool:
    """Whether SIGTERM is handled by this module now (while a command runs, in the main
    thread, unless the program embedding us handles it)."""
    return signal.getsignal(signal.SIGTERM) is _on_sigterm


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _Terminated.seen = True
    if callable(signal.getsignal(signal.SIGINT)):
        # Python's KeyboardInterrupt, asyncio's task cancellation or an event loop's
        # handler (``loop.add_signal_handler``): as a Ctrl-C would.
        signal.raise_signal(signal.SIGINT)
        return
    # SIGINT ignored: what asyncio.run does on Ctrl-C, when a loop runs (an exception
    # raised wherever the loop is could come out wrapped in a task group's), else
    # Python's own.
    # (Imported only by commands that run a loop; maybe half-imported yet.)
    interrupt = getattr(sys.modules.get("reconciler.asyncrun"), "interrupt", None)
    if interrupt is not None and interrupt():
        return
    raise KeyboardInterrupt


def _interrupted(message: str) -> int:
    """The exit of a run stopped by Ctrl-C or SIGTERM: 130, or 0 for a command that
    SIGTERM stops (``watch``, before its own handler was in place)."""
    # An interrupt that passed out of text run by exec() (a dataclass or a namedtuple
    # made while a module loads) leaves CPython's "unhandled KeyboardInterrupt" mark,
    # though caught here: on its way out the interpreter would then kill itself with
    # SIGINT, whatever the exit code. Text run to its end clears the mark.
    exec("None")  # noqa: S102 - a constant, run for the side effect above
    if _Terminated.seen and cli.invoked in _SIGTERM_STOPS:
        click.echo("Stopped (SIGTERM).", err=True)
        return EXIT_OK
    click.echo(message, err=True)
    return _failed(EXIT_INTERRUPTED, None, message.rstrip(".").lower())


def _failed(code: int, exc: BaseException | None, message: str) -> int:
    """``code``, after the error document on stdout when JSON was asked for and the
    command wrote none (``cli.jsonout``)."""
    from reconciler.cli import jsonout

    document = jsonout.error_document(code, exc, message)
    if document is not None:
        click.echo(document)
    return code


def _run(argv: list[str] | None, **extra: Any) -> int:
    cli.invoked = None
    try:
        result = cli.main(args=argv, prog_name="reconciler", standalone_mode=False, **extra)
    except click.exceptions.Abort:
        return _interrupted("Aborted.")
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return _failed(EXIT_USAGE, exc, exc.format_message())
    except ManifestErrors as exc:
        from reconciler.cli.context import echo_manifest_errors

        echo_manifest_errors(exc)
        return _failed(exc.exit_code, exc, "invalid manifests")
    except ReconcilerError as exc:
        # Each line its own `error:` line, controls escaped: no line of an error (a
        # hub's text, a rule's message) starts a CI log's command or moves a cursor.
        for line in str(exc).split("\n"):
            click.echo(f"error: {escape_matches(HIDDEN, line)}", err=True)
        for note in getattr(exc, "__notes__", ()):  # what to do next (add_note)
            click.echo(f"hint: {escape_matches(HIDDEN, note)}", err=True)
        return _failed(exc.exit_code, exc, str(exc))
    except KeyboardInterrupt:
        return _interrupted("Interrupted.")
    except BaseExceptionGroup as group:
        # A task group's: an interrupt is one, whatever else the group carries.
        if group.subgroup(KeyboardInterrupt) is not None or _Terminated.seen:
            return _interrupted("Interrupted.")
        if isinstance(group, Exception):
            return _bug()
        raise
    except (UnicodeDecodeError, UnicodeEncodeError) as exc:
        if not _not_utf8(exc):
            return _bug()
        # An argument or a file that is not UTF-8 (the shell passed its bytes through as
        # lone surrogates): no request can carry it.
        message = "an argument or a file given is not valid UTF-8 text"
        click.echo(f"error: {message}", err=True)
        return _failed(EXIT_USAGE, None, message)
    except BaseException as exc:
        if _Terminated.seen and not isinstance(exc, SystemExit):
            # Stopped while something was under way that does not expect to be (an
            # extension module's import): the stop, not a bug.
            return _interrupted("Interrupted.")
        if not isinstance(exc, Exception):
            raise
        return _bug()
    return int(result) if isinstance(result, int) else 0


def _not_utf8(exc: UnicodeDecodeError | UnicodeEncodeError) -> bool:
    """Input that is not UTF-8: bytes that do not decode as it, or a lone surrogate (how
    Python passes such bytes of an argument on); not, say, a terminal that cannot show
    a character."""
    if isinstance(exc, UnicodeDecodeError):
        return exc.encoding.replace("-", "").lower() == "utf8"
    return exc.reason == "surrogates not allowed"


def _bug() -> int:
    traceback.print_exc()
    click.echo(
        "error: this is a bug in coder-reconciler; please report it with the traceback above.",
        err=True,
    )
    return _failed(EXIT_ERROR, None, "a bug in coder-reconciler (traceback on stderr)")
