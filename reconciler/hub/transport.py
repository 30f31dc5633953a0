"""``LocalHubTransport``: the hub app in-process, behind httpx's transport seam."""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp

from reconciler.hub.errors import LostResponse

__all__ = ["LocalHubTransport"]


class LocalHubTransport(httpx.AsyncBaseTransport):
    """``httpx.ASGITransport`` over the hub app, where a lost response (the hub's fault
    knob) surfaces as ``httpx.RemoteProtocolError``, as it does over a real socket.

    With ``owns_app``, closing the transport also closes the app's store: in-process
    no lifespan runs, so the app's own shutdown hook never fires.
    """

    def __init__(self, app: ASGIApp, *, owns_app: bool = False) -> None:
        self.app = app
        self.owns_app = owns_app
        self._inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except LostResponse as exc:
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
