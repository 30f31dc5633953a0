"""``/metrics`` and ``/healthz`` of ``watch --metrics-port``, served in the watcher's loop.

Starlette and uvicorn (already the hub's server) on a socket bound here, so a port in
use is a clear error before the first reconcile. The exposition itself, and the choice
between the Prometheus text format and OpenMetrics by ``Accept``, are prometheus-client's.
uvicorn's own signal handling is left out: the watcher decides what SIGTERM and Ctrl-C do.

Within the bounds every server of ours keeps (:mod:`reconciler.serving`): at most
:data:`MAX_CONNECTIONS` connections, deadlines on request heads and bodies, collapsed
log lines. The descriptors the reconciles need (the client's connection pool) are kept
out of the server's reach, so a flood on this port cannot fail a reconcile.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.client.core import POOL_LIMITS
from reconciler.errors import UsageError
from reconciler.serving import FD_RESERVE, Bounds, bind_listener, serving_in_loop

__all__ = ["BOUNDS", "MAX_CONNECTIONS", "metrics_app", "serving_metrics"]

# Scrapers, probes and a few people: far fewer than a hub's clients.
MAX_CONNECTIONS = 64
BOUNDS = Bounds(
    max_connections=MAX_CONNECTIONS,
    fd_reserve=FD_RESERVE + (POOL_LIMITS.max_connections or 0),
)


def metrics_app(
    registry: CollectorRegistry,
    health: Callable[[], Mapping[str, Any]],
    *,
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """``GET /metrics``: the registry; ``GET /healthz``: 200 and ``health()`` as JSON;
    then ``routes``, a caller's own pages, served on the same port within the same
    bounds (:data:`BOUNDS`). ``/metrics`` and ``/healthz`` match first: no route added
    can take them over.

    Health answers as long as the watcher's loop runs, whatever the hub does: restarting
    a watcher does not mend a hub, so a failing hub is a metric, not a failed probe.
    """

    async def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), headers={"Content-Type": content_type})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", **health()})

    return Starlette(
        routes=[Route("/metrics", metrics), Route("/healthz", healthz), *routes],
    )


_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def _is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback_only(app: Starlette, host: str) -> Any:
    """``app`` answering only requests whose ``Host`` names this machine, or the address
    it is bound to (400 for any other): a web page whose name an attacker points at
    127.0.0.1 (DNS rebinding) cannot read the status page from a browser on it."""
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    bound = f"[{host}]" if ":" in host else host
    return TrustedHostMiddleware(app, allowed_hosts=[*_LOOPBACK_NAMES, bound])


@contextlib.asynccontextmanager
async def serving_metrics(app: Starlette, *, host: str, port: int) -> AsyncIterator[int]:
    """Serve ``app`` on ``host:port`` for the ``async with`` block; yields the port bound
    (the one asked, or the one the system chose for 0)."""
    options: dict[str, Any] = {"log_config": None, "access_log": False, "lifespan": "off"}
    served: Any = _loopback_only(app, host) if _is_loopback(host) else app
    with contextlib.closing(bind_listener(host, port, "metrics")) as sock:
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(serving_in_loop(served, BOUNDS, sock, **options))
            except RuntimeError:
                raise UsageError(f"cannot serve metrics on {host}:{port}") from None
            yield int(sock.getsockname()[1])
