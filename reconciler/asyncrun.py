"""Run a coroutine from synchronous code without its result passing through the task.

On Python 3.11, ``asyncio.run`` builds the ``repr()`` of its finished main task on the
way out (CPython gh-112559: ``signal.getsignal`` formats the SIGINT handler, a partial
bound to the task, and a done task's repr includes its result). For a plan of 100,000
sessions that repr is a string of hundreds of megabytes, built and thrown away. Here
the coroutine's result is stored aside and the task itself returns None.

SIGTERM is the command line's (``reconciler.cli.main``: handled as Ctrl-C). A coroutine
that handles it itself (``watch``) installs its own handler with the loop's
``add_signal_handler``; removing it on the way out would leave SIGTERM's default, which
kills the process, so the handler from before the loop is put back.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``: the same loop, cancellation and Ctrl-C handling."""
    result: list[T] = []

    async def main() -> None:
        # Awaited in this very task: cancelling the task cancels ``coro`` as before.
        result.append(await coro)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    try:
        asyncio.run(main())
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return result[0]
