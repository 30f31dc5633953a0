"""The hub's database file holds resolved ``env`` secrets: kept private, never committed.

A directory made for the database is created mode 0700 with its own ``.gitignore`` of
``*``, so ``git add .`` in a repository never picks it up (an existing directory, and an
existing ``.gitignore``, are left as they are). The database file is mode 0600 whether
new or old; SQLite gives its ``-wal`` and ``-shm`` files the database file's mode.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["GITIGNORE", "private_database"]

GITIGNORE = "# Made by reconciler: the local hub's database holds secrets.\n*\n"


def private_database(db_path: str) -> None:
    """Prepare ``db_path`` for SQLite: its directory (0700 if made now), the file 0600."""
    if db_path == ":memory:" or db_path.startswith("file:"):
        return
    path = Path(db_path)
    directory = path.parent
    if not directory.is_dir():
        directory.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # made meanwhile by someone else
            directory.mkdir(mode=0o700)
            _write_gitignore(directory / ".gitignore")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a file made by an older version (0644) is tightened too
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", 0o600)


def _write_gitignore(target: Path) -> None:
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # never clobber one that is there
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(GITIGNORE)
