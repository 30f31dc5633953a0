"""The retry policy: which requests are repeated, how often, how long, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from clientkit import FakeTime, json_response, make_client

from reconciler.client import RetryPolicy
from reconciler.client.retry import parse_retry_after
from reconciler.errors import (
    ApiError,
    ConnectFailedError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
)

OK = {"sessionId": "s1", "status": "active", "sessions": {"websocket": []}, "url": "http://x"}

# Every call, and whether a failed attempt is repeated: all but create, which may have
# happened even when its answer is lost.
CALLS: list[tuple[str, Any, bool]] = [
    ("discover", (), True),
    ("list_sessions", (), True),
    ("get_session", ("s1",), True),
    ("update_session", ("s1", {"label": "x"}), True),
    ("archive_session", ("s1",), True),
    ("resume_session", ("s1",), True),
    ("delete_session", ("s1",), True),
    ("get_loop", ("s1",), True),
    ("list_users", (), True),
    ("create_session", ({"task": "t"},), False),
]


class Script:
    """Answers from a script of statuses/exceptions, then 200 OK."""

    def __init__(self, *steps: int | Exception | httpx.Response) -> None:
        self.steps = list(steps)
        self.count = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        step = self.steps.pop(0) if self.steps else 200
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return json_response(step, OK if step == 200 else {"error": "x"})


@pytest.mark.parametrize(("name", "args", "retried"), CALLS)
async def test_which_calls_are_retried(name: str, args: Any, retried: bool) -> None:
    script, fake = Script(503, 503), FakeTime()
    async with make_client(script, fake=fake) as client:
        if retried:
            await getattr(client, name)(*args)
            assert script.count == 3
            assert fake.sleeps == [0.5, 1.0]  # jitter off: the full cap, doubling
        else:
            with pytest.raises(ServerError):
                await getattr(client, name)(*args)
            assert script.count == 1
            assert fake.sleeps == []


@pytest.mark.parametrize("failure", [503, 429, 502, 504])
async def test_retryable_statuses(failure: int) -> None:
    script, fake = Script(failure, failure), FakeTime()
    async with make_client(script, fake=fake) as client:
        await client.get_session("s1")
    assert script.count == 3
    assert fake.sleeps == [0.5, 1.0]


async def test_a_create_refused_with_429_is_not_repeated() -> None:
    script, fake = Script(429), FakeTime()
    async with make_client(script, fake=fake) as client:
        with pytest.raises(RateLimitedError):
            await client.create_session({"task": "t"})
    assert script.count == 1 and fake.sleeps == []


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_connection_failures_are_retried(exc: Exception) -> None:
    script = Script(exc)
    async with make_client(script) as client:
        await client.update_session("s1", {"label": "x"})
    assert script.count == 2


async def test_a_create_whose_answer_is_lost_is_not_repeated() -> None:
    # A create whose response was lost may have happened: surface it, never repeat.
    script = Script(httpx.RemoteProtocolError("Server disconnected without sending a response."))
    async with make_client(script) as client:
        with pytest.raises(TransportError):
            await client.create_session({"task": "t"})
    assert script.count == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 500, 501])
async def test_other_statuses_are_not_retried(status: int) -> None:
    script = Script(status)
    async with make_client(script) as client:
        with pytest.raises(Exception) as info:
            await client.get_session("s1")
    assert script.count == 1
    assert info.value.status == status  # type: ignore[attr-defined]


async def test_attempts_bound() -> None:
    script, fake = Script(*[503] * 20), FakeTime()
    async with make_client(script, fake=fake, retry=RetryPolicy(jitter=False)) as client:
        with pytest.raises(ServerError):
            await client.get_session("s1")
    assert script.count == 5
    assert fake.sleeps == [0.5, 1.0, 2.0, 4.0]


async def test_delay_is_capped() -> None:
    script, fake = Script(*[503] * 20), FakeTime()
    policy = RetryPolicy(attempts=7, base_delay=1, max_delay=3, jitter=False, total_seconds=600)
    async with make_client(script, fake=fake, retry=policy) as client:
        with pytest.raises(ServerError):
            await client.get_session("s1")
    assert fake.sleeps == [1, 2, 3, 3, 3, 3]


async def test_time_bound_stops_before_a_wait_that_would_exceed_it() -> None:
    script, fake = Script(*[503] * 20), FakeTime()
    policy = RetryPolicy(attempts=50, base_delay=4, max_delay=16, jitter=False, total_seconds=30)
    async with make_client(script, fake=fake, retry=policy) as client:
        with pytest.raises(ServerError):
            await client.get_session("s1")
    # 4 + 8 = 12; + 16 = 28 <= 30; another 16 would end at 44 > 30.
    assert fake.sleeps == [4, 8, 16]
    assert script.count == 4


async def test_time_bound_counts_time_spent_in_requests() -> None:
    fake = FakeTime()

    def slow_failure(request: httpx.Request) -> httpx.Response:
        fake.now += 25  # each attempt takes 25 s (e.g. a slow gateway)
        return json_response(503, {})

    async with make_client(slow_failure, fake=fake) as client:
        with pytest.raises(ServerError):
            await client.get_session("s1")
    assert client.request_count == 3  # 25 + .5 + 25 + 1 + 25 > 60 after the third
    assert fake.now - 1000 <= 60 + 25


async def test_retry_after_seconds_is_honoured_exactly() -> None:
    script, fake = Script(httpx.Response(429, headers={"Retry-After": "7"}, json={})), FakeTime()
    async with make_client(script, fake=fake) as client:
        await client.get_session("s1")
    assert fake.sleeps == [7.0]


async def test_retry_after_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    script, fake = Script(httpx.Response(503, headers={"Retry-After": when}, json={})), FakeTime()
    async with make_client(script, fake=fake) as client:
        await client.get_session("s1")
    assert len(fake.sleeps) == 1
    assert 17 <= fake.sleeps[0] <= 20


async def test_retry_after_beyond_the_budget_is_not_waited_for() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "3600"}, json={"code": "RATE"}))
    fake = FakeTime()
    async with make_client(script, fake=fake) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.list_users()
    assert script.count == 1 and fake.sleeps == []
    assert info.value.code == "RATE"


async def test_retry_gives_up_with_the_last_error() -> None:
    script = Script(503, 503, 503, 503, 404)
    async with make_client(script) as client:
        with pytest.raises(NotFoundError):
            await client.get_session("s1")
    assert script.count == 5


async def test_full_jitter_stays_within_the_cap() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=8)
    for n in range(1, 8):
        cap = min(8, 2 ** (n - 1))
        delays = [policy.backoff(n) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert len(set(delays)) > 100  # really random: clients spread out


NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("0", 0.0),
        ("12", 12.0),
        ("1.5", 1.5),
        ("-3", None),
        ("nan", None),
        ("soon", None),
        ("", None),
        ("Wed, 01 Jan 2025 12:00:30 GMT", 30.0),
        ("Wed, 01 Jan 2025 11:00:00 GMT", 0.0),  # in the past: go now
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    assert RetryPolicy.never().attempts == 1


async def test_a_delete_gone_on_retry_after_a_lost_response_is_success() -> None:
    # The first attempt deleted it, its answer was lost; the retry meets a 404. That is
    # the outcome asked for: `sessions delete` reported failure (exit 1) where it worked.
    lost = httpx.RemoteProtocolError("peer closed connection without sending a response")
    for first in (lost, httpx.ReadTimeout("read"), 502, 504):
        script = Script(first, 404)
        async with make_client(script, fake=FakeTime()) as client:
            assert await client.delete_session("s1") == {"sessionId": "s1", "status": "deleted"}
        assert script.count == 2
    # A 404 first, or after an attempt that cannot have reached the hub (no connection,
    # none free in the pool, a 429 or 503 refusing it), stays an error: the id may be
    # wrong. Only a lost answer, a 502 or 504 (a 500 is not retried) may hide a deletion.
    refused = httpx.ConnectError("connection refused")
    for steps in ((404,), (refused, 404), (httpx.PoolTimeout("pool"), 404), (429, 404), (503, 404)):
        async with make_client(Script(*steps), fake=FakeTime()) as client:
            with pytest.raises(NotFoundError) as raised:
                await client.delete_session("s1")
            assert raised.value.after_unknown_outcome is False


@pytest.mark.parametrize(
    ("steps", "maybe"),
    [
        ((httpx.RemoteProtocolError("peer closed"),) * 5, True),  # sent, its answer lost
        ((502, 502, 502, 502, 502), True),
        ((429, 429, 429, 429, 429), False),  # refused: not carried out
        ((503, 503, 503, 503, 503), False),
        ((httpx.ConnectError("refused"),) * 5, False),  # nothing sent
        ((httpx.PoolTimeout("pool"),) * 5, False),
        ((httpx.RemoteProtocolError("lost"), 429, 429, 429, 429), True),  # an earlier one
    ],
)
async def test_an_error_says_whether_the_change_may_have_been_made(
    steps: tuple[Any, ...], maybe: bool
) -> None:
    # What `sessions ...` hint on: after a 429 or 503 they said it may have happened.
    async with make_client(Script(*steps), fake=FakeTime()) as client:
        with pytest.raises(ApiError) as raised:
            await client.archive_session("s1")
    assert raised.value.may_have_taken_effect is maybe


async def test_a_change_answered_with_a_2xx_it_cannot_read_was_made() -> None:
    # A 2xx means the hub did it: the hint must follow, as before may_have_taken_effect.
    html = httpx.Response(201, text="<html>ok</html>", headers={"content-type": "text/html"})
    async with make_client(Script(html), fake=FakeTime()) as client:
        with pytest.raises(ApiError) as raised:
            await client.create_session({"task": "t"})
    assert raised.value.may_have_taken_effect is True


async def test_a_retry_that_cannot_connect_after_a_lost_answer_is_no_connect_failure() -> None:
    # The first attempt was delivered, its answer lost; the retry could not connect.
    # "Nothing was sent" would be false, and apply would count the hub unreachable.
    lost = httpx.RemoteProtocolError("peer closed")
    refused = httpx.ConnectError("refused")
    async with make_client(Script(lost, refused, refused, refused, refused), fake=FakeTime()) as c:
        with pytest.raises(ApiError) as raised:
            await c.archive_session("s1")
    error = raised.value
    assert isinstance(error, TransportError) and not isinstance(error, ConnectFailedError)
    assert error.may_have_taken_effect is True and "nothing was sent" not in str(error)


async def test_what_never_left_says_so() -> None:
    for failure in (httpx.ProxyError("403 Forbidden"), httpx.LocalProtocolError("bad header")):
        async with make_client(Script(*(failure,) * 5), fake=FakeTime()) as client:
            with pytest.raises(ApiError) as raised:
                await client.create_session({"task": "t"})
        assert raised.value.may_have_taken_effect is False, failure


def test_an_organisation_id_no_header_carries_is_a_usage_error() -> None:
    from reconciler.client import CoderClient
    from reconciler.errors import UsageError

    with pytest.raises(UsageError, match="organisation id"):
        CoderClient("http://hub.test", token="t", org_id="ä")


@pytest.mark.parametrize(("final", "maybe"), [(400, False), (404, False), (409, True), (429, True)])
async def test_a_refusal_of_the_request_itself_says_an_earlier_attempt_was_refused_too(
    final: int, maybe: bool
) -> None:
    # After a lost answer, a 400 is the same body refused again: the first attempt was
    # refused too, and the hint to look would mislead. A 409 may be that attempt's doing.
    lost = httpx.RemoteProtocolError("peer closed")
    answer = json_response(final, {"error": "x", "code": "CODER_SOMETHING"})  # the hub's
    steps = (lost, *(answer,) * 4)
    async with make_client(Script(*steps), fake=FakeTime()) as client:
        with pytest.raises(ApiError) as raised:
            await client.resume_session("s1")
    assert raised.value.may_have_taken_effect is maybe


@pytest.mark.parametrize(
    ("final", "maybe"),
    [
        (json_response(403, {"error": "no", "code": "CODER_FORBIDDEN"}), False),  # the hub's
        (httpx.Response(403, text="<html>Request blocked</html>"), True),  # a gateway's
        (httpx.Response(408, text="timeout"), True),  # about this attempt only
    ],
)
async def test_only_the_hubs_own_refusal_says_an_earlier_attempt_was_refused(
    final: httpx.Response, maybe: bool
) -> None:
    script = Script(502, final)
    async with make_client(script, fake=FakeTime()) as client:
        with pytest.raises(ApiError) as raised:
            await client.archive_session("s1")
    assert raised.value.may_have_taken_effect is maybe


async def test_the_retry_that_cannot_connect_names_the_hub_and_its_reason() -> None:
    lost = httpx.RemoteProtocolError("peer closed")
    refused = httpx.ConnectError("Connection refused")
    async with make_client(Script(lost, *(refused,) * 4), fake=FakeTime()) as client:
        with pytest.raises(TransportError) as raised:
            await client.archive_session("s1")
    text = str(raised.value)
    assert "Connection refused" in text and "nothing was sent" not in text
    assert raised.value.__notes__ == ["tried the hub at https://api.test"]
