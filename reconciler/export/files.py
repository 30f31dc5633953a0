"""Writing an export into a folder: all files or none, never outside it, never twice.

- A file already there with the same bytes is left alone (not even its mtime changes),
  so exporting again when nothing changed changes nothing.
- A file there with other bytes is updated when the caller's ``rewritable`` says export
  may write over it (nobody edited it since export wrote it), else refused; anything
  that is not a regular file (a symbolic link, dangling or not, a directory) is refused.
  Every refusal comes before anything is written.
- New and updated files are staged in a hidden temporary directory inside the folder
  (manifest discovery skips hidden entries), checked by the caller, then put in place
  one by one: a new file is linked, which never follows or replaces what is at its
  target, so nothing is written through a symbolic link; an updated file is renamed
  over the old one (a rename replaces the entry, never writes through it) after its
  bytes are checked again. If one fails, the files already placed are removed and the
  updated ones restored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import UsageError

__all__ = ["FileSet", "check_folder", "compare_with_folder", "publish", "replace_file", "staged"]

_STAGING_PREFIX = ".reconciler-export-"


@dataclass(frozen=True)
class FileSet:
    """What writing ``files`` (name -> text) into a folder would do. ``updated`` are
    files there that will be written over; ``previous`` their bytes as judged."""

    new: Mapping[str, str]
    unchanged: tuple[str, ...]
    updated: Mapping[str, str] = field(default_factory=dict)
    previous: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def writes(self) -> dict[str, str]:
        return {**self.updated, **self.new}


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


def _rewritable(
    path: Path, text: str, rewritable: Callable[[str, str], bool] | None
) -> bytes | None:
    """The bytes at ``path`` when ``rewritable`` lets ``text`` replace them, else None."""
    if rewritable is None:
        return None
    data = path.read_bytes()
    try:
        current = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return data if rewritable(current, text) else None


def _whose(paths: list[str], written_by_export: Callable[[str], bool] | None) -> list[str]:
    """Each path, with whether export wrote the file (edited since) or not."""
    if written_by_export is None:
        return paths
    said = []
    for path in paths:
        try:
            ours = written_by_export(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            ours = False
        whose = "edited since export wrote it" if ours else "not written by export"
        said.append(f"{path} ({whose})")
    return said


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


def compare_with_folder(
    folder: Path,
    files: Mapping[str, str],
    *,
    rewritable: Callable[[str, str], bool] | None = None,
    written_by_export: Callable[[str], bool] | None = None,
) -> FileSet:
    """Split ``files`` into new ones, ones already there byte for byte, and ones there
    with other content that ``rewritable(current, new)`` lets be updated.

    Raises ``UsageError`` naming every other file there with other content (or that is
    not a regular file), before anything is written, each said to be edited since
    export wrote it or not export's (``written_by_export(current)``); so does a
    ``folder`` that is not one (``check_folder``).
    """
    check_folder(folder)
    new: dict[str, str] = {}
    unchanged: list[str] = []
    updated: dict[str, str] = {}
    previous: dict[str, bytes] = {}
    other: list[str] = []
    not_files: list[str] = []
    for name, text in files.items():
        state = _state(folder / name, text.encode("utf-8"))
        if state == "absent":
            new[name] = text
        elif state == "same":
            unchanged.append(name)
        elif (
            state == "other" and (data := _rewritable(folder / name, text, rewritable)) is not None
        ):
            updated[name] = text
            previous[name] = data
        else:
            (other if state == "other" else not_files).append(str(folder / name))
    problems: list[str] = []
    if other:
        them = "them" if len(other) > 1 else "it"
        problems.append(
            f"refusing to overwrite {', '.join(_whose(other, written_by_export))}; remove "
            f"{them} or choose another --out"
        )
    if not_files:
        problems.append(
            f"refusing to write {', '.join(not_files)}: not a regular file (a symbolic "
            "link, say); export never writes through one"
        )
    if problems:
        raise UsageError("\n".join(problems))
    return FileSet(new, tuple(unchanged), updated, previous)


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


def _replace(target: Path, source: Path, previous: bytes, backup: Path) -> None:
    """Rename ``source`` over ``target`` when it still holds ``previous``; a copy of the
    old file is kept at ``backup`` (for a rollback)."""
    if target.is_symlink() or not target.is_file() or target.read_bytes() != previous:
        raise UsageError(f"refusing to overwrite {target}: it changed meanwhile")
    backup.write_bytes(previous)
    os.replace(source, target)


def publish(
    folder: Path, staged_paths: Mapping[str, Path], previous: Mapping[str, bytes] | None = None
) -> list[Path]:
    """Put every staged file into ``folder``: linked when new, renamed over the file it
    updates when ``previous`` holds its old bytes; all of them, or none (rolled back)."""
    previous = previous or {}
    placed: list[Path] = []
    restore: dict[Path, Path] = {}
    try:
        for name, source in staged_paths.items():
            target = folder / name
            if name in previous:
                backup = source.with_name(f".previous-{name}")
                _replace(target, source, previous[name], backup)
                restore[target] = backup
                continue
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
        for path, backup in restore.items():
            with contextlib.suppress(OSError):
                os.replace(backup, path)
        raise
    return [*placed, *restore]


def replace_file(path: Path, text: str) -> None:
    """Put ``text`` at ``path`` at once (a temporary file beside it, then a rename): the
    name is replaced, never written through (a link stays untouched); the file's
    permissions are kept."""
    mode = stat.S_IMODE(path.lstat().st_mode)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=_STAGING_PREFIX, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(name, mode)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
