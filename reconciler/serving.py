"""Bounded HTTP serving, for every server we run: ``hub serve`` and ``watch --metrics-port``.

uvicorn serves and Starlette answers; this module bounds them, so that a flood of
connections that never finish their request neither exhausts the process's file
descriptors, nor locks out a legitimate client, nor fills the log:

- uvicorn's own settings bound what they can (:func:`bounded_server`):
  ``limit_concurrency`` (503 beyond that many connections or requests in flight),
  ``timeout_keep_alive`` (an idle kept-alive connection is closed),
  ``h11_max_incomplete_event_size`` (the size of a request head) and ``backlog``.
- What uvicorn lacks, in a subclass of its h11 protocol (h11 and uvicorn's request cycle
  still write every byte; a Starlette response is the answer):

  * a head deadline: a connection whose request head is not complete
    ``header_timeout_s`` after it opened (or after its previous response) is closed;
  * a body deadline: a request whose body is not complete ``body_timeout_s`` after its
    head is answered 408 and its connection closed (only closed when its handler has
    answered already, without reading the body, or started to);
  * room at the limit: uvicorn accepts every connection whatever ``limit_concurrency``
    says, and each holds a descriptor until its client goes. A connection beyond
    ``max_connections`` makes room by ending the one that has waited longest for the
    rest of a request: one that sent part of it (closed when it was a head, answered 503
    when a body), else one that sent nothing for :data:`GRACE_S`. Connections just
    opened keep their grace up to a burst of accepts beyond the limit, and one whose
    whole request head waits in its socket, not read yet, is never taken for silent:
    the server meets a burst's connections a loop tick or two before their requests.
    When every connection has sent its request in full, uvicorn answers 503
    (``limit_concurrency``): a client that sends its request at once is answered, never
    dropped.

  The limit and the backlog are lowered to fit ``RLIMIT_NOFILE`` (:func:`listen_bounds`).
- A client gone mid-request is no bug: Starlette's ``ClientDisconnect`` ends the request
  quietly instead of a traceback per disconnect (:class:`QuietDisconnects`).
- The listen queue is longer than the accepts of one loop tick (asyncio takes one number
  for both): a burst waits in the kernel, costing no descriptor of ours, rather than
  have its SYNs dropped (a client then waits a second before it tries again).
- asyncio logs a traceback for every failed ``accept()`` (CPython 3.11 does so up to
  ``backlog`` times per loop tick), and uvicorn a line per refused request: while a
  server runs, repeats of one message are collapsed to one line per :data:`LOG_WINDOW_S`
  with a count (:func:`collapsed_logs`).

uvicorn, h11 and Starlette load when a server is configured, not with this module: the
CLI reads the defaults here for its help.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import resource
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal

from reconciler.errors import UsageError

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DEFAULT_BODY_TIMEOUT_S",
    "DEFAULT_HEADER_TIMEOUT_S",
    "FD_RESERVE",
    "LOG_WINDOW_S",
    "Bounds",
    "CollapseRepeats",
    "QuietDisconnects",
    "bind_listener",
    "bounded_server",
    "collapsed_logs",
    "listen_bounds",
    "serving_in_loop",
]

DEFAULT_HEADER_TIMEOUT_S = 10.0
# From the head to the last byte of the body: a 1 MB body (the API's largest) at 35 KB/s.
DEFAULT_BODY_TIMEOUT_S = 30.0
KEEP_ALIVE_S = 5
MAX_HEAD_BYTES = 16 * 1024
# Descriptors kept for everything but client connections: the listening socket, the
# database and its WAL, logs, the event loop.
FD_RESERVE = 64
# uvicorn's backlog is how many connections asyncio accepts in one loop tick, before
# any of them reaches the protocol (to make room or be refused): a burst. Beyond the
# limit the descriptors held are bursts: three of connections uvicorn still serves
# (limit_concurrency), one being accepted, two ended and not yet closed.
MAX_BACKLOG = 128
_BURSTS_IN_FLIGHT = 6
# The listen queue: connections the kernel holds until they are accepted (asyncio sets
# it to the backlog; it costs no descriptor of ours, so it is lengthened after).
LISTEN_QUEUE = 4096
LOG_WINDOW_S = 10.0
# A connection that sent nothing yet is not made to give way this soon after it opened:
# a client sends its request at once, and a burst of new connections must not push out
# one whose request is on its way.
GRACE_S = 0.5
# The empty line that ends a request head (h11 takes a bare LF too).
_HEAD_END = re.compile(rb"\n\r?\n")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bounds:
    """How much one server may take: connections, and seconds for a request's head and
    body; ``fd_reserve`` descriptors are left to the rest of the process."""

    max_connections: int
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    fd_reserve: int = FD_RESERVE


def listen_bounds(
    requested: int, *, reserve: int = FD_RESERVE, soft_fd_limit: int | None = None
) -> tuple[int, int]:
    """``(connection limit, backlog)`` for ``requested`` connections: lowered so that the
    connections, the bursts beyond them and ``reserve`` descriptors fit ``RLIMIT_NOFILE``."""
    if soft_fd_limit is None:
        soft_fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_fd_limit == resource.RLIM_INFINITY:
        return requested, min(MAX_BACKLOG, requested)
    spare = max(0, soft_fd_limit - reserve)
    backlog = max(8, min(MAX_BACKLOG, requested, spare // (2 * _BURSTS_IN_FLIGHT)))
    return max(1, min(requested, spare - _BURSTS_IN_FLIGHT * backlog)), backlog


def bind_listener(host: str, port: int, what: str) -> socket.socket:
    """A socket bound to ``host:port`` (0: a port the system chooses), before anything
    says it serves there: a port in use is a usage error naming ``what`` (exit 64),
    not the server's own failure after its banner."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host, port), family=family, reuse_port=False)
    except OSError as exc:
        # create_server appends the address to strerror: the errno says it plainly.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise UsageError(f"cannot serve {what} on {host}:{port}: {reason}") from None
    # The same descriptor, its protocol named: asyncio disables Nagle's algorithm
    # (TCP_NODELAY) only on connections accepted from a socket whose ``proto`` says TCP,
    # and create_server leaves it 0. Without it, a response written in two parts (the
    # head, then a body that ends in a short segment) waited for the client's delayed
    # acknowledgement: 40 ms on every request after a connection's first.
    return socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, listener.detach())


def bounded_server(
    app: ASGIApp, bounds: Bounds, *, own_signals: bool = True, **options: Any
) -> uvicorn.Server:
    """A ``uvicorn.Server`` serving ``app`` within ``bounds`` (module doc); ``options``
    are the rest of uvicorn's settings (host, port, logging, lifespan...). Without
    ``own_signals`` uvicorn leaves SIGINT and SIGTERM to the caller."""
    import uvicorn

    limit, backlog = listen_bounds(bounds.max_connections, reserve=bounds.fd_reserve)
    # Making room keeps the open connections at ``limit``, and at ``hard_cap`` while a burst
    # of new ones gets its grace. uvicorn answers 503 when there are ``limit_concurrency``
    # connections (each busy with a request sent in full: none could make room) or
    # requests in flight. The requests of ended connections take a few ticks to see
    # their end and still count: two bursts' worth of margin.
    hard_cap = limit + backlog
    limit_concurrency = hard_cap + 2 * backlog
    config = uvicorn.Config(
        QuietDisconnects(app),
        http=_bounded_protocol(limit, hard_cap, bounds),
        limit_concurrency=limit_concurrency,
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        backlog=backlog,
        **options,
    )

    class BoundedServer(uvicorn.Server):
        async def serve(self, sockets: list[socket.socket] | None = None) -> None:
            with collapsed_logs():
                await super().serve(sockets=sockets)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            # The listen queue (module doc); ``backlog`` stays the accepts of one tick.
            for server in getattr(self, "servers", ()):
                for listener in server.sockets:
                    with listener.dup() as dup:
                        dup.listen(LISTEN_QUEUE)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if not own_signals:
                yield
                return
            with super().capture_signals():
                yield

    return BoundedServer(config)


@contextlib.asynccontextmanager
async def serving_in_loop(
    app: ASGIApp, bounds: Bounds, sock: socket.socket, **options: Any
) -> AsyncIterator[None]:
    """Serve ``app`` within ``bounds`` on ``sock`` (bound by the caller, who closes it) in
    the running event loop, for the ``async with`` block; SIGINT and SIGTERM stay the
    caller's. RuntimeError when the server stops before it started."""
    server = bounded_server(app, bounds, own_signals=False, **options)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            task.result()  # raises what stopped the server from starting
            raise RuntimeError("the server stopped before it started")
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


_Phase = Literal["head", "body"]


def _bounded_protocol(limit: int, hard_cap: int, bounds: Bounds) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with the deadlines and the room-making of the module doc."""
    import h11
    from starlette.responses import PlainTextResponse
    from uvicorn.protocols.http.h11_impl import H11Protocol

    # Connections waiting for the rest of a request, the one waiting longest first (dicts
    # keep insertion order): ``started`` sent part of it (a head cut short, or a head and
    # part of the body), ``silent`` no byte of it yet. A client that sends its request at
    # once is silent only until its first packet: room is made from the started first.
    started: dict[BoundedH11Protocol, None] = {}
    silent: dict[BoundedH11Protocol, None] = {}
    answering: set[asyncio.Task[None]] = set()

    class BoundedH11Protocol(H11Protocol):
        _phase: _Phase | None = None
        _since = 0.0  # loop time the current phase began
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._follow()
            if len(self.connections) > limit:
                self._make_room()

        def _make_room(self) -> None:
            """End the connection waiting longest for the rest of a request: a started
            one; else a silent one past its grace, or any silent one beyond
            ``hard_cap``; with none, this newcomer stays."""
            oldest = next(iter(started), None)
            if oldest is None:
                quiet = next(
                    (c for c in silent if c is not self and not c._request_waiting()), None
                )
                over = len(self.connections) > hard_cap
                if quiet is not None and (over or self.loop.time() - quiet._since >= GRACE_S):
                    oldest = quiet
            if oldest is not None:
                logger.warning(
                    "%d connections open: ending the one waiting longest for a request", limit
                )
                oldest._end(HTTPStatus.SERVICE_UNAVAILABLE)

        def _request_waiting(self) -> bool:
            """Whether a whole request head waits in the socket, not read yet: a client
            that sent its request at once is not silent, whatever its place in a burst
            (the server meets a burst's connections a loop tick or two before their
            bytes). Part of a head waiting does not count: read, it is a started one."""
            sock = self.transport.get_extra_info("socket")
            fd = sock.fileno() if sock is not None else -1
            if fd < 0:
                return False
            try:
                peek = socket.socket(fileno=fd)  # the loop's descriptor: detached after
            except OSError:
                return False
            try:
                waiting = peek.recv(MAX_HEAD_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except OSError:
                return False
            finally:
                peek.detach()
            return _HEAD_END.search(waiting) is not None

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._phase == "head" and self in silent:
                del silent[self]
                started[self] = None

        def handle_events(self) -> None:
            super().handle_events()
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow()

        def connection_lost(self, exc: Exception | None) -> None:
            self._enter(None)
            super().connection_lost(exc)

        def _follow(self) -> None:
            """Start (or stop) the deadline that the request's progress calls for."""
            state = self.conn.their_state
            phase: _Phase | None = None
            if not self.transport.is_closing():
                phase = "head" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None
            if phase != self._phase:
                self._enter(phase)

        def _enter(self, phase: _Phase | None) -> None:
            started.pop(self, None)
            silent.pop(self, None)
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            self._phase = phase
            if phase is not None:
                self._since = self.loop.time()
                (silent if phase == "head" else started)[self] = None
                seconds = bounds.header_timeout_s if phase == "head" else bounds.body_timeout_s
                self._deadline = self.loop.call_later(seconds, self._too_slow)

        def _too_slow(self) -> None:
            self._deadline = None
            # Two messages, so that each is collapsed with its own kind (CollapseRepeats).
            if self._phase == "head":
                logger.warning("closing connections whose request head did not come in time")
            else:
                logger.warning("answering 408 to requests whose body did not come in time")
            self._end(HTTPStatus.REQUEST_TIMEOUT)

        def _end(self, status: HTTPStatus) -> None:
            """Answer ``status`` to a request whose handler has not answered yet, then
            close; close at once anything else."""
            phase, cycle = self._phase, self.cycle
            self._enter(None)
            # Ended, it no longer counts against the limits (uvicorn's too), though its
            # descriptor stays until the close is through: a burst's worth at most.
            self.connections.discard(self)
            if phase == "body" and cycle is not None and not cycle.response_started:
                cycle.keep_alive = False
                answer = self.loop.create_task(self._answer(cycle, status))
                answering.add(answer)  # held until done (the loop keeps weak references)
                answer.add_done_callback(answering.discard)
            elif not self.transport.is_closing():
                self.transport.close()

        async def _answer(self, cycle: Any, status: HTTPStatus) -> None:
            # cycle: uvicorn's RequestResponseCycle, whose ASGI types are uvicorn's.
            if cycle.response_started or cycle.disconnected:
                self.transport.close()
                return
            answer = PlainTextResponse(status.phrase, status, headers={"Connection": "close"})
            # The handler waiting for the body then reads http.disconnect.
            await answer(cycle.scope, cycle.receive, cycle.send)

    return BoundedH11Protocol


class QuietDisconnects:
    """ASGI middleware: once the app has read ``http.disconnect`` (its client went, or
    the server answered for it), what it still sends is dropped and Starlette's
    ``ClientDisconnect`` ends the request without a traceback."""

    def __init__(self, app: ASGIApp) -> None:
        from starlette.requests import ClientDisconnect

        self.app = app
        self._disconnect = ClientDisconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        gone = False

        async def watched_receive() -> Message:
            nonlocal gone
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            return message

        async def guarded_send(message: Message) -> None:
            if not gone:
                await send(message)

        try:
            await self.app(scope, watched_receive, guarded_send)
        except self._disconnect:
            if not gone:
                raise


class CollapseRepeats(logging.Filter):
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


# Where a flood's repeats are logged: asyncio (failed accepts), uvicorn (refused and
# malformed requests), and this module (connections ended).
_FLOOD_LOGGERS = ("asyncio", "uvicorn.error", __name__)


@contextlib.contextmanager
def collapsed_logs(window_s: float = LOG_WINDOW_S) -> Iterator[None]:
    """Collapse repeated records (:class:`CollapseRepeats`) of the loggers a flood fills,
    for the ``with`` block (a server's lifetime)."""
    collapse = CollapseRepeats(window_s)
    loggers = [logging.getLogger(name) for name in _FLOOD_LOGGERS]
    for each in loggers:
        each.addFilter(collapse)
    try:
        yield
    finally:
        for each in loggers:
            each.removeFilter(collapse)
