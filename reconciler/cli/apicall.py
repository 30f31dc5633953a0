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


def call_api(
    opts: GlobalOptions, fn: Callable[[CoderClient], Awaitable[T]], *, once: bool = False
) -> T:
    """Run ``fn`` with a client for the configured endpoint, closed afterwards. A
    change whose outcome is unknown (its answer lost, a 5xx) says how to look.
    ``once``: each request tried once (a read made only to say something more)."""
    from reconciler.client import RetryPolicy
    from reconciler.errors import ApiError

    endpoint = hub_endpoint(opts)
    overrides = {"retry": RetryPolicy(attempts=1)} if once else {}

    async def go() -> T:
        async with open_client(endpoint, **overrides) as client:
            return await fn(client)

    try:
        return asyncrun.run(go())
    except ApiError as exc:
        # A read changes nothing; the client says whether a change may have happened.
        if exc.method not in (None, "GET") and exc.may_have_taken_effect:
            look = "`reconciler sessions get ID`"
            if exc.method == "POST":  # a create has no ID yet
                look = f"`reconciler sessions list` (a create) or {look}"
            exc.add_note(
                f"the hub may have done it all the same: {look} shows, before trying again"
            )
        raise


def emit_json(data: Any) -> None:
    jsonout.emit(data)
