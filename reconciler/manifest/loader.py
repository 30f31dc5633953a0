"""``load_manifests``: paths -> a Project and DesiredSessions, or every error at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.errors import ManifestError, ManifestErrors
from reconciler.manifest.budget import ExpansionBudget
from reconciler.manifest.build import (
    ManifestWarning,
    build_model,
    identity_errors,
    read_warnings,
)
from reconciler.manifest.discover import ManifestFile, discover
from reconciler.manifest.policies import DeclaredPolicy, declared_policy, policy_identity_errors
from reconciler.manifest.sets import GeneratedDocument, SetSummary, expand_set
from reconciler.manifest.validation import check_document
from reconciler.manifest.yamlread import RawDocument, iter_documents
from reconciler.model import DesiredSession, Project

if TYPE_CHECKING:
    from reconciler.manifest.filecache import ManifestCache

__all__ = [
    "FileResult",
    "Inspection",
    "LoadResult",
    "inspect_manifests",
    "load_manifests",
    "read_manifest",
]


@dataclass(frozen=True)
class Inspection:
    """What ``validate`` reports: valid manifests, possibly without a project name."""

    project: Project | None
    sessions: tuple[DesiredSession, ...]
    warnings: tuple[ManifestWarning, ...]
    files: tuple[str, ...]
    sets: tuple[SetSummary, ...] = ()
    policies: tuple[DeclaredPolicy, ...] = ()


@dataclass(frozen=True)
class LoadResult:
    project: Project
    sessions: tuple[DesiredSession, ...]
    warnings: tuple[ManifestWarning, ...]
    files: tuple[str, ...]
    # The kind: Policy documents, in file order (reconciler.policy compiles them).
    policies: tuple[DeclaredPolicy, ...] = ()


def _order(errors: list[ManifestError], files: Sequence[str]) -> list[ManifestError]:
    """``errors`` in file order, then line and column (at one place, in the order the
    checks made them: a summary such as "more references are refused" comes last). The
    reader says each error at a node once, however many times aliases repeat it."""
    rank = {name: i for i, name in enumerate(files)}

    def key(e: ManifestError) -> tuple[int, int, int]:
        return (rank.get(e.file or "", -1), e.line or 0, e.column or 0)

    return sorted(errors, key=key)


def _expand(
    doc: RawDocument, budget: ExpansionBudget
) -> tuple[list[GeneratedDocument], list[ManifestError]]:
    """A set's sessions, each checked like a written Session (errors said once)."""
    generated, errors = expand_set(doc, budget)
    said = {e.located() for e in errors}
    for session in generated:
        for problem in check_document(session):
            error = ManifestError(
                session.in_set(problem.detail),
                file=problem.file,
                line=problem.line,
                column=problem.column,
            )
            # The same template value fails alike for every item: once is enough.
            key = f"{problem.file}:{problem.line}:{problem.column}:{problem.detail}"
            if key not in said:
                said.add(key)
                errors.append(error)
        session.release()
    return generated, errors


@dataclass(frozen=True)
class FileResult:
    """What one manifest file declares, checked on its own (no other file consulted).

    ``every`` holds its documents valid or not and the sessions its sets generate (the
    duplicate checks run across all of them), ``docs`` the valid ones and their
    generated sessions (what the model is built from). Every document is released.
    """

    every: tuple[RawDocument, ...]
    docs: tuple[RawDocument, ...]
    sets: tuple[SetSummary, ...]
    policies: tuple[DeclaredPolicy, ...]
    errors: tuple[ManifestError, ...]


# An empty file is refused, not read as declaring no sessions: one caught while it is
# written (an editor, `git pull`, a watcher's folder) would archive every session it
# declared.
DECLARES_NOTHING = (
    "the file declares nothing (it is empty, or holds only comments or empty documents); "
    "delete it if it is meant to be empty"
)


def _kind(doc: RawDocument) -> object:
    return doc.value.get("kind") if isinstance(doc.value, dict) else None


def read_manifest(
    manifest: ManifestFile, budget: ExpansionBudget, data: bytes | None = None
) -> FileResult:
    """Read, check and expand one file (``data``: its bytes, when already read);
    ``budget`` is the run's.

    All the work done per file, and only that: what a
    :class:`~reconciler.manifest.filecache.ManifestCache` keeps for a file that did not
    change.
    """
    errors: list[ManifestError] = []
    docs: list[RawDocument] = []
    every: list[RawDocument] = []
    sets: list[SetSummary] = []
    policies: list[DeclaredPolicy] = []
    for doc in iter_documents(manifest.path, manifest.display, errors, budget, data=data):
        problems = check_document(doc)
        generated: list[GeneratedDocument] = []
        if not problems and doc.value["kind"] == "SessionSet":
            generated, problems = _expand(doc, budget)
            if not problems:
                sets.append(SetSummary(doc.value["name"], doc.file, doc.line, len(generated)))
        elif not problems and doc.value["kind"] == "Policy":
            policy, problems = declared_policy(doc)  # positions: before release()
            if policy is not None:
                policies.append(policy)
        doc.release()
        every.append(doc)
        if problems:
            errors.extend(problems)
        elif not doc.damaged:  # its reading's errors are reported already
            docs += [doc, *generated]
            every += generated
    if not every and not errors:
        errors.append(ManifestError(DECLARES_NOTHING, file=manifest.display))
    return FileResult(tuple(every), tuple(docs), tuple(sets), tuple(policies), tuple(errors))


def inspect_manifests(
    paths: Sequence[str],
    *,
    environ: Mapping[str, str],
    project_name: str | None = None,
    cache: ManifestCache | None = None,
) -> Inspection:
    """Load and check; raise ``ManifestErrors`` with every problem found.

    Unlike ``load_manifests``, a missing project name is not an error here (a pre-commit
    hook may validate one file that holds no Project document). ``cache`` (a long-running
    caller's, kept across loads) answers for the files that did not change, and for the
    whole model when no file changed and the environment is the same; the result is
    the same as without it.
    """
    found, errors = discover(list(paths))
    # One for the run: many small bombs add up.
    budget = cache.budget() if cache is not None else ExpansionBudget()
    if cache is None:
        results = [read_manifest(manifest, budget) for manifest in found]
    else:
        results = cache.read_all(found, budget)
        kept = None if errors else cache.model(results, environ, project_name)
        if kept is not None:
            return kept
    docs: list[RawDocument] = []
    every: list[RawDocument] = []  # valid or not: duplicates are checked across all
    sets: list[SetSummary] = []
    policies: list[DeclaredPolicy] = []
    for result in results:
        every += result.every
        docs += result.docs
        sets += result.sets
        policies += result.policies
        errors += result.errors
    errors.extend(identity_errors(every))
    errors.extend(policy_identity_errors(every))
    built_ids = {id(d) for d in docs}
    if any(id(d) not in built_ids and _kind(d) == "Project" for d in every):
        # The Project is refused: whatever the sessions would inherit from it (defaults,
        # plainEnv) is unknown, and every session's build would report what it lacks.
        warnings = read_warnings(every, docs, environ, None)
        raise ManifestErrors(_order(errors, tuple(m.display for m in found)), warnings)
    built = build_model(
        docs,
        environ=environ,
        project_name=project_name,
        budget=budget,
        reading=every if errors else (),
    )
    errors.extend(built.errors)
    files = tuple(m.display for m in found)
    if errors:
        raise ManifestErrors(_order(errors, files), built.warnings)
    inspection = Inspection(
        built.project,
        tuple(built.sessions),
        tuple(built.warnings),
        files,
        tuple(sets),
        tuple(policies),
    )
    if cache is not None:
        cache.keep_model(results, environ, project_name, inspection)
    return inspection


def load_manifests(
    paths: Sequence[str],
    *,
    environ: Mapping[str, str],
    project_name: str | None = None,
    cache: ManifestCache | None = None,
) -> LoadResult:
    """The Project and DesiredSessions declared under ``paths`` (default ``.``).

    ``project_name`` is ``--project``: required when no Project document exists, and
    must agree with it when one does. Raises ``ManifestErrors`` listing every problem,
    each located at ``file:line:col``. Unset ``${env:NAME}`` references are warnings
    here (the commands that need them check ``DesiredSession.unset_refs``). ``cache``:
    as :func:`inspect_manifests` takes it.
    """
    result = inspect_manifests(paths, environ=environ, project_name=project_name, cache=cache)
    if result.project is None:
        raise ManifestErrors(
            [
                ManifestError(
                    "no Project document found among the paths: give the folder that holds "
                    "the `kind: Project` file (its name, defaults and policy), add one, or "
                    "pass --project NAME (then no defaults, and the default policy)"
                )
            ]
        )
    return LoadResult(
        result.project, result.sessions, result.warnings, result.files, result.policies
    )
