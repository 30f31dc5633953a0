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
