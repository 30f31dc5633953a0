"""Writing an export into a folder: all files or none, never outside it, never twice.

- A file already there with the same bytes is left alone (not even its mtime changes),
  so exporting again when nothing changed changes nothing.
- A file there with other bytes, or anything that is not a regular file (a symbolic
  link, dangling or not, a directory), is refused before anything is written.
- New files are staged in a hidden temporary directory inside the folder (manifest
  discovery skips hidden entries), checked by the caller, then linked into place one by
  one. A link never follows or replaces what is at its target, so nothing is written
  through a symbolic link; if one fails, the files already placed are removed again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import UsageError

__all__ = ["FileSet", "check_folder", "compare_with_folder", "publish", "staged"]

_STAGING_PREFIX = ".reconciler-export-"


@dataclass(frozen=True)
class FileSet:
    """What writing ``files`` (name -> text) into a folder would do."""

    new: Mapping[str, str]
    unchanged: tuple[str, ...]


def _state(path: Path, data: bytes) -> str:
    """``absent``, ``same`` (a regular file holding ``data``), ``other`` or ``not-a-file``."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return "absent"
    if not stat.S_ISREG(info.st_mode):  # a symbolic link (dangling or not), a directory
        return "not-a-file"
    if info.st_size == len(data) and path.read_bytes() == data:
        return "same"
    return "other"


def check_folder(folder: Path) -> None:
    """``folder`` is a directory, or nothing yet (made when writing); else ``UsageError``.

    A symbolic link to a directory is a directory; a dangling one, or one to a file, is
    refused: export never writes through a link to somewhere that is not a folder.
    """
    try:
        info = folder.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"--out {folder}: {exc.strerror}; choose another --out") from None
    if stat.S_ISDIR(info.st_mode) or folder.is_dir():
        return
    if stat.S_ISLNK(info.st_mode):
        raise UsageError(
            f"--out {folder} is a symbolic link to {os.readlink(folder)}, which is not a "
            "directory: make that directory, or choose another --out"
        )
    raise UsageError(f"--out {folder} is not a directory: choose another --out")


def compare_with_folder(folder: Path, files: Mapping[str, str]) -> FileSet:
    """Split ``files`` into new ones and ones already there, byte for byte.

    Raises ``UsageError`` naming every file that is there with other content (or is not
    a regular file), before anything is written; so does a ``folder`` that is not one
    (``check_folder``).
    """
    check_folder(folder)
    new: dict[str, str] = {}
    unchanged: list[str] = []
    other: list[str] = []
    not_files: list[str] = []
    for name, text in files.items():
        state = _state(folder / name, text.encode("utf-8"))
        if state == "absent":
            new[name] = text
        elif state == "same":
            unchanged.append(name)
        else:
            (other if state == "other" else not_files).append(str(folder / name))
    problems: list[str] = []
    if other:
        problems.append(
            f"refusing to overwrite {', '.join(other)}; remove them or choose another --out"
        )
    if not_files:
        problems.append(
            f"refusing to write {', '.join(not_files)}: not a regular file (a symbolic "
            "link, say); export never writes through one"
        )
    if problems:
        raise UsageError("\n".join(problems))
    return FileSet(new, tuple(unchanged))


@contextlib.contextmanager
def staged(folder: Path, files: Mapping[str, str]) -> Iterator[dict[str, Path]]:
    """``files`` written into a hidden temporary directory inside ``folder``.

    Yields name -> staged path; the directory and whatever is left in it go on exit.
    ``folder`` is created when missing, and removed again if it is still empty then.
    """
    check_folder(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot make --out {folder}: {exc.strerror}") from None
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=folder))
    try:
        paths: dict[str, Path] = {}
        for name, text in files.items():
            path = staging / name
            path.write_bytes(text.encode("utf-8"))
            paths[name] = path
        yield paths
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if nothing was placed in it


def publish(folder: Path, staged_paths: Mapping[str, Path]) -> list[Path]:
    """Link every staged file into ``folder``; all of them, or none (rolled back)."""
    placed: list[Path] = []
    try:
        for name, source in staged_paths.items():
            target = folder / name
            try:
                os.link(source, target)  # fails if anything is there; never follows it
            except FileExistsError:
                raise UsageError(f"refusing to overwrite {target}: it appeared meanwhile") from None
            except OSError:
                if os.path.lexists(target):
                    raise UsageError(f"refusing to overwrite {target}") from None
                os.replace(source, target)  # no hard links here: rename within the folder
            placed.append(target)
    except BaseException:
        for path in placed:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return placed
