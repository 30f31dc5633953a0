"""CoderClient over httpx.MockTransport: requests sent, shapes tolerated, errors translated."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from clientkit import BASE, CANARY, FakeTime, json_response, make_client

from reconciler import __version__
from reconciler.client import CoderClient, RetryPolicy, Timeouts
from reconciler.errors import (
    ApiError,
    BadRequestError,
    ConflictError,
    ConnectFailedError,
    ForbiddenError,
    HttpStatusError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ReconcilerError,
    ServerError,
    TransportError,
    UnauthorizedError,
    UsageError,
)

SESSION = {"sessionId": "codesess_1", "status": "active", "futureField": {"x": 1}}
PAGE = {"sessions": {"websocket": [SESSION], "sandbox": []}, "total": 1, "extra": True}


class Recorder:
    """Answers every request with ``body`` and remembers the requests."""

    def __init__(self, body: Any = None, status: int = 200) -> None:
        self.body = body if body is not None else {"sessionId": "codesess_1"}
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return json_response(self.status, self.body)


ENDPOINTS: list[tuple[str, Any, str, str, dict[str, str], Any]] = [
    # (method name, args, HTTP method, path, query without orgId, response body)
    ("discover", (), "GET", "/coder", {}, {"url": "https://coder.test/"}),
    ("create_session", ({"task": "t"},), "POST", "/hub/session", {}, {"sessionId": "s1"}),
    (
        "list_sessions",
        (),
        "GET",
        "/hub/sessions",
        {"search": "x", "includeArchived": "true", "limit": "5", "offset": "10"},
        PAGE,
    ),
    ("get_session", ("s1",), "GET", "/hub/session/s1", {}, SESSION),
    ("update_session", ("s1", {"label": "L"}), "PATCH", "/hub/session/s1", {}, {"sessionId": "s1"}),
    ("archive_session", ("s1",), "POST", "/hub/session/s1/archive", {}, {"sessionId": "s1"}),
    ("resume_session", ("s1",), "POST", "/hub/session/s1/resume", {}, {"sessionId": "s1"}),
    ("delete_session", ("s1",), "DELETE", "/hub/session/s1", {}, {"sessionId": "s1"}),
    ("get_loop", ("s1",), "GET", "/hub/session/s1/loop", {}, {"sessionId": "s1", "loop": None}),
    ("get_replay", ("s1",), "GET", "/hub/session/s1/replay", {}, {"entries": []}),
    (
        "list_participants",
        ("s1",),
        "GET",
        "/hub/session/s1/participants",
        {"limit": "3", "includeDisconnected": "true"},
        {"participants": []},
    ),
    (
        "list_events",
        ("s1",),
        "GET",
        "/hub/session/s1/events/history",
        {"limit": "50", "beforeId": "1234"},
        {"events": []},
    ),
    (
        "list_users",
        (),
        "GET",
        "/hub/users",
        {"search": "jane", "limit": "2", "offset": "4"},
        {"users": []},
    ),
]
KWARGS = {
    "list_sessions": {"search": "x", "include_archived": True, "limit": 5, "offset": 10},
    "list_participants": {"limit": 3, "include_disconnected": True},
    "list_events": {"limit": 50, "before_id": 1234},
    "list_users": {"search": "jane", "limit": 2, "offset": 4},
}


@pytest.mark.parametrize(("name", "args", "method", "path", "query", "body"), ENDPOINTS)
async def test_every_endpoint_sends_the_documented_request(
    name: str, args: Any, method: str, path: str, query: dict[str, str], body: Any
) -> None:
    recorder = Recorder(body)
    async with make_client(recorder, org_id="org_9") as client:
        result = await getattr(client, name)(*args, **KWARGS.get(name, {}))
        assert client.request_count == 1
    (request,) = recorder.requests
    assert request.method == method
    assert request.url.path == path
    assert dict(request.url.params) == {**query, "orgId": "org_9"}
    assert request.headers["x-agentuity-orgid"] == "org_9"
    assert request.headers["authorization"] == f"Bearer {CANARY}"
    assert request.headers["user-agent"] == f"coder-reconciler/{__version__}"
    assert request.headers["accept"] == "application/json"
    if len(args) == 2:
        assert json.loads(request.content) == args[1]
    assert isinstance(result, dict)


async def test_no_org_means_no_org_parameter_or_header() -> None:
    recorder = Recorder(PAGE)
    async with make_client(recorder) as client:
        await client.list_sessions()
    (request,) = recorder.requests
    assert "orgId" not in request.url.params
    assert "x-agentuity-orgid" not in request.headers
    assert dict(request.url.params) == {}  # unset filters are not sent


async def test_hub_prefix_for_a_coder_service_url() -> None:
    recorder = Recorder(SESSION)
    async with make_client(recorder, hub_prefix="/api/hub") as client:
        await client.get_session("s1")
    assert recorder.requests[0].url.path == "/api/hub/session/s1"


async def test_session_id_cannot_escape_its_route() -> None:
    recorder = Recorder(SESSION)
    async with make_client(recorder) as client:
        await client.get_session("../users?x=1")
    assert recorder.requests[0].url.raw_path == b"/hub/session/..%2Fusers%3Fx%3D1"


async def test_unknown_fields_are_kept() -> None:
    async with make_client(Recorder(PAGE)) as client:
        page = await client.list_sessions()
    async with make_client(Recorder(SESSION)) as client:
        item = await client.get_session("codesess_1")
    assert page["extra"] is True
    assert page["sessions"]["websocket"][0]["futureField"] == {"x": 1}
    assert item["futureField"] == {"x": 1}


async def test_missing_groups_and_optional_fields_are_tolerated() -> None:
    async with make_client(Recorder({"sessions": {"websocket": [{"sessionId": "a"}]}})) as c:
        page = await c.list_sessions()
    assert page["sessions"]["sandbox"] == []
    assert page["sessions"]["websocket"] == [{"sessionId": "a"}]


async def test_null_groups_and_lists_are_empty() -> None:
    body = {"sessions": {"websocket": [{"sessionId": "a"}], "sandbox": None}, "total": None}
    async with make_client(Recorder(body)) as c:
        page = await c.list_sessions()
    async with make_client(Recorder({"users": None, "total": 0})) as c:
        users = await c.list_users()
    assert page["sessions"]["sandbox"] == [] and users["users"] == []


async def test_bare_users_array_is_accepted() -> None:
    users = [{"userId": "user_1", "displayName": "Jane"}]
    async with make_client(Recorder(users)) as client:
        result = await client.list_users()
    assert result == {"users": users, "total": 1}


async def test_discover_strips_trailing_slash() -> None:
    async with make_client(Recorder({"url": "https://coder.test/", "more": 1})) as client:
        assert await client.discover() == {"url": "https://coder.test", "more": 1}


async def test_empty_lifecycle_body_is_success() -> None:
    async with make_client(lambda r: httpx.Response(204)) as client:
        assert await client.delete_session("s1") == {"sessionId": "s1"}


@pytest.mark.parametrize(
    ("name", "args", "body", "needle"),
    [
        ("create_session", ({"task": "t"},), {"status": "creating"}, "sessionId"),
        ("list_sessions", (), {"total": 0}, "'sessions' is missing"),
        ("list_sessions", (), {"sessions": []}, "expected an object"),
        ("list_sessions", (), {"sessions": {"websocket": [{"label": "x"}]}}, "sessionId"),
        ("list_sessions", (), {"sessions": {}, "total": "many"}, "total"),
        ("get_session", ("s1",), [], "expected a JSON object"),
        ("discover", (), {}, "'url'"),
        ("list_users", (), {"users": "nobody"}, "expected an array"),
        ("list_events", ("s1",), {"events": [1, 2]}, "events[0]"),
    ],
)
async def test_missing_required_fields_are_protocol_errors(
    name: str, args: Any, body: Any, needle: str
) -> None:
    async with make_client(Recorder(body)) as client:
        with pytest.raises(ProtocolError) as info:
            await getattr(client, name)(*args)
    assert needle in str(info.value)
    assert info.value.status == 200
    assert info.value.method and info.value.path


async def test_non_json_body_is_a_protocol_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, text="<html>gateway</html>", headers={"content-type": "text/html"}
        )

    async with make_client(handler) as client:
        with pytest.raises(
            ProtocolError, match=r"GET /hub/sessions HTTP 200: .*not JSON.*text/html"
        ):
            await client.list_sessions()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, UnauthorizedError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, BadRequestError),
        (422, BadRequestError),
        (429, RateLimitedError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (418, HttpStatusError),
    ],
)
async def test_every_status_is_translated(status: int, cls: type[HttpStatusError]) -> None:
    body = {"error": "Boom", "message": "it broke", "code": "CODER_X"}
    async with make_client(Recorder(body, status), retry=RetryPolicy.never()) as client:
        with pytest.raises(cls) as info:
            await client.get_session("s1")
    err = info.value
    assert type(err) is cls
    assert (err.method, err.path, err.status, err.code) == (
        "GET",
        "/hub/session/s1",
        status,
        "CODER_X",
    )
    assert err.server_message == "Boom: it broke"
    assert str(err) == f"GET /hub/session/s1 HTTP {status} CODER_X: Boom: it broke"


async def test_conflict_keeps_the_server_code() -> None:
    body = {"error": "session is archived", "code": "CODER_SESSION_ARCHIVED"}
    async with make_client(Recorder(body, 409)) as client:
        with pytest.raises(ConflictError) as info:
            await client.resume_session("s1")
    assert info.value.code == "CODER_SESSION_ARCHIVED"
    assert info.value.server_message == "session is archived"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"message": "only message"}, "only message"),
        ({"error": {"nested": 1}, "message": "fallback"}, "fallback"),
        ("plain text failure", "plain text failure"),
        ({}, None),
    ],
)
async def test_server_message_fallbacks(body: Any, expected: str | None) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(400, text=body)
        return json_response(400, body)

    async with make_client(handler) as client:
        with pytest.raises(BadRequestError) as info:
            await client.update_session("s1", {"label": "x"})
    assert info.value.server_message == expected
    assert str(info.value).endswith(expected or "the request was refused as invalid")


TRANSPORT_FAILURES: list[httpx.HTTPError] = [
    httpx.ConnectError("[Errno 111] Connection refused"),
    httpx.ConnectTimeout("timed out"),
    httpx.ReadTimeout("timed out"),
    httpx.WriteTimeout("timed out"),
    httpx.PoolTimeout("timed out"),
    httpx.ReadError("connection reset by peer"),
    httpx.WriteError("broken pipe"),
    httpx.CloseError("close failed"),
    httpx.RemoteProtocolError("Server disconnected without sending a response."),
    httpx.LocalProtocolError("bad request line"),
    httpx.ProxyError("proxy said no"),
    httpx.UnsupportedProtocol("no such scheme"),
    httpx.DecodingError("bad gzip"),
    httpx.TooManyRedirects("loop"),
]


@pytest.mark.parametrize("exc", TRANSPORT_FAILURES, ids=lambda e: type(e).__name__)
async def test_no_httpx_exception_escapes_untranslated(exc: httpx.HTTPError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    async with make_client(handler, retry=RetryPolicy.never()) as client:
        with pytest.raises(ApiError) as info:
            await client.create_session({"task": "t"})
    assert isinstance(info.value, TransportError | ProtocolError)
    assert (info.value.method, info.value.path) == ("POST", "/hub/session")
    assert info.value.__cause__ is None and info.value.__suppress_context__ is False
    assert not isinstance(info.value.__context__, httpx.HTTPError)


def test_every_httpx_error_class_is_covered() -> None:
    # A new httpx exception class should get a conscious decision (and a test row).
    def leaves(cls: type) -> set[type]:
        subs = cls.__subclasses__()
        return {cls} if not subs else set().union(*(leaves(s) for s in subs))

    covered = {type(e) for e in TRANSPORT_FAILURES}
    # HTTPStatusError is raised only by raise_for_status(), which the client never calls.
    assert leaves(httpx.HTTPError) - covered == {httpx.HTTPStatusError}


async def test_timeouts_are_configurable() -> None:
    async with make_client(Recorder(), timeouts=Timeouts(connect=1.5, read=7)) as client:
        timeout = client._http.timeout
    assert (timeout.connect, timeout.read) == (1.5, 7)
    default = Timeouts().to_httpx()
    assert (default.connect, default.read) == (5.0, 30.0)


# -- the token never leaks -------------------------------------------------------------


async def test_canary_token_never_in_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Servers and httpx may echo what they got; none of it may carry the token out."""
    echoes = iter(
        [
            httpx.Response(401, json={"error": f"bad token Bearer {CANARY}", "code": CANARY}),
            httpx.Response(500, text=f"Authorization: Bearer {CANARY}"),
            httpx.Response(200, text=f"not json {CANARY}"),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            return next(echoes)
        except StopIteration:
            raise httpx.ConnectError(
                f"failed with headers {request.headers['authorization']}"
            ) from None

    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    async with make_client(handler, retry=RetryPolicy.never(), org_id="org_1") as client:
        texts.append(repr(client))
        for _ in range(4):
            with pytest.raises(ReconcilerError) as info:
                await client.get_session("s1")
            err = info.value
            texts += [str(err), repr(err), repr(err.args), str(vars(err))]
    texts += [r.getMessage() for r in caplog.records]
    assert any("GET /hub/session/s1" in r.getMessage() for r in caplog.records)
    for text in texts:
        assert CANARY not in text


@pytest.mark.parametrize(
    "secret",
    ["plain-canary-5e1f", 'quoted "canary" \\ 5e1f', "ünïcode-canary-5e1f"],
)
async def test_env_values_sent_are_masked_in_every_error_text_after(secret: str) -> None:
    """A hub that echoes the refused body (decoded or as raw JSON text) in its error."""
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        if len(bodies) == 1:
            return httpx.Response(
                400, json={"error": "bad env", "message": request.content.decode()}
            )
        return httpx.Response(500, text=f"earlier: {bodies[0].decode()} and {secret}")

    async with make_client(handler, retry=RetryPolicy.never()) as client:
        with pytest.raises(BadRequestError) as first:
            await client.create_session({"task": "t", "env": {"A": secret, "EMPTY": ""}})
        with pytest.raises(ServerError) as later:  # a later text about another request
            await client.get_session("s1")
    assert secret.encode() in bodies[0] or json.dumps(secret).encode() in bodies[0]  # control
    for error in (first.value, later.value):
        assert secret not in str(error) and json.dumps(secret)[1:-1] not in str(error)
        assert "(sensitive)" in str(error)


@pytest.mark.parametrize("tail", ["\nX-Injected: 1", "\n", " ", "\r\n"])
async def test_malformed_token_is_refused_without_echoing_it(tail: str) -> None:
    # A trailing newline (a token read from a mounted secret file) included: `$` in a
    # pattern matches before one, so it once reached httpx as an illegal header.
    with pytest.raises(UsageError) as info:
        make_client(Recorder(), token=CANARY + tail)
    assert CANARY not in str(info.value)
    assert "trailing newline" in str(info.value)


async def test_request_count_counts_every_attempt() -> None:
    fake = FakeTime()
    statuses = iter([503, 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        return json_response(next(statuses), SESSION)

    async with make_client(handler, fake=fake) as client:
        await client.get_session("s1")
        assert client.request_count == 3


async def test_works_without_context_manager_and_base_url_slash() -> None:
    recorder = Recorder(SESSION)
    client = CoderClient(BASE + "/", token=None, transport=httpx.MockTransport(recorder))
    try:
        await client.get_session("s1")
    finally:
        await client.aclose()
    assert str(recorder.requests[0].url) == f"{BASE}/hub/session/s1"
    assert "authorization" not in recorder.requests[0].headers


async def test_list_all_groups_keeps_every_pages_sandbox_entries_once() -> None:
    # `sessions list --all` printed `"sandbox": []` whatever the hub sent.
    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        sessions = [{"sessionId": f"s{offset + i}"} for i in range(2)]
        # The same sandbox entry on both pages, and one of each page's own.
        sandbox = [{"sessionId": "box-shared"}, {"sessionId": f"box-{offset}"}]
        page = {"sessions": {"websocket": sessions, "sandbox": sandbox}, "total": 4}
        return json_response(200, page)

    async with make_client(handler, page_size=2) as client:
        items, sandbox = await client.list_all_groups()
    assert sorted(i["sessionId"] for i in items) == ["s0", "s1", "s2", "s3"]
    assert sorted(e["sessionId"] for e in sandbox) == ["box-0", "box-2", "box-shared"]


async def test_a_401_with_the_servers_own_text_still_says_where_the_token_comes_from() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return json_response(401, {"error": "missing credentials (Authorization: Bearer ...)"})

    async with make_client(handler) as client:
        with pytest.raises(UnauthorizedError) as raised:
            await client.list_sessions()
    assert "missing credentials" in str(raised.value)
    assert raised.value.__notes__ == [
        "the token comes from AGENTUITY_SDK_KEY (else AGENTUITY_CLI_KEY)"
    ]


async def test_a_connection_never_made_names_the_hub_it_tried() -> None:
    # With only a token set the default endpoint is used, and a failure hid which.
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Name or service not known")

    async with make_client(handler, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(ConnectFailedError) as raised:
            await client.list_sessions()
    assert raised.value.__notes__ == [f"tried the hub at {BASE}"]


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped")],
    ids=["timed-out", "dropped"],
)
async def test_a_hub_that_never_answers_is_named_too(failure: Exception) -> None:
    # A hub that accepts connections but never answers: the timeout said nothing of
    # which hub it was (a new user's CI waited 60 s for it).
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    async with make_client(handler, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(TransportError) as raised:
            await client.list_sessions()
    waited = ["each request waits 30 s for its answer: --timeout SECONDS (CODER_TIMEOUT) sets it"]
    timed_out = isinstance(failure, httpx.ReadTimeout)
    assert raised.value.__notes__ == [*(waited if timed_out else []), f"tried the hub at {BASE}"]


async def test_a_list_not_found_says_no_hub_answers_at_the_url() -> None:
    """Every hub lists its sessions: a 404 there is a URL that is not a hub's (a base URL
    with a path too many, the service's URL given to --api-url); one session's 404 is
    that session's."""

    def handler(request: httpx.Request) -> httpx.Response:
        return json_response(404, {"code": "CODER_NOT_FOUND", "error": "no route"})

    async with make_client(handler, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(NotFoundError) as raised:
            await client.list_sessions()
        assert raised.value.__notes__ == [
            "no hub answers at this URL: --api-url (CODER_API_URL) is the URL the hub's "
            "/hub/... paths hang from; an Agentuity service URL goes to --coder-url "
            "(AGENTUITY_CODER_URL), which adds /api"
        ]
        with pytest.raises(NotFoundError) as raised:
            await client.get_session("codesess_x")
        assert not getattr(raised.value, "__notes__", [])


async def test_a_hub_that_answers_with_an_error_is_not_told_where_again() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return json_response(500, {"error": "boom"})

    async with make_client(handler, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(ApiError) as raised:
            await client.list_sessions()
    assert not getattr(raised.value, "__notes__", [])
