"""Which files the manifests are in: files named as given, directories searched.

Directories are searched recursively for ``*.yaml``/``*.yml``, skipping hidden entries
(``.git``, ``.github``, ``.pre-commit-config.yaml``), following symbolic links once:
every directory is entered at most once by its real path, so a link loop ends. A file
reached twice (two paths, a link) is read once.

A searched directory may hold a ``.reconcilerignore`` file: one glob pattern a line
(``#`` comments), matched against paths relative to that directory, or against the
bare name when the pattern has no ``/``; a trailing ``/`` matches directories only.
It keeps non-manifest YAML (CI workflows, say) out of a manifest tree explicitly,
in a file reviewed in git, instead of skipping unknown documents silently. Files
named on the command line are never ignored.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.errors import ManifestError

__all__ = ["ManifestFile", "discover"]

SUFFIXES = (".yaml", ".yml")
IGNORE_FILE = ".reconcilerignore"


@dataclass(frozen=True)
class _Ignore:
    base: str  # the directory holding the ignore file
    patterns: tuple[str, ...]

    def matches(self, path: str, is_dir: bool) -> bool:
        rel = os.path.relpath(path, self.base).replace(os.sep, "/")
        name = os.path.basename(path)
        for pattern in self.patterns:
            if pattern.endswith("/"):
                if not is_dir:
                    continue
                pattern = pattern.rstrip("/")
            target = rel if "/" in pattern else name
            if fnmatch.fnmatchcase(target, pattern.lstrip("/")):
                return True
        return False


def _read_ignore(directory: str) -> _Ignore | None:
    path = os.path.join(directory, IGNORE_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    patterns = tuple(
        line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")
    )
    return _Ignore(directory, patterns) if patterns else None


@dataclass(frozen=True)
class ManifestFile:
    display: str  # the path as the user will read it in messages
    path: str  # the path to open


def _display(path: str) -> str:
    return os.path.normpath(path)


def _walk(
    root: str,
    visited: set[str],
    out: list[str],
    errors: list[ManifestError],
    ignores: tuple[_Ignore, ...] = (),
    folders: list[str] | None = None,
) -> None:
    if folders is not None:
        folders.append(root)
    own = _read_ignore(root)
    if own is not None:
        ignores = (*ignores, own)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        errors.append(ManifestError(f"cannot read directory: {exc.strerror}", file=_display(root)))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = os.path.join(root, entry.name)
        try:
            is_dir = entry.is_dir()  # follows links
        except OSError:
            is_dir = False
        if any(ignore.matches(path, is_dir) for ignore in ignores):
            continue
        if is_dir:
            real = os.path.realpath(path)
            if real in visited:
                continue  # a link loop, or a second way into a searched tree
            visited.add(real)
            _walk(path, visited, out, errors, ignores, folders)
        elif entry.name.endswith(SUFFIXES):
            out.append(path)


def _nearby(given: str) -> str:
    """``"; did you mean sessions?"`` for a path that is not there (``sesions/``), from
    the names in the folder it would be in (only when that folder can be read)."""
    from reconciler.suggest import did_you_mean

    where, name = os.path.split(given.rstrip("/" + os.sep) or given)
    try:
        names = os.listdir(where or ".")
    except OSError:
        return ""
    return did_you_mean(name, [n for n in names if not n.startswith(".")])


def discover(
    paths: Sequence[str], *, folders: list[str] | None = None
) -> tuple[list[ManifestFile], list[ManifestError]]:
    """The manifest files under ``paths`` (default ``.``), in order, and path errors;
    ``folders``, when given, gets every folder searched (a watcher looks at their times:
    a file removed changes its folder)."""
    errors: list[ManifestError] = []
    found: list[str] = []
    visited: set[str] = set()
    for given in paths or ["."]:
        try:
            info = os.stat(given)
        except OSError as exc:
            if os.path.islink(given):
                message = "broken symbolic link"
            else:
                message = exc.strerror.lower() if exc.strerror else "cannot read"
                if isinstance(exc, FileNotFoundError):
                    message += _nearby(given)
            errors.append(ManifestError(message, file=_display(given)))
            continue
        if stat.S_ISDIR(info.st_mode):
            visited.add(os.path.realpath(given))
            inside: list[str] = []
            _walk(given, visited, inside, errors, folders=folders)
            found.extend(sorted(inside, key=_display))
        else:
            found.append(given)
    files: list[ManifestFile] = []
    seen: set[str] = set()
    for path in found:
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        try:
            info = os.stat(path)
        except OSError:
            errors.append(ManifestError("broken symbolic link", file=_display(path)))
            continue
        if not stat.S_ISREG(info.st_mode):
            errors.append(ManifestError("not a regular file; refused", file=_display(path)))
            continue
        files.append(ManifestFile(_display(path), path))
    return files, errors
