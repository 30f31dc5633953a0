"""An ASGI app served by uvicorn on 127.0.0.1 in a thread of the test process, and a
wrapper that records every request's method and path (to count what a command sent)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from hubproc import free_port, until

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port until the block ends; yields its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    until("the test server", lambda: server.started or not thread.is_alive(), timeout_s=20)
    assert server.started, "test server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@dataclass
class RequestLog:
    """ASGI wrapper: passes every request on, and records ``(method, path)`` of each."""

    app: Any
    requests: list[tuple[str, str]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.requests if m in WRITE_METHODS]
