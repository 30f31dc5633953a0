"""One apply at a time on the embedded hub: an exclusive lock beside its database.

Two applies on one ``--local-db`` would both list an empty hub and both create every
session. ``apply`` therefore holds ``<db>.lock`` (``filelock``: ``flock`` on POSIX) for
its whole run, listing and planning included. A second one waits, says so once, and
gives up after ``timeout_s`` with :class:`~reconciler.errors.LockedError` (exit 1).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import filelock

from reconciler.errors import LockedError

__all__ = ["DEFAULT_LOCK_TIMEOUT_S", "lock_path", "exclusive_run"]

DEFAULT_LOCK_TIMEOUT_S = 60.0


def lock_path(db_path: str) -> str:
    return f"{db_path}.lock"


@contextlib.contextmanager
def exclusive_run(
    db_path: str, *, timeout_s: float, on_wait: Callable[[str], None]
) -> Iterator[None]:
    """Hold the lock of ``db_path`` for the ``with`` block (nothing for ``:memory:``,
    private to one process, nor for a ``file:`` URI, which names no plain path)."""
    if db_path == ":memory:" or db_path.startswith("file:"):
        yield
        return
    lock = filelock.FileLock(lock_path(db_path))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        on_wait(
            f"waiting for another apply on {db_path} to finish (at most {timeout_s:g} s; "
            "--lock-timeout)"
        )
        try:
            lock.acquire(timeout=timeout_s)
        except filelock.Timeout:
            raise LockedError(
                f"another apply still holds {db_path} after {timeout_s:g} s; "
                "apply again once it has finished"
            ) from None
    try:
        yield
    finally:
        lock.release()
