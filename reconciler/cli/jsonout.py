"""`--format json`: stdout holds one JSON document, whatever the exit code.

A command writes its document through :func:`echo` or :func:`emit`. When it stops
before writing one (invalid manifests, an unknown ``--target``, a refused apply, a hub
that failed), :func:`reconciler.cli.main.run` writes the error document instead
(:func:`error_document`), so a CI step piping stdout to ``jq`` always has something to
read::

    {"error": {"exitCode": 65, "message": "...", "errors": [{"file": ..., "line": ...,
     "column": ..., "message": ...}]}}

``errors`` is there for invalid manifests (one per problem, located), ``refusals`` for a
safety rule or deny Policy that refused the run (rule, message, sessions, overridable).
Nothing here is heavy: the run's state is two flags in a context variable.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

import click

from reconciler.errors import EXIT_INTERRUPTED, ManifestError, ManifestErrors, SafetyError

__all__ = [
    "begin",
    "echo",
    "emit",
    "error_document",
    "requested",
    "reset",
]


@dataclass
class _Run:
    requested: bool = False  # --format json was given
    written: bool = False  # the command wrote its document
    in_argv: bool = False  # the arguments say --format json (parsing may stop before)


_RUN: ContextVar[_Run | None] = ContextVar("reconciler_json_output", default=None)


def begin(argv: Sequence[str]) -> Token[_Run | None]:
    """A fresh state for one CLI run (``main.run``); reset with the token after.

    The option's callback says for certain that JSON was asked for; the arguments say
    it when click stopped on a usage error before it reached ``--format``.
    """
    pairs = zip(argv, [*argv[1:], ""][: len(argv)], strict=True)
    in_argv = any(a == "--format=json" or (a, b) == ("--format", "json") for a, b in pairs)
    return _RUN.set(_Run(in_argv=in_argv))


def reset(token: Token[_Run | None]) -> None:
    _RUN.reset(token)


def requested(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """The ``--format`` callback: note that the run's stdout is JSON."""
    run = _RUN.get()
    if run is not None and value == "json":
        run.requested = True
    return value


def echo(text: str) -> None:
    """Write the command's JSON document, already rendered, to stdout."""
    click.echo(text, nl=not text.endswith("\n"))
    run = _RUN.get()
    if run is not None:
        run.written = True


def emit(document: Any) -> None:
    """Write the command's JSON document to stdout (``render.values.json_text``)."""
    from reconciler.render.values import json_text

    echo(json_text(document))


def error_document(exit_code: int, exc: BaseException | None, message: str) -> str | None:
    """The error document for a run that stopped with ``exit_code``, or None when no
    JSON was asked for or the command already wrote its document."""
    run = _RUN.get()
    if run is None or run.written:
        return None
    # The arguments alone say it for a run stopped before click reached ``--format``: a
    # usage error, or an interrupt (while the command's module was still loading).
    stopped_early = isinstance(exc, click.UsageError) or exit_code == EXIT_INTERRUPTED
    if not run.requested and not (run.in_argv and stopped_early):
        return None
    error: dict[str, Any] = {"exitCode": exit_code, "message": message}
    if isinstance(exc, ManifestError):
        error["errors"] = [e.to_dict() for e in exc.problems()]
    if isinstance(exc, ManifestErrors) and exc.warnings:
        error["warnings"] = [w.to_dict() for w in exc.warnings]
    if isinstance(exc, SafetyError):
        error["refusals"] = [v.to_dict() for v in exc.violations]
    because = getattr(exc, "refused_because", None)
    if isinstance(because, str):  # a saved plan refused (exit 4): why, in one word
        error["plan"] = because
    from reconciler.render.values import json_text

    return json_text({"error": error})
