"""The hub's database file holds resolved ``env`` secrets: kept private, never committed.

A directory made for the database is created mode 0700 with its own ``.gitignore`` of
``*``, so ``git add .`` in a repository never picks it up (an existing directory, and an
existing ``.gitignore``, are left as they are). The database file is mode 0600 whether
new or old; SQLite gives its ``-wal`` and ``-shm`` files the database file's mode.

Nothing planted where these files go is followed or used: a symbolic link (dangling or
not) at the database, its ``-wal``/``-shm`` or its lock, or a directory or other
non-file there, stops the run with a :class:`~reconciler.errors.UsageError` naming the
path and what to do (the file is opened with ``O_NOFOLLOW``, so a link made after the
check is not followed either).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from reconciler.errors import UsageError
from reconciler.runlock import check_plain_file

__all__ = ["GITIGNORE", "private_database", "private_directory"]

GITIGNORE = "# Made by reconciler: the local hub's database holds secrets.\n*\n"


def _in_memory(db_path: str) -> bool:
    return db_path == ":memory:" or db_path.startswith("file:")


def private_directory(db_path: str) -> None:
    """Make the directory of ``db_path`` (0700, with a ``.gitignore``) if it is missing."""
    if _in_memory(db_path):
        return
    directory = Path(db_path).parent
    if directory.is_dir():
        return
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # made meanwhile by someone else
            directory.mkdir(mode=0o700)
            _write_gitignore(directory / ".gitignore")
    except OSError as exc:
        raise UsageError(
            f"cannot make {directory} for the hub's database: {exc.strerror}; "
            "choose another path (--local-db, `hub serve --db`)"
        ) from None


def private_database(db_path: str) -> None:
    """Prepare ``db_path`` for SQLite: its directory (0700 if made now), the file 0600,
    nothing planted there followed (see the module)."""
    if _in_memory(db_path):
        return
    path = Path(db_path)
    private_directory(db_path)
    check_plain_file(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a link planted since the check
            check_plain_file(path)
        raise UsageError(
            f"cannot open {path} as the hub's database: {exc.strerror}; "
            "choose another path (--local-db, `hub serve --db`)"
        ) from None
    try:
        os.fchmod(fd, 0o600)  # a file made by an older version (0644) is tightened too
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        side = f"{path}{suffix}"
        check_plain_file(side, "the hub's database journal")
        with contextlib.suppress(FileNotFoundError):
            os.chmod(side, 0o600)


def _write_gitignore(target: Path) -> None:
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # never clobber one that is there
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(GITIGNORE)
