"""CoderClient over httpx's own transport and real sockets on 127.0.0.1.

What the tool relies on from the HTTP stack: a create is sent once, whatever happens
to its answer (apply settles it by marker); a burst of parallel requests keeps its
connections for the next burst; proxies named by the environment are used.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from reconciler.client import CoderClient, RetryPolicy, core
from reconciler.errors import TransportError, UsageError

TOKEN = "socket-test-token"


@dataclass
class Server:
    url: str = ""
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, Server], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head and body; returns its request line."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return lines[0]


def answer(document: object) -> bytes:
    body = json.dumps(document).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[Server]:
    state = Server()
    handlers: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer, state)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        finally:
            writer.close()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        writers.append(writer)
        handlers.add(asyncio.ensure_future(handle(reader, writer)))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()
        for writer in writers:
            writer.close()  # a handler waiting for a request ends with the connection
        if handlers:
            await asyncio.wait(handlers, timeout=10)


async def test_a_create_whose_answer_is_lost_is_sent_once_and_reported() -> None:
    async def drop_after_reading(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: Server
    ) -> None:
        state.requests.append(await read_request(reader))
        # The effect happened (say); the connection drops before any answer.

    async with (
        serve(drop_after_reading) as server,
        CoderClient(server.url, token=TOKEN) as client,
    ):
        with pytest.raises(TransportError) as info:
            await client.create_session({"task": "t"})
    # Never re-sent by the HTTP stack nor by the client: apply settles it by marker.
    assert server.requests == [b"POST /hub/session HTTP/1.1"]
    assert (info.value.method, info.value.path) == ("POST", "/hub/session")


async def test_a_burst_of_parallel_requests_keeps_its_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    width = 50  # above httpx's default of 20 kept-alive connections
    # The pool's own limits, but an idle expiry no loaded machine reaches: on a starved
    # CPU, reading 50 answers can take longer than the 4 s expiry, and the connection
    # that answered first would then be retired before the second burst for that reason.
    limits = core.POOL_LIMITS
    monkeypatch.setattr(
        core,
        "POOL_LIMITS",
        httpx.Limits(
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=300.0,
        ),
    )
    arrived = 0
    everyone_here = asyncio.Event()

    async def answer_when_all_arrived(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: Server
    ) -> None:
        nonlocal arrived
        while True:
            state.requests.append(await read_request(reader))
            arrived += 1
            if arrived % width == 0:
                everyone_here.set()
            await asyncio.wait_for(everyone_here.wait(), timeout=60)
            writer.write(answer({"sessionId": "codesess_1", "status": "active"}))
            await writer.drain()

    # No retries: a failed request must fail the test, not open another connection.
    async with (
        serve(answer_when_all_arrived) as server,
        CoderClient(server.url, token=TOKEN, retry=RetryPolicy.never()) as client,
    ):
        for _burst in range(2):
            everyone_here.clear()
            await asyncio.gather(*(client.get_session("codesess_1") for _ in range(width)))
    assert len(server.requests) == 2 * width
    assert server.connections == width  # the second burst opened none


async def proxy_answering_as_the_hub(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
) -> None:
    """A proxy on 127.0.0.1: records each request line; answers plain-HTTP requests as the
    hub would, and refuses a tunnel (CONNECT) with 502 after recording it."""
    while True:
        line = await read_request(reader)
        server.requests.append(line)
        if line.startswith(b"CONNECT "):
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        writer.write(answer({"sessionId": "codesess_1", "status": "active"}))
        await writer.drain()


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
async def test_a_proxy_named_by_the_environment_carries_the_requests(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with serve(proxy_answering_as_the_hub) as proxy:
        monkeypatch.setenv(variable, proxy.url)
        async with CoderClient(
            "http://coder.invalid", token=TOKEN, retry=RetryPolicy.never()
        ) as client:
            session = await client.get_session("codesess_1")
    assert session["sessionId"] == "codesess_1"
    # The absolute form a proxy receives: the hub's host, not the proxy's.
    assert proxy.requests == [b"GET http://coder.invalid/hub/session/codesess_1 HTTP/1.1"]


async def test_https_through_a_proxy_opens_a_tunnel_to_the_hub(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with serve(proxy_answering_as_the_hub) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        async with CoderClient(
            "https://catalyst-usw.agentuity.cloud", token=TOKEN, retry=RetryPolicy.never()
        ) as client:
            with pytest.raises(TransportError):
                await client.get_session("codesess_1")
    assert proxy.requests == [b"CONNECT catalyst-usw.agentuity.cloud:443 HTTP/1.1"]


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def _without_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_a_plain_http_hub_loads_no_ca_bundle_yet_trusts_no_certificate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No TLS connection can be made (no proxy, no redirect followed): the CA bundle
    # (15 ms of CPU) is not loaded, and the context given instead still verifies.
    _without_proxies(monkeypatch)
    context = core._tls_verify("http://127.0.0.1:8787")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0


@pytest.mark.parametrize(
    ("url", "variable"),
    [
        ("https://catalyst-usw.agentuity.cloud", None),
        ("http://127.0.0.1:8787", "HTTPS_PROXY"),
        ("http://127.0.0.1:8787", "http_proxy"),
        ("http://127.0.0.1:8787", "ALL_PROXY"),
    ],
)
def test_a_hub_that_may_meet_tls_keeps_httpx_s_verification(
    monkeypatch: pytest.MonkeyPatch, url: str, variable: str | None
) -> None:
    # An https hub, or any hub while a proxy (perhaps an https one) is named.
    _without_proxies(monkeypatch)
    if variable is not None:
        monkeypatch.setenv(variable, "https://proxy.invalid:3128")
    assert core._tls_verify(url) is True


@pytest.mark.parametrize("variable", ["NO_PROXY", "no_proxy", "npm_config_https_proxy"])
def test_variables_that_route_no_request_still_load_no_ca_bundle(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    # httpx takes proxies for http, https and all only; NO_PROXY (common in CI) or a
    # tool's own *_proxy variable never routes a request.
    _without_proxies(monkeypatch)
    monkeypatch.setenv(variable, "localhost,127.0.0.1")
    assert isinstance(core._tls_verify("http://127.0.0.1:8787"), ssl.SSLContext)


def test_an_unreadable_trust_store_is_a_usage_error_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _without_proxies(monkeypatch)
    for cafile in (tmp_path / "missing.pem", tmp_path / "garbage.pem"):
        if cafile.name == "garbage.pem":
            cafile.write_text("not a certificate\n")
        monkeypatch.setenv("SSL_CERT_FILE", str(cafile))
        with pytest.raises(UsageError, match="SSL_CERT_FILE or SSL_CERT_DIR"):
            CoderClient("https://catalyst-usw.agentuity.cloud", token=TOKEN)
