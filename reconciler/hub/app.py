"""``create_app(config)``: the hub as a Starlette app; ``app.state.store`` is its storage."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from reconciler.hub.config import HubConfig
from reconciler.hub.errors import HubError, LostResponse, error_response
from reconciler.hub.faults import FaultMiddleware
from reconciler.hub.routes import build_routes
from reconciler.hub.storage import HubStore

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

_HTTP_CODES = {404: "CODER_NOT_FOUND", 405: "CODER_METHOD_NOT_ALLOWED"}


async def _hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "CODER_INVALID_REQUEST")
    message = f"no route for {request.method} {request.url.path}"
    if exc.status_code != 404:
        message = f"{request.method} is not allowed on {request.url.path}"
    response = error_response(exc.status_code, code, message)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    # A lost response (fault knob) passes through here after its head went out, and a
    # client gone mid-body (reconciler.serving ends the request quietly): the 500 below
    # is then never sent, and neither is a bug.
    if not isinstance(exc, LostResponse | ClientDisconnect):
        logger.exception("hub bug while serving %s %s", request.method, request.url.path)
    return error_response(500, "CODER_INTERNAL_ERROR", "internal error in the local hub")


def create_app(config: HubConfig) -> Starlette:
    """The hub over ``config.db_path``; the store opens now and closes at shutdown."""
    store = HubStore(config.db_path)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    app = Starlette(
        routes=build_routes(admin_enabled=config.admin),
        middleware=[Middleware(FaultMiddleware, config=config)],
        exception_handlers={
            HubError: _hub_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # as the hub's own routers (routes.build_routes)
    app.state.store = store
    app.state.config = config
    return app
