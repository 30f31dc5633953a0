"""A lean HTTP/1.1 transport for httpx: h11 over asyncio protocols, keep-alive pooling.

httpx's default transport (httpcore over anyio) spends most of a request's client CPU
on bookkeeping: anyio stream wrappers, typed-attribute look-ups and a pool that scans
every connection several times per request. On the reference machine that is about
1.7 ms of CPU per request, more than the rest of the tool's work on it; ``apply`` at
parallelism 16 and ``plan``'s concurrent paging are bounded by it. This transport does
the same exchange (the same h11 state machine that httpcore uses) directly on an
:class:`asyncio.Protocol` and keeps idle connections in a per-origin stack.

What it does and does not do, on purpose:

- HTTP/1.1 only, one request per connection at a time, bodies read whole (the API
  answers small JSON documents; a response over ``max_response_bytes`` is an error);
- keep-alive: an idle connection is reused unless the server closed it, sent anything
  unasked, or it has been idle ``keepalive_expiry`` seconds; a connection is never
  re-tried after a failure (a lost answer to a create must reach the caller, which
  settles it by marker);
- at most ``max_connections`` at once; a request waits for one up to the pool timeout;
- timeouts from the request's ``timeout`` extension (connect, read, write, pool) and
  httpx's exception classes, so callers cannot tell it from httpx's own transport;
- TLS with the context it is given (built lazily, only when an https origin is used).

Proxies are httpx's job: ``CoderClient`` uses this transport only when no proxy is
configured in the environment, and httpx's default transport otherwise.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from typing import Any

import h11
import httpx

__all__ = ["DEFAULT_KEEPALIVE_EXPIRY", "LeanTransport"]

Origin = tuple[str, str, int]  # scheme, host, port

# Below the common 5 s keep-alive of servers (uvicorn's included), so a connection is
# rarely reused just as the server gives up on it.
DEFAULT_KEEPALIVE_EXPIRY = 4.0
_READ_CHUNK_LIMIT = 1 << 20  # stop reading from the socket while this much waits
_HAPPY_EYEBALLS_DELAY = 0.25  # seconds before trying the next address (RFC 8305)
# How much of an unfinished head h11 may buffer: httpcore's value (h11's own is 16 KiB).
_MAX_INCOMPLETE_EVENT_SIZE = 100 * 1024


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection and its h11 state machine."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_INCOMPLETE_EVENT_SIZE)
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._eof = False
        self._error: BaseException | None = None
        self._reader: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._paused_reading = False
        self._lost = False  # connection_lost was called: the transport is gone

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > _READ_CHUNK_LIMIT and self.transport is not None:
            self.transport.pause_reading()
            self._paused_reading = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._eof = True
        self._error = exc
        self._wake_reader()
        self.resume_writing()  # wake a writer; it sees the connection gone

    def pause_writing(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def _wake_reader(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    # -- state -----------------------------------------------------------------------

    def reusable_at(self, now: float, expiry: float) -> bool:
        """Idle, open, nothing unasked received, not expired."""
        return (
            self.transport is not None
            and not self.transport.is_closing()
            and not self._eof
            and not self._buffer
            and self.h11.our_state is h11.IDLE
            and now - self.idle_since < expiry
        )

    # Not once the connection is lost: a selector transport closed gracefully after
    # flushing its buffer raises AttributeError from abort() (CPython clears its loop).
    def close(self) -> None:
        if self.transport is not None and not self._lost:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self._lost:
            self.transport.abort()

    # -- I/O -------------------------------------------------------------------------

    async def write(self, data: bytes, timeout: float | None) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        self.transport.write(data)
        if self._drain is not None and not self._drain.done():
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._drain)
            if self._eof and self.transport.is_closing():
                raise ConnectionResetError("connection lost while sending")

    async def read(self, timeout: float | None) -> bytes:
        """What arrived so far, waiting up to ``timeout`` for something; b"" at EOF."""
        if not self._buffer and not self._eof:
            self._reader = asyncio.get_running_loop().create_future()
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for drops a cancel that
                # arrives as the future completes.
                async with asyncio.timeout(timeout):
                    await self._reader
            finally:
                self._reader = None
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            if self._paused_reading and self.transport is not None:
                self._paused_reading = False
                self.transport.resume_reading()
            return data
        if self._error is not None:  # a reset is no end of stream (httpx: ReadError)
            raise self._error
        return b""


class LeanTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` over pooled HTTP/1.1 connections (see module doc)."""

    def __init__(
        self,
        *,
        ssl_context: Callable[[], ssl.SSLContext] | ssl.SSLContext | None = None,
        max_connections: int = 100,
        max_keepalive: int = 40,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        max_response_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_connections < 1 or max_keepalive < 0:
            raise ValueError("max_connections must be >= 1 and max_keepalive >= 0")
        self._ssl_source = ssl_context
        self._ssl: ssl.SSLContext | None = (
            ssl_context if isinstance(ssl_context, ssl.SSLContext) else None
        )
        self.max_connections = max_connections
        self.max_keepalive = max_keepalive
        self.keepalive_expiry = keepalive_expiry
        self.max_response_bytes = max_response_bytes
        self._clock = clock
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open = 0  # connections in use or idle
        self._waiters: list[asyncio.Future[None]] = []
        self._closed = False
        self.connections_made = 0  # for tests and diagnostics

    # -- httpx interface -------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        port = url.port or (443 if scheme == "https" else 80)
        # The host as sent (IDNA-encoded ASCII, IPv6 without brackets), as httpcore uses.
        origin: Origin = (scheme, url.raw_host.decode("ascii"), port)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = await request.aread()
        connection = await self._acquire(origin, request, timeouts)
        reusable = False
        try:
            response, reusable = await self._exchange(connection, request, body, timeouts)
        finally:
            self._release(connection, reusable)
        return response

    async def aclose(self) -> None:
        self._closed = True
        for stack in self._idle.values():
            for connection in stack:
                connection.close()
                self._open -= 1
        self._idle.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- pool ------------------------------------------------------------------------

    async def _acquire(
        self, origin: Origin, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> _Connection:
        deadline_left = timeouts.get("pool")
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            connection = self._take_idle(origin)
            if connection is not None:
                return connection
            if self._open < self.max_connections:
                self._open += 1
                try:
                    return await self._connect(origin, request, timeouts.get("connect"))
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
            if self._idle_total():
                # Full, but idle connections to other origins: give one up.
                self._drop_one_idle()
                continue
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            left = None if deadline_left is None else deadline_left - (loop.time() - started)
            try:
                if left is not None and left <= 0:
                    raise TimeoutError
                async with asyncio.timeout(left):
                    await waiter
            except BaseException as exc:
                # Timed out or cancelled after being woken: pass the free connection on.
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()
                if isinstance(exc, TimeoutError):
                    raise httpx.PoolTimeout("no connection free in time", request=request) from None
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if self._closed:
                raise RuntimeError("the transport is closed")

    def _idle_total(self) -> int:
        return sum(len(stack) for stack in self._idle.values())  # one origin, in practice

    def _take_idle(self, origin: Origin) -> _Connection | None:
        stack = self._idle.get(origin)
        now = self._clock()
        while stack:
            connection = stack.pop()  # most recently used first: the likeliest alive
            if connection.reusable_at(now, self.keepalive_expiry):
                return connection
            connection.close()
            self._open -= 1
        return None

    def _drop_one_idle(self) -> None:
        for stack in self._idle.values():
            if stack:
                stack.pop(0).close()  # the oldest
                self._open -= 1
                return

    def _release(self, connection: _Connection, reusable: bool) -> None:
        if reusable and not self._closed and self._idle_total() < self.max_keepalive:
            connection.idle_since = self._clock()
            self._idle.setdefault(connection.origin, []).append(connection)
        else:
            if reusable:
                connection.close()
            else:
                connection.abort()
            self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(
        self, origin: Origin, request: httpx.Request, timeout: float | None
    ) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = self._ssl_for() if scheme == "https" else None
        try:
            # In this task (no wait_for): a cancel at any point closes the new socket.
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(origin),
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                    # Happy Eyeballs (RFC 8305), as anyio does for httpcore: a host whose
                    # IPv6 route is black-holed still connects over IPv4 at once, instead
                    # of the first address taking the whole connect timeout.
                    happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}", request=request) from None
        except OSError as exc:  # refused, unreachable, DNS, TLS verification (SSLError)
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from None
        self.connections_made += 1
        return connection

    def _ssl_for(self) -> ssl.SSLContext:
        if self._ssl is None:
            source = self._ssl_source
            self._ssl = source() if callable(source) else httpx.create_ssl_context()
        return self._ssl

    # -- one exchange ----------------------------------------------------------------

    async def _exchange(
        self,
        connection: _Connection,
        request: httpx.Request,
        body: bytes,
        timeouts: dict[str, float | None],
    ) -> tuple[httpx.Response, bool]:
        state = connection.h11
        target = request.url.raw_path
        try:
            data = state.send(
                h11.Request(method=request.method, target=target, headers=request.headers.raw)
            )
            assert data is not None
            if body:
                data += state.send(h11.Data(data=body)) or b""
            data += state.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from None
        try:
            await connection.write(data, timeouts.get("write"))
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request", request=request) from None
        except OSError:
            # As httpcore: read on, since a server may answer early (413...) and close
            # before taking the whole body; without an answer the read fails instead.
            pass

        head: h11.Response | h11.InformationalResponse | None = None
        switch: h11.InformationalResponse | None = None
        chunks: list[bytes] = []
        size = 0
        read_timeout = timeouts.get("read")
        while True:
            try:
                event = state.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc), request=request) from None
            if event is h11.NEED_DATA:
                try:
                    raw = await connection.read(read_timeout)
                except TimeoutError:
                    raise httpx.ReadTimeout(
                        "timed out waiting for the response", request=request
                    ) from None
                except OSError as exc:
                    raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from None
                if not raw and head is None:
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response.", request=request
                    )
                state.receive_data(raw)
                continue
            if isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.max_response_bytes:
                    raise httpx.RemoteProtocolError(
                        f"response body over {self.max_response_bytes} bytes", request=request
                    )
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a complete response.", request=request
                )
            elif isinstance(event, h11.InformationalResponse):  # 1xx: only a 101 matters
                switch = event
            elif event is h11.PAUSED:
                # A protocol switch (101 to an Upgrade, 2xx to a CONNECT): the connection
                # no longer speaks HTTP. Answer what switched it, as httpx does.
                head = head or switch
                break
        assert head is not None
        # Bytes after the answer (unasked) mean the connection cannot be trusted again.
        reusable = (
            state.our_state is h11.DONE
            and state.their_state is h11.DONE
            and not state.trailing_data[0]
        )
        if reusable:
            state.start_next_cycle()
        extensions: dict[str, Any] = {
            "http_version": b"HTTP/" + head.http_version,
            "reason_phrase": bytes(head.reason),
        }
        response = httpx.Response(
            status_code=head.status_code,
            headers=head.headers.raw_items(),  # the server's spelling, as httpcore keeps it
            stream=httpx.ByteStream(b"".join(chunks)),
            extensions=extensions,
            request=request,
        )
        return response, reusable
