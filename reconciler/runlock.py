"""One writer at a time on the embedded hub: an exclusive lock beside its database.

Two applies on one ``--local-db`` would both list an empty hub and both create every
session. ``apply`` (and ``watch --self-heal``) therefore holds ``<db>.lock``
(``filelock``: ``flock`` on POSIX) for its whole run, from before the database is
opened (or created) to the end, listing and planning included. A second one waits,
says so once, and gives up after ``timeout_s`` with
:class:`~reconciler.errors.LockedError` (exit 1). ``hub serve`` holds the same lock
for as long as it serves, so an embedded apply never writes under a running server:
it waits, then tells to apply through the server instead.

Nothing planted at the lock's path (a symbolic link, a directory) is followed or used:
:func:`check_plain_file` refuses it with a one-line :class:`~reconciler.errors.UsageError`.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator

import filelock

from reconciler.errors import LockedError, UsageError

__all__ = ["DEFAULT_LOCK_TIMEOUT_S", "check_plain_file", "exclusive_run", "lock_path"]

DEFAULT_LOCK_TIMEOUT_S = 60.0
_OTHER_PATH = "choose another path (--local-db, `hub serve --db`)"


def lock_path(db_path: str) -> str:
    return f"{db_path}.lock"


def check_plain_file(path: str | os.PathLike[str], what: str = "the hub's database") -> None:
    """Refuse anything at ``path`` but a regular file or nothing; a link is never followed."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"{path}: cannot use it as {what}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise UsageError(
            f"{path} is a symbolic link, never followed for {what}: remove it, or {_OTHER_PATH}"
        )
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise UsageError(f"{path} is {kind}, where {what} goes: move it away, or {_OTHER_PATH}")


def _acquire(lock: filelock.BaseFileLock, timeout_s: float) -> None:
    try:
        lock.acquire(timeout=timeout_s)
    except filelock.Timeout:
        raise
    except OSError as exc:  # planted since the check, or a directory that cannot hold it
        check_plain_file(lock.lock_file, "the hub's lock")
        raise UsageError(f"cannot lock {lock.lock_file}: {exc.strerror}; {_OTHER_PATH}") from None


@contextlib.contextmanager
def exclusive_run(
    db_path: str, *, timeout_s: float, on_wait: Callable[[str], None]
) -> Iterator[None]:
    """Hold the lock of ``db_path`` for the ``with`` block (nothing for ``:memory:``,
    private to one process, nor for a ``file:`` URI, which names no plain path).

    The database's directory must exist. With ``timeout_s`` 0, a held lock fails at once.
    """
    if db_path == ":memory:" or db_path.startswith("file:"):
        yield
        return
    path = lock_path(db_path)
    check_plain_file(path, "the hub's lock")
    # Private, as the database is (local-hub.md): it is empty, but its owner alone acts.
    lock = filelock.FileLock(path, mode=0o600)
    try:
        _acquire(lock, 0)
    except filelock.Timeout:
        if timeout_s > 0:
            on_wait(
                f"waiting for another apply on {db_path} to finish, or a `hub serve` of it "
                f"to stop (at most {timeout_s:g} s; --lock-timeout)"
            )
        try:
            _acquire(lock, timeout_s)
        except filelock.Timeout:
            after = f" after {timeout_s:g} s" if timeout_s > 0 else ""
            raise LockedError(
                f"another apply still holds {db_path}{after}, or a `hub serve` of it runs: "
                "apply again once it has finished, or through the server (--api-url URL)"
            ) from None
    try:
        yield
    finally:
        lock.release()
