"""Run a coroutine from synchronous code without its result passing through the task.

On Python 3.11, ``asyncio.run`` builds the ``repr()`` of its finished main task on the
way out (CPython gh-112559: ``signal.getsignal`` formats the SIGINT handler, a partial
bound to the task, and a done task's repr includes its result). For a plan of 100,000
sessions that repr is a string of hundreds of megabytes, built and thrown away. Here
the coroutine's result is stored aside and the task itself returns None.

SIGTERM is the command line's (``reconciler.cli.main``: handled as Ctrl-C). A coroutine
that handles it itself (``watch``) installs its own handler with the loop's
``add_signal_handler``; removing it on the way out would leave SIGTERM's default, which
kills the process, so the handler from before the loop is put back. Where nothing acts
on Ctrl-C (a background job ignores SIGINT), :func:`interrupt` does what
``asyncio.run`` does on one: it cancels the main task, and the run raises
``KeyboardInterrupt``, rather than an exception raised wherever the loop happens to
be (inside a task group it would come out wrapped in an exception group).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["interrupt", "run"]

T = TypeVar("T")


class _Running:
    """The run under way in the main thread: whether there is one, its main task once
    started, and whether it was interrupted."""

    active: bool = False
    task: asyncio.Task[None] | None = None
    interrupted: bool = False


def interrupt() -> bool:
    """Interrupt the run under way as Ctrl-C interrupts ``asyncio.run``: its main task
    is cancelled (or never runs the coroutine, when the loop is still being made), and
    :func:`run` raises ``KeyboardInterrupt``. False when no run is under way (the caller
    raises ``KeyboardInterrupt`` itself). For a signal handler."""
    if not _Running.active:
        return False
    _Running.interrupted = True
    task = _Running.task
    if task is not None and not task.done():
        task.cancel()
        task.get_loop().call_soon_threadsafe(lambda: None)  # wake a waiting loop
    return True


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``: the same loop, cancellation and Ctrl-C handling."""
    result: list[T] = []
    main_thread = threading.current_thread() is threading.main_thread()

    async def main() -> None:
        if main_thread:
            _Running.task = asyncio.current_task()
            if _Running.interrupted:  # while the loop was being made
                coro.close()
                return
        # Awaited in this very task: cancelling the task cancels ``coro`` as before.
        result.append(await coro)

    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    if main_thread:
        _Running.active = True
    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        if main_thread and _Running.interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        interrupted = main_thread and _Running.interrupted
        if main_thread:
            _Running.active, _Running.task, _Running.interrupted = False, None, False
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if interrupted:  # after the task's last await: the run was stopped all the same
        raise KeyboardInterrupt
    return result[0]
