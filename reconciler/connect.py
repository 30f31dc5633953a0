"""Where a run's hub is, and a client for it: the one place the client meets the hub.

The client package speaks HTTP through httpx and knows nothing of the hub; the hub
package is a Starlette app and knows nothing of the client. They meet here, at httpx's
transport seam: a remote endpoint gets httpx's own network transport, the embedded hub
a :class:`LocalHubTransport` over its app, in-process.

Which hub a run talks to, and with which token (docs/reference/cli.md, the global options).
Nothing is implicit: the embedded hub is used only when asked for. Precedence:

1. ``--api-url local`` (or ``CODER_API_URL=local``): the embedded hub in-process over
   ``LocalHubTransport``, SQLite at ``--local-db``, its built-in token (which may act
   in any org, so ``--org`` or a Project's orgId work locally too).
2. ``--coder-url`` / ``AGENTUITY_CODER_URL``: the hub under ``{url}/api/hub/...``, as
   the official SDK does.
3. ``--api-url`` / ``CODER_API_URL``: the hub under ``{url}/hub/...`` (the reference).
4. Neither, but ``AGENTUITY_SDK_KEY`` (or ``AGENTUITY_CLI_KEY``) set: the Coder API at
   ``https://catalyst-usw.agentuity.cloud``, where that token belongs.
5. Neither, and no token: a usage error naming both ways to configure a hub.

A remote endpoint needs a token (``AGENTUITY_SDK_KEY``, else ``AGENTUITY_CLI_KEY``);
without one the run stops with a usage error before any request. Resolving is pure (no
output, nothing created on disk): a command resolves once and passes the
:class:`Endpoint` down; :func:`open_client` tells its ``announce`` the
:func:`endpoint_banner` line when it opens a new embedded database.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx

from reconciler.apifacts import DEFAULT_API_URL
from reconciler.client import CoderClient, RetryPolicy, Timeouts
from reconciler.client.redact import redact_secret
from reconciler.errors import UsageError
from reconciler.masking import TOKEN_VARIABLES
from reconciler.settings import GlobalOptions

if TYPE_CHECKING:
    from starlette.types import ASGIApp

__all__ = [
    "DEFAULT_API_URL",
    "LOCAL_BASE_URL",
    "Endpoint",
    "LocalHubTransport",
    "endpoint_banner",
    "open_client",
    "resolve_endpoint",
]

# The in-process hub needs some base URL; nothing resolves it, no socket is opened.
LOCAL_BASE_URL = "http://local-hub.invalid"


@dataclass(frozen=True)
class Endpoint:
    """Where the hub is, and as whom. ``token`` is never shown by ``repr``.

    ``org_id`` is the organisation the run named (``--org`` / ``AGENTUITY_ORG_ID``);
    ``token_org`` the one its token acts in when none is named, when known (the embedded
    hub's built-in token; a remote API does not say).
    """

    kind: Literal["local", "remote"]
    base_url: str
    hub_prefix: str
    display: str
    org_id: str | None = None
    token: str | None = field(default=None, repr=False, compare=False)
    local_db: str | None = None
    token_org: str | None = None
    # The clients' retry policy; None: the client's default. Tests inject one that does
    # not wait, so that a hub that never answers costs them no real backoff.
    retry: RetryPolicy | None = field(default=None, repr=False, compare=False)
    # ``--timeout``: seconds to wait for each answer; None: the client's default. The
    # embedded hub answers in-process: no socket, nothing to time out.
    timeout: float | None = None
    # Told ``endpoint_banner``'s line when a client is opened on an embedded database
    # that does not exist yet (the command line draws it on stderr): at the open, not
    # when the endpoint is resolved, so a command that stops before any request (invalid
    # manifests) never announces a database it does not make.
    announce: Callable[[str], None] | None = field(default=None, repr=False, compare=False)
    # The global options it was resolved from (``GlobalOptions`` names): a command the
    # tool suggests repeats those given as flags (``GlobalOptions.invocation``), never a
    # URL that did not choose the hub (never checked, it may hold credentials).
    options: frozenset[str] = field(default=frozenset(), compare=False)

    def org_for(self, project_org: str | None) -> str | None:
        """The organisation a run acts in: the one named for the run, else the Project's
        ``orgId``, else the token's own when known; None: the token's, unnamed."""
        return self.org_id or project_org or self.token_org

    def __repr__(self) -> str:
        return (
            f"Endpoint(kind={self.kind!r}, base_url={self.base_url!r}, "
            f"hub_prefix={self.hub_prefix!r}, display={self.display!r}, "
            f"org_id={self.org_id!r}, token={redact_secret(self.token)}, "
            f"local_db={self.local_db!r}, token_org={self.token_org!r}, "
            f"timeout={self.timeout!r})"
        )


# The global options each kind of endpoint is resolved from (``Endpoint.options``).
_LOCAL_OPTIONS = frozenset({"api_url", "local_db", "org"})
_API_OPTIONS = frozenset({"api_url", "org"})


def resolve_endpoint(opts: GlobalOptions) -> Endpoint:
    """The endpoint the options and environment name (see the module docstring).

    Pure: nothing is written or created; a usage error (exit 64) when no hub, or no
    token for a remote one, is configured.
    """
    env = opts.environ
    api_url = (opts.api_url or "").strip() or None
    if api_url is not None and api_url.lower() == "local":
        return dataclasses.replace(_local(opts), options=_LOCAL_OPTIONS)
    if opts.coder_url:
        base = _check_url(opts.coder_url, "--coder-url/AGENTUITY_CODER_URL")
        remote = _remote(opts, base, "/api/hub", f"{base} (hub at /api/hub)")
        return dataclasses.replace(remote, options=frozenset({"coder_url", "org"}))
    if api_url is not None:
        base = _check_url(api_url, "--api-url/CODER_API_URL")
        return dataclasses.replace(_remote(opts, base, "/hub", base), options=_API_OPTIONS)
    if any(env.get(name) for name in TOKEN_VARIABLES):
        remote = _remote(opts, DEFAULT_API_URL, "/hub", DEFAULT_API_URL)
        return dataclasses.replace(remote, options=frozenset({"org"}))
    raise UsageError(
        "no hub configured: set CODER_API_URL (or --api-url URL) and AGENTUITY_SDK_KEY "
        "to use the Coder API, or pass `--api-url local` (or set CODER_API_URL=local) "
        "to use the embedded hub"
    )


def endpoint_banner(endpoint: Endpoint) -> str | None:
    """A line for stderr when the embedded hub's database does not exist yet (the first
    request creates it, empty: run from another folder, `.reconciler/` is another hub;
    invalid manifests stop the command before any, so it says the request makes it);
    None otherwise. ``open_client`` tells it to ``Endpoint.announce``."""
    db = endpoint.local_db
    if endpoint.kind != "local" or db is None or db == ":memory:":
        return None
    if Path(db).expanduser().exists():
        return None
    where = _absolute(db)
    return (
        f"reconciler: using the embedded local hub ({where}, no database there yet: its "
        "first request makes one, empty)"
    )


def open_client(endpoint: Endpoint, **overrides: Any) -> CoderClient:
    """A ``CoderClient`` for ``endpoint``; ``overrides`` are its keyword arguments.

    ``org_id`` given here is a fallback (e.g. a Project's orgId): ``--org`` /
    ``AGENTUITY_ORG_ID`` win, as docs/reference/cli.md says (:meth:`Endpoint.org_for`).
    For ``local`` the embedded hub is built in-process (its SQLite directory created on
    demand) unless ``transport`` is given.
    """
    org_id = endpoint.org_for(overrides.pop("org_id", None))
    transport = overrides.pop("transport", None)
    if endpoint.retry is not None:
        overrides.setdefault("retry", endpoint.retry)
    if endpoint.timeout is not None:
        overrides.setdefault("timeouts", Timeouts.waiting(endpoint.timeout))
    if endpoint.kind == "local" and transport is None:
        assert endpoint.local_db is not None
        banner = endpoint_banner(endpoint) if endpoint.announce is not None else None
        if banner is not None and endpoint.announce is not None:
            endpoint.announce(banner)
        transport = _embedded_hub(endpoint.local_db)
    return CoderClient(
        endpoint.base_url,
        token=endpoint.token,
        org_id=org_id,
        hub_prefix=endpoint.hub_prefix,
        transport=transport,
        **overrides,
    )


class LocalHubTransport(httpx.AsyncBaseTransport):
    """``httpx.ASGITransport`` over the hub app, where a lost response (the hub's fault
    knob) surfaces as ``httpx.RemoteProtocolError``, as it does over a real socket.

    With ``owns_app``, closing the transport also closes the app's store: in-process
    no lifespan runs, so the app's own shutdown hook never fires.
    """

    def __init__(self, app: ASGIApp, *, owns_app: bool = False) -> None:
        # Imported when used: a run against a remote hub never loads the hub (Starlette).
        from reconciler.hub.errors import LostResponse

        self.app = app
        self.owns_app = owns_app
        self._inner = httpx.ASGITransport(app=app)
        self._lost = LostResponse

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except self._lost as exc:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body", request=request
            ) from exc

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            state = getattr(self.app, "state", None)
            store = getattr(state, "store", None)
            if self.owns_app and store is not None:
                store.close()


def _embedded_hub(db_path: str) -> httpx.AsyncBaseTransport:
    from reconciler.hub.local import local_app

    return LocalHubTransport(local_app(db_path), owns_app=True)


def _local(opts: GlobalOptions) -> Endpoint:
    from reconciler.hub.local import LOCAL_GRANT, LOCAL_TOKEN

    return Endpoint(
        kind="local",
        base_url=LOCAL_BASE_URL,
        hub_prefix="/hub",
        # The absolute path: `.reconciler/` of another folder is another hub.
        display=f"local ({_absolute(opts.local_db)})",
        org_id=opts.org,
        token=LOCAL_TOKEN,
        local_db=opts.local_db,
        token_org=LOCAL_GRANT.org_id,
    )


def _absolute(db: str) -> str:
    """``db`` as an absolute path, symlinks not followed (``:memory:`` as it is)."""
    return db if db == ":memory:" else os.path.abspath(os.path.expanduser(db))


def _remote(opts: GlobalOptions, base: str, prefix: str, display: str) -> Endpoint:
    token = next((opts.environ[n] for n in TOKEN_VARIABLES if opts.environ.get(n)), None)
    if token is None:
        raise UsageError(
            f"no API token for {display}: set AGENTUITY_SDK_KEY (the token is never a flag), "
            "or pass `--api-url local` (or set CODER_API_URL=local) to use the embedded hub"
        )
    return Endpoint(
        kind="remote",
        base_url=base,
        hub_prefix=prefix,
        display=display,
        org_id=opts.org,
        token=token,
        timeout=opts.timeout,
    )


def _check_url(url: str, source: str) -> str:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - a port that is no number raises only when read
        # What httpx refuses when sending (`[::1]pw`; an `xn--` host IDNA cannot read).
        httpx.URL(url.strip()).host  # noqa: B018 - the host is decoded when read
    except (ValueError, httpx.InvalidURL):  # an unclosed IPv6 bracket, a bad port...
        # Not echoed: a malformed URL may hold credentials its parse did not find.
        raise UsageError(f"{source} is not a URL that can be read") from None
    if "@" in parts.netloc or parts.query or parts.fragment:
        # Credentials in a URL would leak into logs and errors (so it is not echoed):
        # the token belongs in AGENTUITY_SDK_KEY.
        raise UsageError(f"{source} must not carry credentials, a query or a fragment")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{source} must be an http(s) URL or `local`, got {url!r}")
    return url.strip().rstrip("/")
