"""LeanTransport against scripted servers on 127.0.0.1: framing, keep-alive, limits, faults.

Each test starts an ``asyncio`` server whose handler plays one behaviour (a well-formed
answer, a dropped connection, a stall...) and checks what httpx's callers would see:
the same responses and the same exception classes as with httpx's own transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.client.transport import LeanTransport, _Connection

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


@dataclass
class Server:
    port: int = 0
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    bodies: list[bytes] = field(default_factory=list)
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """One request: its request line, headers (lower-cased names) and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get(b"content-length", b"0"))
    body = await reader.readexactly(length) if length else b""
    return lines[0], headers, body


async def requests_until_closed(
    reader: asyncio.StreamReader,
) -> AsyncIterator[tuple[bytes, dict[bytes, bytes], bytes]]:
    """Each request on a kept-alive connection, until the client goes."""
    while True:
        try:
            yield await read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            return


def answer(body: bytes, *, status: str = "200 OK", extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


async def serve_json_forever(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
) -> None:
    """Keep-alive: answer every request on the connection with its body echoed."""
    async for line, _, body in requests_until_closed(reader):
        server.bodies.append(body)
        writer.write(answer(json.dumps({"line": line.decode(), "n": len(body)}).encode()))
        await writer.drain()


@asynccontextmanager
async def scripted(handler: Handler, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    state = Server(scheme="https" if tls else "http")

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        state.open_now += 1
        state.most_open = max(state.most_open, state.open_now)
        try:
            await handler(reader, writer, state)
        finally:
            state.open_now -= 1
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=tls)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()


async def get(client: httpx.AsyncClient, url: str, **kwargs: object) -> httpx.Response:
    return await client.get(url, **kwargs)  # type: ignore[arg-type]


async def test_keep_alive_reuses_one_connection_and_posts_bodies_intact() -> None:
    async with (
        scripted(serve_json_forever) as server,
        httpx.AsyncClient(transport=LeanTransport()) as client,
    ):
        for i in range(5):
            response = await client.post(f"{server.url}/hub/session?i={i}", json={"i": i})
            assert response.status_code == 200
            assert response.json()["line"] == f"POST /hub/session?i={i} HTTP/1.1"
    assert server.connections == 1
    assert [json.loads(b) for b in server.bodies] == [{"i": i} for i in range(5)]


async def test_chunked_and_gzip_bodies_are_decoded() -> None:
    payload = json.dumps({"sessions": list(range(1000))}).encode()
    packed = gzip.compress(payload)

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server
    ) -> None:
        await read_request(reader)
        head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunks = [packed[i : i + 700] for i in range(0, len(packed), 700)]
        writer.write(head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n")
        await writer.drain()
        await reader.read()  # hold the connection until the client goes

    async with scripted(handler) as server, httpx.AsyncClient(transport=LeanTransport()) as client:
        response = await get(client, server.url)
    assert response.json() == {"sessions": list(range(1000))}


async def test_connection_close_answers_are_not_reused() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server
    ) -> None:
        await read_request(reader)
        writer.write(answer(b"{}", extra="Connection: close\r\n"))
        await writer.drain()

    async with scripted(handler) as server:
        transport = LeanTransport()
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(3):
                assert (await get(client, server.url)).status_code == 200
    assert server.connections == 3 == transport.connections_made


async def test_an_idle_connection_the_server_closed_is_replaced_not_failed() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server
    ) -> None:
        await read_request(reader)
        writer.write(answer(b"{}"))  # keep-alive by default, then closed anyway
        await writer.drain()

    async with scripted(handler) as server, httpx.AsyncClient(transport=LeanTransport()) as client:
        for _ in range(3):
            assert (await get(client, server.url)).status_code == 200
            await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle
    assert server.connections == 3


async def test_unasked_bytes_on_an_idle_connection_retire_it() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await read_request(reader)
        writer.write(answer(b"{}") + (b"garbage" if server.connections == 1 else b""))
        await writer.drain()
        await reader.read()

    async with scripted(handler) as server, httpx.AsyncClient(transport=LeanTransport()) as client:
        assert (await get(client, server.url)).status_code == 200
        await asyncio.sleep(0.05)
        assert (await get(client, server.url)).status_code == 200
    assert server.connections == 2


async def test_an_expired_keep_alive_is_not_reused() -> None:
    now = [0.0]
    transport = LeanTransport(keepalive_expiry=4.0, clock=lambda: now[0])
    async with scripted(serve_json_forever) as server, httpx.AsyncClient(transport=transport) as c:
        await get(c, server.url)
        now[0] += 3.9
        await get(c, server.url)
        now[0] += 4.1
        await get(c, server.url)
    assert server.connections == 2


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"", "without sending a response"),
        (b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"half":', "complete"),
        (b"NOT HTTP AT ALL\r\n\r\n", "."),
    ],
    ids=["nothing", "half-a-body", "not-http"],
)
async def test_a_dropped_or_garbled_answer_is_a_remote_protocol_error(
    reply: bytes, message: str
) -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server
    ) -> None:
        await read_request(reader)
        writer.write(reply)
        await writer.drain()

    transport = LeanTransport()
    async with scripted(handler) as server, httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.RemoteProtocolError, match=message):
            await client.post(server.url, json={"create": True})
        # The broken connection was thrown away: the pool is empty again.
        assert transport._open == 0


async def test_timeouts_raise_httpx_classes() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with scripted(stall) as server, httpx.AsyncClient(transport=LeanTransport()) as client:
        with pytest.raises(httpx.ReadTimeout):
            await get(client, server.url, timeout=httpx.Timeout(5.0, read=0.2))


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed when the block ends: nobody listens
    async with httpx.AsyncClient(transport=LeanTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await get(client, f"http://127.0.0.1:{port}/")


async def test_at_most_max_connections_are_open_and_every_request_is_answered() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        async for _request in requests_until_closed(reader):
            await asyncio.sleep(0.02)
            writer.write(answer(b"{}"))
            await writer.drain()

    transport = LeanTransport(max_connections=3)
    async with scripted(slow) as server, httpx.AsyncClient(transport=transport) as client:
        answers = await asyncio.gather(*(get(client, server.url) for _ in range(20)))
    assert [r.status_code for r in answers] == [200] * 20
    assert server.most_open <= 3 and server.connections == 3


async def test_waiting_for_a_connection_times_out_as_a_pool_timeout() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server) -> None:
        await read_request(reader)
        await asyncio.sleep(2)

    transport = LeanTransport(max_connections=1)
    async with scripted(stall) as server, httpx.AsyncClient(transport=transport) as client:
        first = asyncio.create_task(get(client, server.url))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await get(client, server.url, timeout=httpx.Timeout(5.0, pool=0.1))
        first.cancel()


async def test_a_cancelled_request_gives_its_connection_slot_back() -> None:
    calls = []

    async def first_stalls(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        calls.append(server.connections)
        await read_request(reader)
        if server.connections == 1:
            await asyncio.sleep(5)
        writer.write(answer(b"{}"))
        await writer.drain()
        await reader.read()

    transport = LeanTransport(max_connections=1)
    async with scripted(first_stalls) as server, httpx.AsyncClient(transport=transport) as client:
        hung = asyncio.create_task(get(client, server.url))
        await asyncio.sleep(0.05)
        hung.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hung
        response = await get(client, server.url, timeout=httpx.Timeout(2.0))
    assert response.status_code == 200 and calls == [1, 2]


async def test_an_oversize_answer_is_refused() -> None:
    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server) -> None:
        await read_request(reader)
        writer.write(answer(b"x" * 5000))
        await writer.drain()

    transport = LeanTransport(max_response_bytes=1000)
    async with scripted(huge) as server, httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="over 1000 bytes"):
            await get(client, server.url)


async def test_no_content_and_head_answers_keep_the_connection() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server
    ) -> None:
        async for line, _, _ in requests_until_closed(reader):
            if line.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()

    async with scripted(handler) as server, httpx.AsyncClient(transport=LeanTransport()) as client:
        assert (await client.delete(server.url)).status_code == 204
        head = await client.head(server.url)
        assert head.status_code == 200 and head.content == b""
        assert (await client.delete(server.url)).status_code == 204
    assert server.connections == 1


async def test_a_closed_transport_refuses_new_requests() -> None:
    transport = LeanTransport()
    await transport.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await transport.handle_async_request(httpx.Request("GET", "http://127.0.0.1:9/"))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


async def test_tls_verifies_the_server(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    async with scripted(serve_json_forever, tls=server_side) as server:
        async with httpx.AsyncClient(transport=LeanTransport(ssl_context=trusting)) as client:
            assert (await get(client, server.url + "/coder")).status_code == 200
            assert (await get(client, server.url + "/coder")).status_code == 200
        assert server.connections == 1
        # The default context (system CAs) does not trust a self-signed certificate.
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await get(client, server.url + "/coder")


async def test_a_body_the_server_does_not_read_times_out_as_a_write_timeout() -> None:
    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)  # never reads the body: the socket buffers fill up

    transport = LeanTransport()
    async with scripted(deaf) as server, httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.WriteTimeout):
            await client.post(
                server.url, content=b"x" * (64 << 20), timeout=httpx.Timeout(5.0, write=0.3)
            )
        assert transport._open == 0


async def test_a_server_that_half_closes_while_a_body_is_sent_frees_the_slot() -> None:
    # The server stops the exchange (FIN) but drains the body, so the client's socket
    # closes gracefully once its write buffer is flushed; aborting it afterwards must
    # neither raise from asyncio nor leak the connection slot.
    async def quits(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write_eof()
        while await reader.read(1 << 16):
            pass

    transport = LeanTransport()
    async with scripted(quits) as server, httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await client.post(server.url, content=b"x" * (16 << 20), timeout=httpx.Timeout(5.0))
        assert transport._open == 0


async def test_an_early_answer_to_a_large_body_is_returned_not_a_write_error() -> None:
    # A server refusing an upload answers before reading it, then closes the lingering
    # way (FIN, drain the rest): httpx's transport returns that answer.
    async def refuses(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            answer(
                b'{"error":"too large"}',
                status="413 Payload Too Large",
                extra="Connection: close\r\n",
            )
        )
        writer.write_eof()
        while await reader.read(1 << 16):
            pass

    transport = LeanTransport()
    async with scripted(refuses) as server, httpx.AsyncClient(transport=transport) as client:
        response = await client.post(
            server.url, content=b"x" * (16 << 20), timeout=httpx.Timeout(5.0)
        )
        assert response.status_code == 413 and response.json() == {"error": "too large"}
        assert transport._open == 0


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) rather than a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@pytest.mark.parametrize(
    "reply",
    [b"", b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[1, 2,"],
    ids=["before-the-answer", "body-ended-by-close"],
)
async def test_a_reset_connection_is_a_read_error_not_an_end_of_answer(reply: bytes) -> None:
    # httpx's transport raises ReadError; taking the reset for EOF would end a body
    # framed by the connection's close early and return it truncated as a success.
    async def resets(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server) -> None:
        await read_request(reader)
        writer.write(reply)
        await writer.drain()
        await asyncio.sleep(0.05)
        _reset(writer)

    transport = LeanTransport()
    async with scripted(resets) as server, httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ReadError):
            await get(client, server.url, timeout=httpx.Timeout(2.0))
        assert transport._open == 0


async def test_a_large_header_block_arriving_in_pieces_is_accepted() -> None:
    # httpcore lets h11 buffer up to 100 KiB of an incomplete head; h11's own default
    # (16 KiB) would refuse what httpx's transport accepts.
    async def long_head(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server
    ) -> None:
        await read_request(reader)
        data = answer(b"{}", extra=f"Link: <{'a' * 40_000}>\r\n")
        for i in range(0, len(data), 4000):
            writer.write(data[i : i + 4000])
            await writer.drain()
            await asyncio.sleep(0.002)
        await reader.read()

    async with scripted(long_head) as server, httpx.AsyncClient(transport=LeanTransport()) as c:
        response = await get(c, server.url, timeout=httpx.Timeout(2.0))
    assert response.status_code == 200 and len(response.headers["link"]) == 40_002


async def test_a_protocol_switch_ends_the_exchange_instead_of_spinning() -> None:
    # After a 101 to an Upgrade request h11 answers PAUSED, not NEED_DATA; looping on it
    # never yields to the event loop, so no timeout can end it: an alarm does.
    async def upgrades(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server
    ) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
        )
        await writer.drain()
        await reader.read()

    def spun(*_: object) -> None:
        raise TimeoutError("the transport spun without yielding")

    transport = LeanTransport()
    previous = signal.signal(signal.SIGALRM, spun)
    signal.setitimer(signal.ITIMER_REAL, 3.0)
    try:
        async with scripted(upgrades) as server, httpx.AsyncClient(transport=transport) as client:
            headers = {"Upgrade": "h2c", "Connection": "Upgrade"}
            response = await get(client, server.url, headers=headers, timeout=httpx.Timeout(2.0))
            assert response.status_code == 101  # as httpx's transport answers
            assert transport._open == 0  # the connection is no longer HTTP: not kept
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


async def test_the_answer_keeps_its_http_version_and_header_names() -> None:
    async def old(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nX-Request-ID: 7\r\n\r\nhello")
        await writer.drain()

    transport = LeanTransport()
    async with scripted(old) as server, httpx.AsyncClient(transport=transport) as client:
        response = await get(client, server.url)
        assert response.http_version == "HTTP/1.0"  # as httpx's transport reports it
        assert response.headers.raw == [(b"Content-Type", b"text/plain"), (b"X-Request-ID", b"7")]
        assert response.text == "hello" and transport._open == 0


async def test_a_cancel_arriving_with_the_answer_is_not_swallowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The task is cancelled in the same loop step as the answer completes its read;
    # on Python 3.11 asyncio.wait_for then returns the result and drops the cancel.
    tasks: list[asyncio.Task[httpx.Response]] = []
    received = _Connection.data_received

    def data_received(self: _Connection, data: bytes) -> None:
        received(self, data)
        if tasks:
            assert tasks.pop().cancel()

    monkeypatch.setattr(_Connection, "data_received", data_received)
    transport = LeanTransport()
    async with scripted(serve_json_forever) as server, httpx.AsyncClient(transport=transport) as c:
        task = asyncio.create_task(get(c, server.url, timeout=httpx.Timeout(2.0)))
        tasks.append(task)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert transport._open == 0


async def test_a_wake_up_racing_the_pool_timeout_is_passed_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The held connection comes back (waking the first waiter) in the very loop step
    # whose clock passes that waiter's pool deadline: if it times out, the wake-up must
    # go to the next waiter instead of being lost with it.
    loop = asyncio.get_running_loop()
    transport = LeanTransport(max_connections=1)
    async with scripted(serve_json_forever) as server, httpx.AsyncClient(transport=transport) as c:
        origin = ("http", "127.0.0.1", server.port)
        held = await transport._acquire(origin, httpx.Request("GET", server.url), {})
        racing = asyncio.create_task(get(c, server.url, timeout=httpx.Timeout(2.0, pool=0.5)))
        patient = asyncio.create_task(get(c, server.url, timeout=httpx.Timeout(2.0, pool=1.5)))
        while len(transport._waiters) < 2:
            await asyncio.sleep(0)
        real_time = loop.time
        monkeypatch.setattr(loop, "time", lambda: real_time() + 1.0)
        loop.call_soon(transport._release, held, True)
        outcome = (await asyncio.gather(racing, return_exceptions=True))[0]
        assert isinstance(outcome, httpx.PoolTimeout | httpx.Response)  # either is fair
        assert (await patient).status_code == 200


async def test_an_ipv6_literal_host_connects() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}", extra="Connection: close\r\n"))
        await writer.drain()
        writer.close()

    try:
        server = await asyncio.start_server(handler, "::1", 0)
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            assert (await client.get(f"http://[::1]:{port}/coder")).status_code == 200
    finally:
        server.close()


async def test_an_address_that_never_answers_does_not_hold_up_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 127.0.0.2:P never completes a handshake (a full accept queue drops the SYNs);
    # 127.0.0.1:P answers. A name resolving to both must connect through the second
    # long before the connect timeout: Happy Eyeballs, as httpx's own transport does.
    hang = socket.socket()
    try:
        hang.bind(("127.0.0.2", 0))  # all of 127/8 is loopback on Linux, not everywhere
    except OSError:
        hang.close()
        pytest.skip("127.0.0.2 is not a loopback address here")
    hang.listen(0)
    port = hang.getsockname()[1]
    queued = []
    for _ in range(3):
        stuck = socket.socket()
        stuck.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            stuck.connect(("127.0.0.2", port))
        queued.append(stuck)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}", extra="Connection: close\r\n"))
        await writer.drain()
        writer.close()

    try:
        server = await asyncio.start_server(handler, "127.0.0.1", port)
    except OSError:
        pytest.skip(f"port {port} is taken on 127.0.0.1")
    loop = asyncio.get_running_loop()
    real_getaddrinfo = loop.getaddrinfo

    async def two_addresses(host: object, *args: Any, **kwargs: Any) -> Any:
        if host == "dual.test":
            tcp = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
            return [(*tcp, ("127.0.0.2", port)), (*tcp, ("127.0.0.1", port))]
        return await real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", two_addresses)
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            response = await client.get(f"http://dual.test:{port}/", timeout=httpx.Timeout(3.0))
    finally:
        server.close()
        hang.close()
        for stuck in queued:
            stuck.close()
    assert response.status_code == 200
    assert time.monotonic() - started < 2.0
