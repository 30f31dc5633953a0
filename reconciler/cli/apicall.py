"""What the API commands share: one client per run, ``--format``, JSON output."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from reconciler import asyncrun
from reconciler.cli import jsonout
from reconciler.cli.context import format_option as context_format_option
from reconciler.cli.context import hub_endpoint
from reconciler.client import CoderClient
from reconciler.connect import open_client
from reconciler.masking import SENSITIVE
from reconciler.settings import GlobalOptions

__all__ = ["SENSITIVE", "call_api", "emit_json", "format_option"]

T = TypeVar("T")

format_option = context_format_option(
    "table", "json", help="`table` for people, `json` for the API's response as is."
)


def call_api(opts: GlobalOptions, fn: Callable[[CoderClient], Awaitable[T]]) -> T:
    """Run ``fn`` with a client for the configured endpoint, closed afterwards."""
    endpoint = hub_endpoint(opts)

    async def go() -> T:
        async with open_client(endpoint) as client:
            return await fn(client)

    return asyncrun.run(go())


def emit_json(data: Any) -> None:
    jsonout.emit(data)
