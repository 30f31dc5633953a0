"""Running a coroutine from synchronous code: its result is never repr()'d."""

from __future__ import annotations

import asyncio

import pytest

from reconciler import asyncrun


class _Counted:
    reprs = 0

    def __repr__(self) -> str:
        type(self).reprs += 1
        return "_Counted()"


def test_the_result_is_returned_and_never_repred() -> None:
    async def plan() -> _Counted:
        await asyncio.sleep(0)
        return _Counted()

    _Counted.reprs = 0
    result = asyncrun.run(plan())
    assert isinstance(result, _Counted)
    # asyncio.run on Python 3.11 repr()s its finished task, result included (gh-112559).
    assert _Counted.reprs == 0


def test_exceptions_propagate_unchanged() -> None:
    async def fails() -> None:
        raise LookupError("nope")

    with pytest.raises(LookupError, match="nope"):
        asyncrun.run(fails())


def test_cancellation_inside_reaches_the_caller_as_with_asyncio_run() -> None:
    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncrun.run(cancelled())


def test_an_interrupt_cancels_the_main_task_and_raises_keyboard_interrupt() -> None:
    # What a SIGTERM does where SIGINT is ignored (cli.main): as asyncio.run on Ctrl-C.
    cleaned: list[str] = []

    async def slow() -> None:
        asyncrun.interrupt()  # as a signal handler would, mid-run
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.append("finally")  # the task unwinds as on a cancellation

    assert asyncrun.interrupt() is False  # no run under way: the caller raises
    with pytest.raises(KeyboardInterrupt):
        asyncrun.run(slow())
    assert cleaned == ["finally"]
    assert asyncrun.interrupt() is False  # the run is over


def test_an_interrupt_after_the_last_await_still_stops_the_run() -> None:
    async def done_at_once() -> int:
        asyncrun.interrupt()  # no await follows: the task ends normally
        return 1

    with pytest.raises(KeyboardInterrupt):
        asyncrun.run(done_at_once())
    assert asyncrun.run(asyncio.sleep(0, result=2)) == 2  # the next run is not
