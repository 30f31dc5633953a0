"""Helpers for client tests: a fake clock/sleep and a MockTransport-backed client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from reconciler.client import CoderClient, RetryPolicy

CANARY = "canary-tok-7f3e9a1b"
BASE = "https://api.test"


class FakeTime:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Handler = Callable[[httpx.Request], Any]


def make_client(
    handler: Handler,
    *,
    fake: FakeTime | None = None,
    retry: RetryPolicy | None = None,
    **kwargs: Any,
) -> CoderClient:
    fake = fake or FakeTime()
    kwargs.setdefault("token", CANARY)
    return CoderClient(
        BASE,
        transport=httpx.MockTransport(handler),
        retry=retry or RetryPolicy(jitter=False),
        sleep=fake.sleep,
        clock=fake.clock,
        **kwargs,
    )


def json_response(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)
