"""Run a coroutine from synchronous code without its result passing through the task.

On Python 3.11, ``asyncio.run`` builds the ``repr()`` of its finished main task on the
way out (CPython gh-112559: ``signal.getsignal`` formats the SIGINT handler, a partial
bound to the task, and a done task's repr includes its result). For a plan of 100,000
sessions that repr is a string of hundreds of megabytes, built and thrown away. Here
the coroutine's result is stored aside and the task itself returns None.

SIGTERM (a CI runner cancelling a job, Kubernetes stopping a pod) is handled as Ctrl-C:
the main task is cancelled, so an apply starts nothing new, lets what runs finish and
prints its report. A coroutine that handles SIGTERM itself (``watch``) installs its own
handler over this one.
"""

from __future__ import annotations

import asyncio
import contextlib
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
        if threading.current_thread() is threading.main_thread():
            with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals here
                # As Ctrl-C: asyncio.run's SIGINT handler cancels this task.
                asyncio.get_running_loop().add_signal_handler(
                    signal.SIGTERM, signal.raise_signal, signal.SIGINT
                )
        # Awaited in this very task: cancelling the task cancels ``coro`` as before.
        result.append(await coro)

    asyncio.run(main())
    return result[0]
