"""`reconciler hub serve`: the local Coder hub over HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import click

from reconciler.cli.context import pass_options
from reconciler.errors import LockedError, UsageError
from reconciler.hub.config import DEFAULT_MAX_CONNECTIONS
from reconciler.masking import HUB_TOKENS_VARIABLE as TOKENS_ENV
from reconciler.serving import DEFAULT_BODY_TIMEOUT_S, DEFAULT_HEADER_TIMEOUT_S
from reconciler.settings import GlobalOptions

__all__ = ["command"]

F = TypeVar("F", bound=Callable[..., Any])


def _seconds_option(flag: str, default: float, help: str) -> Callable[[F], F]:
    return click.option(
        flag,
        type=click.FloatRange(min=0.1),
        default=default,
        show_default=True,
        metavar="SECONDS",
        help=help,
    )


@click.group("hub")
def command() -> None:
    """Run the local Coder hub (the whole Coder API over SQLite)."""


@command.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8787, show_default=True, help="TCP port."
)
@click.option(
    "--db",
    "db_path",
    metavar="PATH",
    help="SQLite file (WAL), or :memory:. [default: the global --local-db, "
    ".reconciler/hub.sqlite3, so the served hub shows the embedded hub's sessions]",
)
@click.option(
    "--token",
    "token_specs",
    multiple=True,
    metavar="KEY=ORG:USER",
    help=f"A bearer token and the org and user it stands for; repeatable. Also "
    f"{TOKENS_ENV} (comma-separated). Without any, one is generated and printed.",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Fault knob: delay added to every API request.",
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0,
    show_default=True,
    help="Fault knob: share of API requests refused with 503 before any effect.",
)
@click.option(
    "--lost-response-rate",
    type=click.FloatRange(0, 1),
    default=0,
    show_default=True,
    help="Fault knob: share of API requests whose effect commits but whose response is "
    "lost (the connection drops).",
)
@click.option("--seed", type=int, help="Seed for the fault knobs, for reproducible runs.")
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_CONNECTIONS,
    show_default=True,
    help="Open connections at most (lowered to fit the file descriptor limit). Beyond it, "
    "the connection waiting longest for the rest of a request makes room (closed before "
    "its head, answered 503 during its body); when none is, requests are answered 503.",
)
@_seconds_option(
    "--header-timeout",
    DEFAULT_HEADER_TIMEOUT_S,
    "Close a connection whose request head is not complete this long after it opened "
    "(or after its previous response).",
)
@_seconds_option(
    "--body-timeout",
    DEFAULT_BODY_TIMEOUT_S,
    "Answer 408 and close when a request body is not complete this long after its head.",
)
@click.option(
    "--admin",
    is_flag=True,
    help="Enable POST /hub/session/{id}/_admin (tests: pause a session, set loop state, "
    "connect participants).",
)
@pass_options
def serve_command(
    opts: GlobalOptions,
    host: str,
    port: int,
    db_path: str | None,
    token_specs: tuple[str, ...],
    latency_ms: float,
    fail_rate: float,
    lost_response_rate: float,
    seed: int | None,
    max_connections: int,
    header_timeout: float,
    body_timeout: float,
    admin: bool,
) -> None:
    """Serve the hub at /hub/... and /api/hub/..., with GET /coder for discovery.

    While it serves, it holds the database's lock: `apply --api-url local` (and `watch
    --self-heal`) of the same file wait for it, then stop; apply through the server
    instead. Reading commands (plan, status, export) may use the file meanwhile.
    """
    from reconciler.hub.config import (
        HubConfig,
        TokenGrant,
        generate_token,
        parse_token_specs,
    )
    from reconciler.hub.dbfile import private_directory
    from reconciler.hub.local import LOCAL_GRANT
    from reconciler.hub.serve import serve
    from reconciler.runlock import exclusive_run
    from reconciler.serving import Bounds, bind_listener

    specs = list(token_specs)
    if opts.environ.get(TOKENS_ENV, "").strip():
        specs.append(opts.environ[TOKENS_ENV])
    try:
        tokens = parse_token_specs(specs)
    except ValueError as exc:
        raise UsageError(f"--token/{TOKENS_ENV}: {exc}") from None
    generated = None
    if not tokens:
        generated = generate_token()
        tokens = {generated: TokenGrant(LOCAL_GRANT.org_id, LOCAL_GRANT.user_id)}
    config = HubConfig(
        db_path=db_path or opts.local_db,
        tokens=tokens,
        latency_ms=latency_ms,
        fail_rate=fail_rate,
        lost_response_rate=lost_response_rate,
        seed=seed,
        admin=admin,
    )
    # The embedded hub's lock, held while serving: an `apply --api-url local` of the same
    # file would write beside the server (its settlement and plans would race it).
    private_directory(config.db_path)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive_run(config.db_path, timeout_s=0, on_wait=lambda _: None))
        except LockedError:
            raise LockedError(
                f"{config.db_path} is in use by an apply or another `hub serve`: wait for "
                "the apply, stop the other server, or serve another --db"
            ) from None
        # Bound before anything says it serves (a port in use: exit 64, nothing printed).
        sock = stack.enter_context(contextlib.closing(bind_listener(host, port, "the hub")))
        base = f"http://{_url_host(host)}:{sock.getsockname()[1]}"
        if generated is not None:
            click.echo(
                f"No --token or {TOKENS_ENV} given; generated a token for "
                f"{LOCAL_GRANT.org_id}/{LOCAL_GRANT.user_id}:\n"
                f"export AGENTUITY_SDK_KEY={generated}\n"
                f"export CODER_API_URL={base}",
                err=True,
            )
        click.echo(f"reconciler hub: serving {base} (db {config.db_path}); Ctrl-C stops", err=True)
        serve(
            config,
            sock=sock,
            access_log=opts.verbose > 0,
            bounds=Bounds(
                max_connections=max_connections,
                header_timeout_s=header_timeout,
                body_timeout_s=body_timeout,
            ),
        )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
