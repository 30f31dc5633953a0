"""Serve a hub over TCP with uvicorn (what ``reconciler hub serve`` runs).

A flood of connections that never finish their request head must neither exhaust the
process's file descriptors nor lock out a legitimate client nor fill the log:

- uvicorn's own settings bound what they can: ``limit_concurrency`` (503 beyond that
  many connections or requests in flight), ``timeout_keep_alive`` (an idle kept-alive
  connection is closed), ``h11_max_incomplete_event_size`` (the size of a request head).
- uvicorn has no bound on the time a request head may take, and it accepts every
  connection whatever ``limit_concurrency`` says (each holds a descriptor until the
  client goes). :class:`_BoundedH11Protocol`, uvicorn's h11 protocol with two additions,
  closes a connection whose request head is not complete ``header_timeout`` seconds
  after it opened (or after its previous response), and keeps the open connections
  below ``limit_concurrency`` by closing the oldest one still waiting for a request
  head when a new one arrives: a client that sends its request at once is served.
  The limit and uvicorn's ``backlog`` are lowered to fit the descriptor limit
  (``RLIMIT_NOFILE``): see :func:`listen_bounds`.
- asyncio logs a traceback for every failed ``accept()`` (CPython 3.11 does so up to
  ``backlog`` times per loop tick), and uvicorn a line per refused request: repeats of
  one message are collapsed to one line per :data:`LOG_WINDOW_S` with a count.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from reconciler.hub.app import create_app
from reconciler.hub.config import DEFAULT_HEADER_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS, HubConfig
from reconciler.hub.errors import LostResponse

__all__ = [
    "FD_RESERVE",
    "LOG_WINDOW_S",
    "listen_bounds",
    "serve",
]

# Descriptors kept for everything but client connections: the listening socket, the
# database and its WAL, logs, the event loop.
FD_RESERVE = 64
# uvicorn's backlog is the listen queue and also how many connections asyncio accepts
# in one loop tick, before any of them reaches the protocol (to be refused or to evict
# one); a few ticks' worth are open at once. Both must fit the descriptor limit.
MAX_BACKLOG = 2048
_TICKS_IN_FLIGHT = 4
LOG_WINDOW_S = 10.0
_MAX_HEAD_BYTES = 16 * 1024

logger = logging.getLogger(__name__)


class _DropLostResponses(logging.Filter):
    """uvicorn logs a traceback for every exception; a lost response is on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], LostResponse))


class _CollapseRepeats(logging.Filter):
    """One record per message per window; the next one says how many were dropped.

    A flood repeats the same few messages (``socket.accept() out of system resource``,
    ``Exceeded concurrency limit.``); their tracebacks say nothing the message does not.
    """

    def __init__(self, window_s: float = LOG_WINDOW_S) -> None:
        super().__init__()
        self.window_s = window_s
        self._last: dict[tuple[str, str], float] = {}
        self._dropped: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg).partition("\n")[0])
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.window_s:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return False
        self._last[key] = now
        if record.exc_info and isinstance(record.exc_info[1], OSError):
            # The OS error in one line instead of a traceback through asyncio.
            record.msg = f"{key[1]}: {record.exc_info[1]}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        dropped = self._dropped.pop(key, 0)
        if dropped:
            record.msg = f"{record.msg} ({dropped} more like it in the last {self.window_s:g}s)"
        return True


def listen_bounds(requested: int, *, soft_fd_limit: int | None = None) -> tuple[int, int]:
    """``(connection limit, backlog)`` for ``requested`` connections: lowered so that
    the connections, a burst of accepts and the fixed descriptors fit ``RLIMIT_NOFILE``."""
    if soft_fd_limit is None:
        soft_fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_fd_limit == resource.RLIM_INFINITY:
        return requested, MAX_BACKLOG
    spare = max(0, soft_fd_limit - FD_RESERVE)
    backlog = max(8, min(MAX_BACKLOG, spare // (2 * _TICKS_IN_FLIGHT)))
    return max(1, min(requested, spare - _TICKS_IN_FLIGHT * backlog)), backlog


def _bounded_protocol(limit: int, header_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, with a deadline on request heads and eviction at the limit."""
    # Connections waiting for a request head, oldest first (dicts keep insertion order).
    waiting: dict[_BoundedH11Protocol, None] = {}

    class _BoundedH11Protocol(H11Protocol):
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._await_head()
            if len(self.connections) >= limit:
                # The oldest connection without a request head makes room; when every
                # one is busy with a request, the newcomer goes.
                oldest = next(iter(waiting))
                logger.warning(
                    "%d connections open: closing the ones that sent no request yet", limit
                )
                oldest.transport.close()
                waiting.pop(oldest, None)

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:
                self._head_received()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._await_head()  # a kept-alive connection's next request

        def connection_lost(self, exc: Exception | None) -> None:
            self._head_received()
            super().connection_lost(exc)

        def _await_head(self) -> None:
            self._head_received()
            waiting[self] = None
            self._head_deadline = self.loop.call_later(header_timeout_s, self._head_too_slow)

        def _head_received(self) -> None:
            waiting.pop(self, None)
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_too_slow(self) -> None:
            self._head_deadline = None
            if self in waiting and not self.transport.is_closing():
                waiting.pop(self, None)
                self.transport.close()

    return _BoundedH11Protocol


def serve(
    config: HubConfig,
    *,
    host: str,
    port: int,
    access_log: bool = False,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
) -> None:
    """Run until interrupted (SIGINT/SIGTERM shut down cleanly and close the store)."""
    logging.getLogger("uvicorn.error").addFilter(_DropLostResponses())
    collapse = _CollapseRepeats()
    for name in ("uvicorn.error", "asyncio", __name__):
        logging.getLogger(name).addFilter(collapse)
    limit, backlog = listen_bounds(max_connections)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=host,
            port=port,
            # The CLI configured logging already (levels follow -v); keep uvicorn's own
            # dictConfig from replacing it.
            log_config=None,
            access_log=access_log,
            lifespan="on",
            timeout_graceful_shutdown=5,
            http=_bounded_protocol(limit, header_timeout_s),
            # uvicorn answers 503 from this many connections or requests in flight on.
            # Eviction keeps the open connections at ``limit`` once each burst of
            # accepts has been through connection_made; the margin of one burst keeps
            # a request that got in from a 503 meanwhile.
            limit_concurrency=limit + backlog,
            timeout_keep_alive=5,
            h11_max_incomplete_event_size=_MAX_HEAD_BYTES,
            backlog=backlog,
        )
    )
    server.run()
