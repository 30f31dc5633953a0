"""Fault knobs: added latency, refused requests (503, no effect), lost responses.

Applied to the API routes (``/hub/...`` and ``/api/hub/...``) only, not to ``/coder``
or the admin route, so tests can set up state reliably while a client under test
sees the faults. With a seed, the sequence of decisions is reproducible: each request
draws exactly two numbers, in arrival order.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.hub.config import HubConfig
from reconciler.hub.errors import LostResponse, error_response

__all__ = ["FaultDecider", "FaultMiddleware", "faults_apply_to"]

logger = logging.getLogger(__name__)

_API_PREFIXES = ("/hub/", "/api/hub/")
_ADMIN_SUFFIX = "/_admin"


def faults_apply_to(path: str) -> bool:
    return path.startswith(_API_PREFIXES) and not path.rstrip("/").endswith(_ADMIN_SUFFIX)


class FaultDecider:
    """Decides, per request, whether to refuse it and whether to lose its response."""

    def __init__(self, fail_rate: float, lost_response_rate: float, seed: int | None) -> None:
        self.fail_rate = fail_rate
        self.lost_response_rate = lost_response_rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def decide(self) -> tuple[bool, bool]:
        """``(fail, lose)``; both numbers are always drawn so a seed replays exactly."""
        with self._lock:
            fail_draw = self._random.random()
            lose_draw = self._random.random()
        fail = fail_draw < self.fail_rate
        return fail, (not fail) and lose_draw < self.lost_response_rate


class FaultMiddleware:
    """ASGI middleware applying the config's fault knobs to API requests."""

    def __init__(self, app: ASGIApp, config: HubConfig) -> None:
        self.app = app
        self.latency_s = config.latency_ms / 1000
        self.decider = FaultDecider(config.fail_rate, config.lost_response_rate, config.seed)
        self.active = bool(config.latency_ms or config.fail_rate or config.lost_response_rate)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.active or scope["type"] != "http" or not faults_apply_to(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        fail, lose = self.decider.decide()
        if fail:
            response = error_response(
                503, "CODER_UNAVAILABLE", "the hub refused this request (fault knob --fail-rate)"
            )
            await response(scope, receive, send)
            return
        if not lose:
            await self.app(scope, receive, send)
            return

        async def send_head_only(message: Message) -> None:
            # The head (with its Content-Length) goes out; the body never does, so the
            # client sees the connection close mid-response, as with a real network fault.
            if message["type"] == "http.response.start":
                await send(message)

        await self.app(scope, receive, send_head_only)
        logger.info("fault knob: dropping the response to %s %s", scope["method"], scope["path"])
        raise LostResponse(f"{scope['method']} {scope['path']}: response dropped (fault knob)")
