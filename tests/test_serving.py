"""reconciler.serving: the bounds every server of ours keeps, in-process on 127.0.0.1.

The floods against the real servers, as subprocesses, are in tests/test_hub_serve.py
and tests/test_e2e_watch.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from reconciler import serving
from reconciler.errors import UsageError
from reconciler.serving import Bounds, CollapseRepeats, listen_bounds, serving_in_loop


def test_repeated_log_messages_collapse_without_tracebacks() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    log = logging.getLogger("test.collapse")
    log.propagate = False
    log.addHandler(Keep())
    log.addFilter(CollapseRepeats(window_s=0.2))
    error = OSError(24, "Too many open files")
    for _ in range(1000):
        log.error("socket.accept() out of system resource\nsocket: <fd=9>", exc_info=error)
    log.warning("something else")
    time.sleep(0.25)
    log.error("socket.accept() out of system resource\nsocket: <fd=9>", exc_info=error)
    lines = [record.getMessage() for record in records]
    assert lines == [
        "socket.accept() out of system resource: [Errno 24] Too many open files",
        "something else",
        "socket.accept() out of system resource: [Errno 24] Too many open files "
        "(999 more like it in the last 0.2s)",
    ]
    assert all(record.exc_info is None for record in records)


@pytest.mark.parametrize(
    ("requested", "reserve", "fds", "expected"),
    [
        (1000, 64, 20_000, (1000, 128)),
        (1000, 64, 1024, (480, 80)),
        (1000, 64, 512, (226, 37)),
        (1000, 64, 256, (96, 16)),
        (1000, 64, 64, (1, 8)),
        # The watcher's port: few connections, and its reconciles' descriptors reserved.
        (64, 164, 1024, (64, 64)),
        (64, 164, 256, (44, 8)),
    ],
)
def test_connections_and_backlog_fit_the_descriptor_limit(
    requested: int, reserve: int, fds: int, expected: tuple[int, int]
) -> None:
    limit, backlog = listen_bounds(requested, reserve=reserve, soft_fd_limit=fds)
    assert (limit, backlog) == expected
    # The connections, six bursts of accepts and the reserve fit, when they can.
    if fds > reserve + 8 * 6:
        assert limit + 6 * backlog + reserve <= fds


# -- the protocol, served in the test's loop ----------------------------------------------

BOUNDS = Bounds(max_connections=4, header_timeout_s=5, body_timeout_s=0.5)
# Four connections, bursts of eight: room is made from the fifth connection on; beyond
# 4 + 8 * 3 connections (or requests in flight) uvicorn answers 503.
LIMIT, BURST = 4, 8
LIMIT_CONCURRENCY = LIMIT + 3 * BURST


class App:
    """``POST /echo`` reads the body and answers its length; ``GET /hold`` waits for
    ``release``."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.disconnects = 0

        async def echo(request: Request) -> Response:
            try:
                body = await request.body()
            except ClientDisconnect:
                self.disconnects += 1
                raise
            return PlainTextResponse(str(len(body)))

        async def hold(request: Request) -> Response:
            await self.release.wait()
            return PlainTextResponse("held")

        self.app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/hold", hold)])


@contextlib.asynccontextmanager
async def served(app: App, bounds: Bounds = BOUNDS) -> AsyncIterator[str]:
    with contextlib.closing(serving.bind_listener("127.0.0.1", 0, "the test app")) as sock:
        options = {"log_config": None, "lifespan": "off", "timeout_graceful_shutdown": 2}
        async with serving_in_loop(app.app, bounds, sock, **options):
            yield f"127.0.0.1:{sock.getsockname()[1]}"


async def _connect(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = address.split(":")
    return await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)


def _head(path: str, length: int) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n\r\n".encode()


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """Everything until the server closes the connection."""
    return await asyncio.wait_for(reader.read(), 5)


async def test_every_connection_a_listener_accepts_has_nagle_off() -> None:
    # asyncio turns Nagle's algorithm off (TCP_NODELAY) only on connections accepted from
    # a socket whose proto says TCP; socket.create_server leaves it 0. With Nagle on, a
    # response whose body ended in a short segment waited 40 ms for the client's delayed
    # acknowledgement, on every request of a kept-alive connection after its first.
    nodelay: list[int] = []

    class Record(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            nodelay.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    loop = asyncio.get_running_loop()
    for host in ("127.0.0.1", "::1"):
        try:
            listener = serving.bind_listener(host, 0, "the test")
        except UsageError:  # no IPv6 on this machine
            assert host == "::1"
            continue
        with contextlib.closing(listener):
            server = await loop.create_server(Record, sock=listener)
            async with server:
                port = listener.getsockname()[1]
                _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
                writer.close()
                deadline = time.monotonic() + 5
                while len(nodelay) < (1 if host == "127.0.0.1" else 2):
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.01)
    assert nodelay and all(nodelay)


async def test_a_body_past_its_deadline_is_answered_408_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()
    async with served(app) as address:
        reader, writer = await _connect(address)
        writer.write(_head("/echo", 100) + b"{")
        started = time.monotonic()
        answer = await _answer(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
        assert 0.4 < time.monotonic() - started < 3
        # A whole body in time is read as usual.
        async with httpx.AsyncClient(base_url=f"http://{address}") as client:
            assert (await client.post("/echo", content=b"x" * 10)).text == "10"
    assert app.disconnects == 1  # the handler read http.disconnect, and ended quietly
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_client_gone_mid_body_is_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    app = App()
    async with served(app) as address:
        reader, writer = await _connect(address)
        writer.write(_head("/echo", 100) + b"{")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()
        # The positive signal first: the app saw the disconnect (then nothing was logged).
        deadline = time.monotonic() + 10
        while app.disconnects == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    assert app.disconnects == 1
    assert not [r for r in caplog.records if r.exc_info or "Exception" in r.getMessage()]


async def test_room_is_made_from_the_longest_waiting_partial_request() -> None:
    app = App()
    async with served(app, Bounds(max_connections=LIMIT, body_timeout_s=10)) as address:
        # Four connections at the limit: a partial head, a partial body, two silent.
        head_reader, head_writer = await _connect(address)
        head_writer.write(b"GET /hold HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        body_reader, body_writer = await _connect(address)
        body_writer.write(_head("/echo", 100) + b"{")
        silent = [await _connect(address) for _ in range(2)]
        await asyncio.sleep(0.2)
        # Each legitimate request beyond the limit makes room: the partial head goes
        # (closed), then the partial body (answered 503); the silent ones stay, since
        # there was a partial request to end each time.
        async with httpx.AsyncClient(base_url=f"http://{address}") as client:
            first = await client.post("/echo", content=b"abc")
            assert first.status_code == 200 and first.text == "3"
            assert await _answer(head_reader) == b""
        silent.append(await _connect(address))  # at the limit again
        async with httpx.AsyncClient(base_url=f"http://{address}") as client:
            assert (await client.post("/echo", content=b"abcd")).text == "4"
            answer = await _answer(body_reader)
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer
        for _reader, writer in silent:
            assert not writer.is_closing()
            writer.close()
        head_writer.close()
        body_writer.close()


async def test_beyond_the_limit_with_every_request_in_flight_the_answer_is_503() -> None:
    app = App()
    limits = httpx.Limits(max_connections=LIMIT_CONCURRENCY + 1)
    async with (
        served(app) as address,
        httpx.AsyncClient(base_url=f"http://{address}", timeout=10, limits=limits) as client,
    ):
        held = []
        try:
            # Requests in flight, none can make room: uvicorn counts each connection,
            # its own included, against limit_concurrency.
            for _ in range(LIMIT_CONCURRENCY - 1):
                held.append(asyncio.create_task(client.get("/hold")))
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            refused = await client.get("/hold")
            assert refused.status_code == 503
        finally:
            app.release.set()
        assert [(await task).status_code for task in held] == [200] * len(held)


def _peak_connections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The most connections a server made from now on counts once each newcomer made
    room (its protocol's connection_made), as a one-item list filled in as it serves."""
    peak = [0]
    made = serving._bounded_protocol

    def counting(*args: Any, **kwargs: Any) -> type[asyncio.Protocol]:
        protocol: Any = made(*args, **kwargs)
        connection_made = protocol.connection_made

        def counted(self: Any, transport: asyncio.Transport) -> None:
            connection_made(self, transport)
            peak[0] = max(peak[0], len(self.connections))

        protocol.connection_made = counted
        return cast("type[asyncio.Protocol]", protocol)

    monkeypatch.setattr(serving, "_bounded_protocol", counting)
    return peak


@pytest.mark.parametrize("sent", [b"", b"GET /hold HTTP/1.1\r\nHost: t\r\nX-Slow: "])
async def test_a_request_already_sent_is_never_ended_to_make_room(
    sent: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flood test's rare failure: a burst of connections beyond the hard cap, every one
    # silent to the server, since it had not read them yet; the oldest, ended to make room,
    # was a client whose request was waiting in its socket. The loop is held (blocking
    # calls) while the kernel queues the connections, so the server sees them at once.
    # The others send nothing, or part of a head: waiting unread, that must not protect
    # them (all kept, they passed limit_concurrency, and the client was answered 503).
    app = App()
    loop = asyncio.get_running_loop()
    peak = _peak_connections(monkeypatch)
    async with served(app, Bounds(max_connections=LIMIT)) as address:
        host, port = address.split(":")
        legit = socket.create_connection((host, int(port)), timeout=5)
        quiet = []
        try:
            legit.sendall(_head("/echo", 3) + b"abc")
            for _ in range(5 * BURST):
                quiet.append(socket.create_connection((host, int(port))))
                if sent:
                    quiet[-1].sendall(sent)
            legit.setblocking(False)
            answer = await asyncio.wait_for(loop.sock_recv(legit, 4096), 5)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
            assert answer.endswith(b"\r\n\r\n3"), answer
            # Room was made from the silent ones: each newcomer beyond the cap ended one.
            await asyncio.sleep(0.2)
            ended = 0
            for sock in quiet:
                sock.setblocking(False)
                try:
                    ended += sock.recv(1) == b""
                except ConnectionResetError:  # closed with its bytes unread
                    ended += 1
                except BlockingIOError:
                    pass
            assert ended > 0
            # Open connections stay within the hard cap (the limit and a burst): the
            # bytes of part of a head, waiting unread, protect none of them.
            assert peak[0] <= LIMIT + BURST, peak
        finally:
            legit.close()
            for sock in quiet:
                sock.close()
