"""What each manifest file declared, kept across the loads of a long-running caller.

``watch`` loads the same files every interval, and most of them have not changed. A
:class:`ManifestCache` keeps, per file, what
:func:`~reconciler.manifest.loader.read_manifest` made of it: its documents parsed,
checked against the schema, SessionSets expanded, Policies declared, all released. A
later load reuses that while the file's size, modification time (in nanoseconds) and
content hash (BLAKE2b of its bytes, read every time: reading is cheap, parsing is not)
are all unchanged; otherwise the file is read again, from the very bytes hashed.
Nothing kept per file depends on the environment. What spans files runs again whenever
a file was read again: duplicate names, the model (the Project's defaults,
``${env:...}`` resolved against the load's environment, the secrecy checks), the
warnings. When no file was read again, the environment and ``--project`` are the same,
the last model is the answer: it is a function of those inputs alone.

Only a file that produced no error is kept, and only a model built without one. The
run's :class:`~reconciler.manifest.budget.ExpansionBudget` is charged for a kept file
as reading it charged: the share its bytes grant, then the nodes, bytes and template
code it spent. When that no longer fits (the files before it now spend more), the file
is read again, so that the error is the one a cold load reports. Template code is
charged when a template is first compiled in the process (``manifest.template``), so a
file replays what its first reading paid.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from reconciler.manifest.budget import ExpansionBudget
from reconciler.manifest.discover import ManifestFile
from reconciler.manifest.loader import FileResult, Inspection, read_manifest
from reconciler.manifest.yamlread import MAX_FILE_BYTES

__all__ = ["ManifestCache"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class _Spent:
    """What reading one file granted and spent of the run's budget."""

    source: int  # bytes read (``add_source``)
    nodes: int
    produced: int  # bytes spent
    headroom: int  # bytes that had to be left, past the grant, for no check to refuse
    code: int


class _MeteredBudget(ExpansionBudget):
    """The run's budget, counting what each file is granted and spends (to replay it)."""

    def __init__(self) -> None:
        super().__init__()
        self._source = self._nodes = self._produced = self._code = 0
        self._peak = 0  # the most produced or about to be, since the last mark

    def add_source(self, size: int) -> None:
        self._source += size
        super().add_source(size)

    def spend_node(self, what: str) -> None:
        self._nodes += 1
        super().spend_node(what)

    def spend_bytes(self, size: int, what: str) -> None:
        self._produced += size
        self._peak = max(self._peak, self._produced)
        super().spend_bytes(size, what)

    def check_bytes(self, size: int, what: str) -> None:
        self._peak = max(self._peak, self._produced + size)
        super().check_bytes(size, what)

    def spend_code(self, size: int) -> None:
        self._code += size
        super().spend_code(size)

    def metered(self, read: Callable[[], _T]) -> tuple[_T, _Spent]:
        """``read()``'s result, and what it granted and spent."""
        source, nodes, produced, code = self._source, self._nodes, self._produced, self._code
        self._peak = produced
        result = read()
        spent = _Spent(
            source=self._source - source,
            nodes=self._nodes - nodes,
            produced=self._produced - produced,
            headroom=self._peak - produced,
            code=self._code - code,
        )
        return result, spent

    def replay(self, spent: _Spent) -> bool:
        """Charge ``spent`` as reading the file again would; False, with nothing
        charged, when reading it now would exceed the budget."""
        before = dict(vars(self))
        self.add_source(spent.source)
        if (
            self.nodes_left >= spent.nodes
            and self.bytes_left >= spent.headroom
            and self.code_left >= spent.code
        ):
            self.nodes_left -= spent.nodes
            self.bytes_left -= spent.produced
            self.code_left -= spent.code
            self._nodes += spent.nodes
            self._produced += spent.produced
            self._code += spent.code
            return True
        vars(self).update(before)
        return False


@dataclass(frozen=True)
class _Model:
    results: tuple[FileResult, ...]
    # A digest of the environment, not a copy: the cache holds no credential's value.
    environ: bytes
    project_name: str | None
    inspection: Inspection


def _environ_digest(environ: Mapping[str, str]) -> bytes:
    """BLAKE2b of the environment's variables and values (sorted, JSON: unambiguous)."""
    return hashlib.blake2b(json.dumps(sorted(environ.items())).encode("ascii")).digest()


@dataclass(frozen=True)
class _Entry:
    display: str
    size: int
    mtime_ns: int
    digest: bytes
    result: FileResult
    spent: _Spent


class ManifestCache:
    """Per file, what reading it gave, reused while the file is unchanged (module doc).

    Hold one for as long as the same manifests are loaded again (``watch``'s life) and
    pass it to every load (``load_manifests(..., cache=...)``); it is not shared between
    threads.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._model: _Model | None = None

    def budget(self) -> ExpansionBudget:
        """A new run's expansion budget: pass it to :meth:`read` for each file."""
        return _MeteredBudget()

    def read(self, manifest: ManifestFile, budget: ExpansionBudget) -> FileResult:
        """What :func:`read_manifest` gives for ``manifest``: kept, or read again."""
        if not isinstance(budget, _MeteredBudget):
            raise TypeError("ManifestCache.read takes the budget made by its budget()")
        path = manifest.path
        try:
            info = os.stat(path)
            if info.st_size > MAX_FILE_BYTES:  # refused as a cold read refuses it
                self._entries.pop(path, None)
                return read_manifest(manifest, budget)
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError:
            self._entries.pop(path, None)
            return read_manifest(manifest, budget)  # the cold read reports it
        digest = hashlib.blake2b(data).digest()
        entry = self._entries.get(path)
        if (
            entry is not None
            and entry.display == manifest.display
            and entry.size == info.st_size
            and entry.mtime_ns == info.st_mtime_ns
            and entry.digest == digest
            and budget.replay(entry.spent)
        ):
            return entry.result
        result, spent = budget.metered(lambda: read_manifest(manifest, budget, data))
        if result.errors:
            self._entries.pop(path, None)
        else:
            self._entries[path] = _Entry(
                manifest.display, info.st_size, info.st_mtime_ns, digest, result, spent
            )
        return result

    def read_all(self, found: Sequence[ManifestFile], budget: ExpansionBudget) -> list[FileResult]:
        """:meth:`read` for each of ``found``, in order; the files no longer found
        (deleted, renamed, ignored) are forgotten."""
        results = [self.read(manifest, budget) for manifest in found]
        keep = {m.path for m in found}
        for path in [p for p in self._entries if p not in keep]:
            del self._entries[path]
        return results

    def model(
        self, results: Sequence[FileResult], environ: Mapping[str, str], project_name: str | None
    ) -> Inspection | None:
        """The last model kept, when it was built from these very results (every file
        answered from the cache, in the same order), the same environment and the same
        ``--project``: building it again would give the same (a function of those)."""
        last = self._model
        if (
            last is None
            or len(last.results) != len(results)
            or any(a is not b for a, b in zip(last.results, results, strict=True))
            or last.environ != _environ_digest(environ)
            or last.project_name != project_name
        ):
            return None
        return last.inspection

    def keep_model(
        self,
        results: Sequence[FileResult],
        environ: Mapping[str, str],
        project_name: str | None,
        inspection: Inspection,
    ) -> None:
        """Keep the model built (without an error) from ``results`` (see :meth:`model`)."""
        self._model = _Model(tuple(results), _environ_digest(environ), project_name, inspection)
