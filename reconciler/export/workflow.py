"""The export workflow: read sessions, write manifests (all or none), plan the adoption.

``export_sessions`` reads the hub and writes files; it never changes a session.
Adoption is a Plan of ``update`` actions (each adds this project's marker tag) that
``export --adopt`` runs through the apply workflow (``reconciler.applyrun``: lock,
confirmation, a fresh listing's staleness check, settlement of duplicates), and
idempotent (an adopted session is left out of the plan).

Every file is checked before any is written: each session alone (one that would not
validate, say ``visibility: team``, is skipped with a note naming it), then the whole
folder as it will be, the new and updated files staged inside it. Exporting again into
the same folder updates the files export wrote that nobody edited since (their session
changed, or was replaced: the session-id comment follows) and adds the new ones; a file
a person edited is refused (``render.may_rewrite``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reconciler.errors import ManifestError, ManifestErrors, ReconcilerError
from reconciler.export.files import compare_with_folder, publish, replace_file, staged
from reconciler.export.render import (
    ExportRenderError,
    exported_from,
    may_rewrite,
    render_file,
    render_project_file,
    render_stream,
)
from reconciler.export.spec import ExportedSession, adopt_tags, build_exports
from reconciler.manifest import ManifestWarning, inspect_manifests, load_manifests
from reconciler.manifest.budget import ExpansionBudget
from reconciler.manifest.discover import discover
from reconciler.manifest.envref import sole_reference
from reconciler.manifest.yamlread import iter_documents
from reconciler.masking import PLAIN_ENV_KEY
from reconciler.model import (
    Action,
    DesiredSession,
    FieldChange,
    Lifecycle,
    Marker,
    Plan,
    Policy,
    RemoteSession,
    normalise_visibility,
)
from reconciler.planner import fingerprint
from reconciler.planner.applied import is_protected_tag, with_applied_tag
from reconciler.planner.mutable import adoption_record
from reconciler.planner.reported import in_loop_mode

__all__ = [
    "ExportClient",
    "ExportFolder",
    "ExportOutcome",
    "FolderProject",
    "export_notes",
    "export_sessions",
    "folder_project",
    "read_export_folder",
    "spend_adopt_lines",
]

PROJECT_FILE = "project.yaml"
ADOPT_REASON = "adopt into the project"
_DETAIL_CONCURRENCY = 8


class ExportClient(Protocol):
    async def list_all_sessions(
        self, *, include_archived: bool = False, search: str | None = None
    ) -> list[dict[str, Any]]: ...

    async def get_session(self, session_id: str) -> dict[str, Any]: ...

    async def get_loop(self, session_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FolderProject:
    """The Project document(s) already in an export folder."""

    names: tuple[str | None, ...]
    files: tuple[str, ...]  # their file names: no session may be written over them
    defaults: Mapping[str, Any]
    plain_env: tuple[str, ...] = ()
    # What a plan of the folder does to a managed session no file declares.
    prune: str = Policy().prune

    @property
    def name(self) -> str | None:
        """The project's name when exactly one name is declared there."""
        return self.names[0] if len(set(self.names)) == 1 else None


@dataclass(frozen=True)
class ExportOutcome:
    """What an export did. ``notes`` are for people (stderr), in order."""

    exports: tuple[ExportedSession, ...]
    notes: tuple[str, ...]
    stream: str | None  # the YAML stream, when no folder was given
    written: tuple[Path, ...]  # new files
    unchanged: tuple[Path, ...]
    adoption: Plan
    already_adopted: tuple[ExportedSession, ...]
    updated: tuple[Path, ...] = ()  # files export wrote before, brought up to date
    # With a folder: each exported session's file (session id -> path).
    placed: Mapping[str, Path] = dataclasses.field(default_factory=dict)


def folder_project(folder: Path) -> FolderProject:
    """The Project documents in ``folder`` (top level), read with the manifest reader.

    The reader's limits apply (size cap, bounded aliases, UTF-8 only); its errors are
    the later validation's to report: here they only decide what is there.
    """
    names: list[str | None] = []
    files: list[str] = []
    defaults: Mapping[str, Any] = {}
    plain: list[str] = []
    prune = Policy().prune
    budget = ExpansionBudget()  # one for the folder, as for a run
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        unreported: list[ManifestError] = []
        for doc in iter_documents(str(path), str(path), unreported, budget):
            doc.release()
            value = doc.value
            if not isinstance(value, Mapping):
                continue
            if value.get("kind") == "Project":
                names.append(value.get("name") if isinstance(value.get("name"), str) else None)
                files.append(path.name)
                if isinstance(value.get("defaults"), Mapping) and not defaults:
                    defaults = dict(value["defaults"])
                if isinstance(value.get(PLAIN_ENV_KEY), list) and not plain:
                    plain = [n for n in value[PLAIN_ENV_KEY] if isinstance(n, str)]
                policy = value.get("policy")
                if isinstance(policy, Mapping) and isinstance(policy.get("prune"), str):
                    prune = policy["prune"]
    if isinstance(defaults.get("visibility"), str):
        defaults = {**defaults, "visibility": normalise_visibility(defaults["visibility"])}
    return FolderProject(tuple(names), tuple(files), defaults, tuple(plain), prune)


async def _read(
    client: ExportClient, search: str | None, tags: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, RemoteSession]]:
    items = await client.list_all_sessions(include_archived=False, search=search)
    wanted = [
        i for i in items if all(t in (i.get("tags") or []) for t in tags) and "sessionId" in i
    ]
    wanted.sort(key=lambda i: (str(i.get("createdAt") or ""), str(i["sessionId"])))
    listed = {str(i["sessionId"]): RemoteSession.from_api(i) for i in wanted}
    gate = asyncio.Semaphore(_DETAIL_CONCURRENCY)

    async def detail(session_id: str) -> dict[str, Any]:
        async with gate:
            return await client.get_session(session_id)

    async def loop(session_id: str) -> tuple[str, dict[str, Any]]:
        async with gate:
            return session_id, await client.get_loop(session_id)

    details = list(await asyncio.gather(*(detail(s) for s in listed)))
    looping = [str(d["sessionId"]) for d in details if in_loop_mode(d)]
    loops = dict(await asyncio.gather(*(loop(s) for s in looping)))
    return details, loops, listed


def _file_name(exported: ExportedSession, reserved: set[str]) -> str:
    name = f"{exported.name}.yaml"
    return f"{exported.name}.session.yaml" if name in reserved else name


@dataclass(frozen=True)
class _Declared:
    """What the manifests in an export folder already say of sessions export might
    write: names declared ``state: forgotten`` (their sessions, unmanaged once let go,
    must not be exported under them), sessions a declaration will ``adopt`` (id -> its
    name), and every name declared (a session exported under one, in another file than
    the one export writes for it, would be declared twice)."""

    forgotten: frozenset[str] = frozenset()
    adopted: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Every name declared, and the file that declares it (as the folder was given:
    # notes show it so; compared resolved).
    names: Mapping[str, Path] = dataclasses.field(default_factory=dict)
    # Sessions a file export wrote says it was exported from (its source comment): id ->
    # the name that file declares, so a session export wrote keeps its file and name.
    exported: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Names declared active (``state`` left out or ``active``): a plan creates each one
    # the hub does not hold.
    active: frozenset[str] = frozenset()

    @property
    def claims(self) -> dict[str, str]:
        """Session id -> the name a declaration gives it: ``adopt:``, else the file
        export wrote for it."""
        return {**self.exported, **self.adopted}

    def by_a_person(self, exported: ExportedSession, target: Path) -> bool:
        """Whether a file declares ``exported``'s name other than ``target``, the file
        export writes for it, as export wrote it (nobody edited it since)."""
        found = self.names.get(exported.name)
        if found is None or found.resolve() != target.resolve():
            return found is not None
        return not _rewritable(target, exported)


def _declared(folder: Path | None, environ: Mapping[str, str], project: str) -> _Declared:
    """:class:`_Declared` for ``folder`` as the loader reads it (SessionSets and
    subfolders included). Raises its ``ManifestErrors`` when it does not validate on its
    own, a Policy rule that does not compile or fails on its declarations included (no
    file export writes can mend it; a folder without a Project reads as ``project``'s);
    empty for other refusals (another project's folder: the later checks say so)."""
    if folder is None or not folder.is_dir():
        return _Declared()
    try:
        found = inspect_manifests([str(folder)], environ=environ, project_name=project)
    except ManifestErrors:
        raise
    except ReconcilerError:
        return _Declared()
    if found.policies:
        # A rule that does not compile, or fails on the declarations (as validate finds
        # it): the folder does not validate. A deny it finds is the plan's to refuse.
        from reconciler.policy import compile_policies, evaluate_policies

        compiled = compile_policies(found.policies)
        evaluate_policies(compiled, project=project, desired=found.sessions)
    files = {d.name: Path(d.source.file) for d in found.sessions if d.source}
    return _Declared(
        frozenset(d.name for d in found.sessions if d.state == "forgotten"),
        {d.adopt: d.name for d in found.sessions if d.adopt is not None},
        files,
        _exported_from(files),
        frozenset(d.name for d in found.sessions if d.state == "active"),
    )


@dataclass(frozen=True)
class ExportFolder:
    """An export's folder as read before any request: its Project (names, defaults)
    and what its manifests already declare. ``read_export_folder`` makes it."""

    folder: FolderProject
    declared: _Declared


def read_export_folder(
    out_dir: Path | None, environ: Mapping[str, str], project: str
) -> ExportFolder:
    """Read (and check) ``out_dir`` for an export of ``project``: no request is needed,
    so a command calls it before it opens a client (an invalid folder then costs no
    connection, no lock and, against the embedded hub, no database). Raises the folder's
    ``ManifestErrors`` when it does not validate on its own (``_declared``)."""
    folder = folder_project(out_dir) if out_dir is not None else FolderProject((), (), {})
    return ExportFolder(folder, _declared(out_dir, environ, project))


def _gone(declared: _Declared, listed: Mapping[str, RemoteSession], project: str) -> list[str]:
    """A note for each session a file export wrote declares active that the hub lists
    no more (archived or deleted since), and no other session of this project carries
    its name (a replacement's new one does): export writes no file for it, so the file
    stays, and a plan of the folder would create the session again."""
    managed = {m.name for s in listed.values() for m in s.markers() if m.project == project}
    return [
        f"{declared.names[name]}: declares {name}, exported from {session_id}, which the "
        f"hub no longer lists (archived or deleted): a plan of this folder creates {name} "
        "again; delete the file, or declare it `state: archived`"
        for session_id, name in sorted(declared.exported.items(), key=lambda item: item[1])
        if session_id not in listed and name in declared.active and name not in managed
    ]


def _rewritable(path: Path, exported: ExportedSession) -> bool:
    """Whether export may write ``exported`` over ``path`` (``may_rewrite``)."""
    try:
        return may_rewrite(path.read_text(encoding="utf-8"), render_file(exported))
    except (OSError, UnicodeDecodeError, ExportRenderError):
        return False


def _exported_from(files: Mapping[str, Path]) -> dict[str, str]:
    """Session id -> declared name, for each file export wrote (one session each)."""
    found: dict[str, str] = {}
    for name, path in files.items():
        try:
            session_id = exported_from(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
        if session_id is not None:
            found.setdefault(session_id, name)
    return found


def _left_undeclared(
    exported: ExportedSession, project: str, out_dir: Path | None, prune: str
) -> str:
    """What a skip means for a session ``project`` manages: no file declares it, so a
    plan of the exported manifests would archive or delete it (``prune``: the folder's
    Project's, else the default export writes), unless ``prune`` is ``keep``."""
    if not exported.owned_by(project) or prune not in ("archive", "delete"):
        return ""
    where = str(out_dir) if out_dir is not None else "the exported manifests"
    if exported.lifecycle and exported.lifecycle.get("preventDestroy") is True:
        # Protected: the plan refuses to remove it, and with it the folder's every plan.
        return (
            f". Project {project} manages it: until a file declares it, every plan of "
            f"{where} is refused (preventDestroy forbids the {prune} that prune asks for)"
        )
    return (
        f". Project {project} manages it: until a file declares it, a plan of {where} "
        f"would {prune} it (prune: {prune})"
    )


def _invalid(
    texts: Mapping[str, str], environ: Mapping[str, str], project: str, plain: Sequence[str]
) -> dict[str, str]:
    """File name -> the first problem, for each session file that would not validate alone
    (beside a Project declaring ``plain``)."""
    if not texts:
        return {}
    with tempfile.TemporaryDirectory(prefix="reconciler-export-") as scratch:
        paths = {}
        for name, text in texts.items():
            path = Path(scratch) / name
            path.write_text(text, encoding="utf-8")
            paths[str(path)] = name
        checked = list(paths)
        if plain:
            project_file = Path(scratch) / "_project.yaml"  # never a session's file name
            project_file.write_text(render_project_file(project, plain), encoding="utf-8")
            checked.append(str(project_file))
        try:
            inspect_manifests(checked, environ=environ, project_name=project)
        except ManifestErrors as exc:
            found: dict[str, str] = {}
            for error in exc.errors:
                if error.file in paths:
                    found.setdefault(paths[error.file], error.detail)
            return found
    return {}


def _saved_plan_notes(exported: ExportedSession, plain: Collection[str]) -> list[str]:
    """The env references written with a default whose variable the folder's Project
    does not declare plain. The record kept the default because the variable was plain
    where the session was applied; the manifest applies, but a plan saved with ``--out``
    refuses it (``planfile.literal_env_values``) until a person declares the variable
    plain. Export never declares one itself (see :func:`export_sessions`)."""
    env = exported.spec.get("env")
    if not isinstance(env, Mapping):
        return []
    notes = []
    for key, value in env.items():
        match = sole_reference(value)
        if match is not None and match["default"] and match["name"] not in plain:
            notes.append(
                f"{exported.name}: env {key} keeps the default it was applied with; a plan "
                "saved with --out that creates or replaces the session refuses it until the "
                f"Project's plainEnv names {match['name']} (declare it there if its value is "
                "no secret)"
            )
    return notes


def export_notes(exported: ExportedSession, plain_env: Collection[str] = ()) -> list[str]:
    """What a person should know of how ``exported`` is written (stderr notes), for a
    folder whose Project declares ``plain_env`` plain."""
    notes: list[str] = _saved_plan_notes(exported, plain_env)
    if exported.record_disagrees:
        notes.append(
            f"{exported.name}: its metadata.reconciler record says another "
            f"{', '.join(exported.record_disagrees)} than the hub reports, so it is not "
            "this tool's: written as the hub reports it"
        )
    if exported.dropped_env_keys:
        notes.append(
            f"{exported.name}: env keys not exported (not variable names): "
            + ", ".join(exported.dropped_env_keys)
        )
    for key in exported.literal_env_keys:
        notes.append(
            f"{exported.name}: env {key} was declared with a value written literally, in full "
            "or in part (text beside a reference, or a default), which is never recorded: "
            "exported as a bare reference (the next plan replaces the session unless the "
            "manifest is edited back)"
        )
    if exported.repeated_skills:
        notes.append(
            f"{exported.name}: skills the hub holds more than once, written once (a manifest "
            "declares each skill once; plans leave the repeats on the hub): "
            + ", ".join(exported.repeated_skills)
        )
    if exported.reserved_tags:
        notes.append(
            f"{exported.name}: tags with the reserved prefix reconciler: left out of the "
            "manifest (they stay on the session): " + ", ".join(exported.reserved_tags)
        )
    for key in exported.inherited:
        ignored = key in ((exported.lifecycle or {}).get("ignoreChanges") or ())
        notes.append(
            f"{exported.name}: the Project's defaults give {key}, which the session does not "
            + (
                "have: lifecycle.ignoreChanges lists it, so plans leave it alone"
                if ignored
                else "have; the manifest inherits it"
            )
        )
    if exported.found_paused:
        notes.append(
            f"{exported.name}: found paused: lifecycle.ignoreChanges lists status, so "
            "plans leave it paused (drop it to have apply resume the session)"
        )
    return notes


def _adopted_declaration(
    exported: ExportedSession, project: str, defaults: Mapping[str, Any]
) -> DesiredSession:
    """The file export writes for ``exported``, as declared (the folder Project's
    ``defaults`` under it: export leaves out what they give): what its adoption records
    as applied (the fields the hub holds as written; the protection its tags show)."""
    ignored = tuple((exported.lifecycle or {}).get("ignoreChanges") or ())
    protected = any(is_protected_tag(t, (project,)) for t in exported.tags)
    spec = {**defaults, **exported.spec}
    return DesiredSession(
        name=exported.name,
        spec=spec,
        resolved=spec,
        lifecycle=Lifecycle(prevent_destroy=protected, ignore_changes=ignored),
    )


def _adoption(
    project: str,
    exports: Sequence[ExportedSession],
    hashes: Mapping[str, str],
    listed: Mapping[str, RemoteSession],
    org_id: str | None,
    defaults: Mapping[str, Any],
) -> tuple[Plan, tuple[ExportedSession, ...]]:
    actions: list[Action] = []
    already: list[ExportedSession] = []
    for exported in exports:
        marker = Marker(project, exported.name, hashes[exported.name])
        own = [m for m in exported.markers if m.project == project]
        if own == [marker]:
            already.append(exported)
            continue
        tags = adopt_tags(exported, project, marker)
        remote = listed[exported.session_id]
        # Shown as the person confirming will see them on the session (the record aside).
        added = tuple(t for t in tags if t not in exported.tags)
        removed = tuple(t for t in exported.tags if t not in tags)
        declared = _adopted_declaration(exported, project, defaults)
        record = adoption_record(project, declared, remote, marker)
        actions.append(
            Action(
                kind="update",
                name=exported.name,
                reason=ADOPT_REASON,
                session_id=exported.session_id,
                body={"tags": with_applied_tag(tags, project, record)},
                changes=(FieldChange("tags", added=added, removed=removed),),
                precondition=fingerprint(listed[exported.session_id]),
                marker_tag=marker.tag,
            )
        )
    # The sessions listed that the project manages, as a plan counts them: "No changes
    # ... (10 managed sessions)" when there is nothing left to adopt, not 0 (a SessionSet's
    # sessions are not exported, but they are managed).
    managed = sum(
        1
        for r in listed.values()
        if not r.archived_like and any(m.project == project for m in r.markers())
    )
    plan = Plan(project=project, actions=tuple(actions), org_id=org_id, managed_count=managed)
    return plan, tuple(already)


async def export_sessions(
    client: ExportClient,
    *,
    project: str,
    environ: Mapping[str, str],
    search: str | None = None,
    tags: Sequence[str] = (),
    out_dir: Path | None = None,
    org_id: str | None = None,
    unmanaged_only: bool = False,
    read: ExportFolder | None = None,
) -> ExportOutcome:
    """Export the non-archived sessions (search/tags narrow them) of ``project``;
    ``unmanaged_only``: only those no project manages (no marker tag). A session the
    project does not manage is written with ``adopt: ID`` (the next apply adopts it
    instead of creating a copy), also when the caller applies the adoption plan in this
    run: declined, refused or failed, the files must still adopt, not create a copy
    (``spend_adopt_lines`` drops the line of each session adopted).

    With ``out_dir``: one ``<name>.yaml`` per session and ``project.yaml`` when the folder
    holds no Project, written all or none after every file was checked (files export
    wrote before are updated, unless a person edited them). Without: the stream.
    Returns what was done and the adoption plan. Raises ``UsageError`` (a file in the
    way, another project's folder) or ``ManifestErrors`` (the folder does not validate
    with the new files), having written nothing. ``read`` is ``out_dir`` as
    :func:`read_export_folder` read it already; without it, it is read here, first.
    """
    # The folder first: one that does not validate on its own stops the export before
    # any request (its errors, not those of files export would have added to it).
    if read is None:
        read = read_export_folder(out_dir, environ, project)
    folder, declared = read.folder, read.declared
    writes_project = out_dir is not None and not folder.files
    reserved = {*folder.files, *([PROJECT_FILE] if writes_project else [])}
    details, loops, listed = await _read(client, search, tags)
    exports = build_exports(
        project,
        details,
        loops,
        taken={Path(f).stem for f in reserved},
        forgotten=declared.forgotten,
        declared=declared.names.keys(),
        adopted=declared.claims,
        defaults=folder.defaults,
        plain_env=folder.plain_env if folder.files else None,
    )
    notes: list[str] = []
    texts: dict[str, str] = {}
    candidates: dict[str, ExportedSession] = {}
    renamed: dict[str, str] = {}  # file -> the name it declared: a rename written there
    managed = 0
    claims = declared.claims
    exported_names = set(declared.exported.values())  # declared in a file export wrote
    for exported in exports:
        if unmanaged_only and exported.markers:
            managed += 1
            continue
        file_name = _file_name(exported, reserved)
        # A session export wrote a file for under another name, and managed under a new
        # one since (a rename, `previously`): that file is the session's, updated in
        # place. Another file declaring the new name would leave the old one declared,
        # which a plan of the folder creates again (and prunes the renamed session).
        was = declared.exported.get(exported.session_id) if exported.owned_by(project) else None
        if out_dir is not None and was is not None and was != exported.name:
            path = declared.names[was]
            if path.parent.resolve() != out_dir.resolve() or not _rewritable(path, exported):
                notes.append(
                    f"skipped {exported.session_id} ({exported.name}): {path} declares it "
                    f"as {was}, and export did not write it as it is (edited or moved "
                    f"since); declare it there as {exported.name} with `previously: "
                    f"[{was}]`, or a plan of this folder creates {was} again"
                )
                continue
            file_name = path.name
        target = out_dir / file_name if out_dir is not None else None
        # An unmanaged session the folder declares already (`adopt:`, or the file export
        # wrote for it): that declaration is the session's while a person owns it.
        unmanaged = not exported.owned_by(project)
        claimed = claims.get(exported.session_id) if unmanaged else None
        # Let go on purpose (`state: forgotten` on the name it was created as, or that
        # the folder's declaration gives it): export does not take it back.
        names = (claimed, exported.created_as) if unmanaged else ()
        let_go = next((n for n in names if n is not None and n in declared.forgotten), None)
        if let_go is not None:
            notes.append(
                f"skipped {exported.session_id}: the folder declares {let_go} `state: "
                f"forgotten`; to manage it again, declare {let_go} active with "
                f"`adopt: {exported.session_id}`"
            )
            continue
        if claimed and target is not None and declared.by_a_person(exported, target):
            if exported.session_id in declared.adopted:
                notes.append(
                    f"skipped {exported.session_id}: the folder declares it adopted as "
                    f"{claimed} (`adopt:`); apply that"
                )
            else:  # a file export wrote for it, moved or edited since: the person's now
                notes.append(
                    f"skipped {exported.session_id} ({claimed}): declared in "
                    f"{declared.names[claimed]}, moved or edited since export wrote it; "
                    f"add `adopt: {exported.session_id}` beside its name there, or the "
                    "next apply creates a copy"
                )
            continue
        if exported.name in declared.forgotten:  # only one still managed as it keeps it
            notes.append(
                f"skipped {exported.session_id} ({exported.name}): the folder declares it "
                "`state: forgotten`; apply that first, then export it as unmanaged"
            )
            continue
        foreign = exported.foreign_markers(project)
        if foreign and not exported.owned_by(project):
            owners = ", ".join(sorted({m.project for m in foreign}))
            notes.append(f"skipped {exported.session_id}: managed by project {owners}")
            continue
        if exported.set_name is not None and exported.owned_by(project):
            notes.append(
                f"skipped {exported.session_id} ({exported.name}): generated by SessionSet "
                f"{exported.set_name!r}; export leaves sets alone"
                + (
                    _left_undeclared(exported, project, out_dir, folder.prune)
                    if exported.name not in declared.names
                    else ""
                )
            )
            continue
        # Declared in another file, or in a person's file under the name export would
        # give its own.
        elsewhere = declared.names.get(exported.name)
        if (
            target is not None
            and elsewhere is not None
            and (elsewhere.resolve() != target.resolve() or exported.name not in exported_names)
        ):
            notes.append(
                f"skipped {exported.session_id} ({exported.name}): declared already in {elsewhere}"
            )
            continue
        if target is not None and elsewhere is not None and declared.by_a_person(exported, target):
            # The file export wrote for it, edited since (a comment, a field): a person's
            # now. Left alone, and the rest exported: one edit must not stop every export.
            notes.append(
                f"skipped {exported.session_id} ({exported.name}): {target} was edited "
                "since export wrote it, so export leaves it to you (delete the file to have "
                "export write it afresh)"
            )
            continue
        if exported.adopt is not None and exported.dropped_env_keys:
            # No manifest can declare those keys: its plan would refuse the adoption
            # (createOnlyDiffers), and that refusal stops every plan of the folder.
            notes.append(
                f"skipped {exported.session_id} ({exported.name}): its env keys "
                f"{', '.join(exported.dropped_env_keys)} are not variable names, so no "
                "manifest can declare them, nor adopt the session as it is"
            )
            continue
        try:
            texts[file_name] = render_file(exported)
        except ExportRenderError as exc:
            notes.append(
                f"skipped {exported.session_id} ({exported.name}): {exc}"
                + _left_undeclared(exported, project, out_dir, folder.prune)
            )
            continue
        candidates[file_name] = exported
        if out_dir is not None and was is not None and was != exported.name:
            renamed[file_name] = was  # said once the file is sure to be written
    # References outside env name plain variables: the folder's Project must declare them,
    # else the session is skipped, saying so. Export never declares one itself: the text
    # it reads (a label, a task, the record in metadata) is anyone's in the organisation,
    # and a `${env:NAME}` there declared plain would have the next apply write NAME's
    # value where the whole organisation reads it.
    plain = folder.plain_env if folder.files else ()
    for file_name, problem in _invalid(texts, environ, project, plain).items():
        exported = candidates.pop(file_name)
        del texts[file_name]
        notes.append(
            f"skipped {exported.session_id} ({exported.name}): its manifest would not "
            f"validate: {problem}" + _left_undeclared(exported, project, out_dir, folder.prune)
        )
    for file_name, was in renamed.items():
        if out_dir is not None and file_name in candidates:
            name = candidates[file_name].name
            notes.append(f"{out_dir / file_name}: declares {name} now (renamed from {was})")
    if managed:
        notes.append(f"left out {managed} session(s) a project manages (--unmanaged-only)")
    if out_dir is not None and not search and not tags:
        notes += _gone(declared, listed, project)
    kept = tuple(candidates.values())
    for exported in kept:
        notes += export_notes(exported, plain)
    written: list[Path] = []
    updated: list[Path] = []
    unchanged: list[Path] = []
    stream: str | None = None
    if out_dir is None:
        stream = render_stream(project, kept)
        hashes = {e.name: e.spec_hash for e in kept}
    else:
        if writes_project:
            texts[PROJECT_FILE] = render_project_file(project)
            notes.append(
                f"{out_dir / PROJECT_FILE}: the default policy, no plainEnv and no defaults: "
                "the hub holds no Project's settings (copy any you keep elsewhere)"
            )
        hashes, written, updated, unchanged = _write(out_dir, texts, candidates, project, environ)
    if not kept:
        notes.append("no sessions to export")
    plan, already = _adoption(project, kept, hashes, listed, org_id, folder.defaults)
    return ExportOutcome(
        exports=kept,
        notes=tuple(notes),
        stream=stream,
        written=tuple(written),
        unchanged=tuple(unchanged),
        adoption=plan,
        already_adopted=already,
        updated=tuple(updated),
        placed={e.session_id: out_dir / n for n, e in candidates.items()} if out_dir else {},
    )


def spend_adopt_lines(
    outcome: ExportOutcome, adopted: Collection[str]
) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """The files of the sessions ``export --adopt`` adopted (``adopted``: their ids),
    rewritten without their ``adopt:`` line, now spent: what exporting again would write,
    so that export stays idempotent. The line is written first so that an adoption
    declined, refused or failed leaves files that still adopt. A file changed since this
    run wrote it is left as it is. Returns the files rewritten, and what kept others from
    being rewritten (a spent line does nothing: the run's outcome stands)."""
    by_id = {e.session_id: e for e in outcome.exports}
    rewritten: list[Path] = []
    problems: list[str] = []
    for session_id in sorted(adopted):
        exported, path = by_id.get(session_id), outcome.placed.get(session_id)
        if exported is None or path is None or exported.adopt is None:
            continue
        try:
            if path.read_text(encoding="utf-8") != render_file(exported):
                continue
        except (OSError, UnicodeDecodeError):
            continue
        try:
            replace_file(path, render_file(dataclasses.replace(exported, adopt=None)))
        except OSError as exc:
            why = exc.strerror or exc
            problems.append(f"could not drop the spent adopt: line of {path}: {why}")
            continue
        rewritten.append(path)
    return tuple(rewritten), tuple(problems)


def _as_it_will_be(
    out_dir: Path, replaced: Sequence[str], staged_paths: Sequence[Path]
) -> list[str]:
    """The manifest files of ``out_dir`` once the staged files are in place: its own
    files but those being replaced, then the staged ones."""
    if not replaced:
        return [str(out_dir), *map(str, staged_paths)]
    gone = {(out_dir / name).resolve() for name in replaced}
    found, _ = discover([str(out_dir)])  # a path problem is reported by the load
    kept = [f.path for f in found if Path(f.path).resolve() not in gone]
    return [*kept, *map(str, staged_paths)]


def _as_placed(exc: ManifestErrors, out_dir: Path, paths: Mapping[str, Path]) -> ManifestErrors:
    """``exc`` with each staged file named where it was to be placed: the staging
    folder is gone when the errors are read."""
    where = {str(path): str(out_dir / name) for name, path in paths.items()}

    def placed(text: str) -> str:
        for staged_at, final in where.items():
            text = text.replace(staged_at, final)
        return text

    return ManifestErrors(
        [
            ManifestError(
                placed(error.detail),
                file=placed(error.file) if error.file is not None else None,
                line=error.line,
                column=error.column,
                field=error.field,
            )
            for error in exc.problems()
        ],
        # What the folder warns of is said beside its errors, as by any command.
        [
            dataclasses.replace(w, file=placed(w.file), message=placed(w.message))
            if isinstance(w, ManifestWarning)
            else w
            for w in exc.warnings
        ],
    )


def _write(
    out_dir: Path,
    texts: Mapping[str, str],
    by_file: Mapping[str, ExportedSession],
    project: str,
    environ: Mapping[str, str],
) -> tuple[dict[str, str], list[Path], list[Path], list[Path]]:
    """Check the folder with the new and updated files in it, then place them; the
    hash per name, the files written new, those updated, and those left unchanged."""
    files = compare_with_folder(
        out_dir,
        texts,
        rewritable=may_rewrite,
        written_by_export=lambda text: exported_from(text) is not None,
    )
    unchanged = [out_dir / name for name in files.unchanged]
    written: list[Path] = []
    updated: list[Path] = []
    if not files.writes:
        loaded = load_manifests([str(out_dir)], environ=environ, project_name=project)
    else:
        with staged(out_dir, files.writes) as paths:
            # The folder as it will be: a file that does not validate stops it all here.
            try:
                loaded = load_manifests(
                    _as_it_will_be(out_dir, list(files.updated), list(paths.values())),
                    environ=environ,
                    project_name=project,
                )
            except ManifestErrors as exc:
                raise _as_placed(exc, out_dir, paths) from None
            placed = publish(out_dir, paths, files.previous)
        written = [p for p in placed if p.name in files.new]
        updated = [p for p in placed if p.name in files.updated]
    declared = {d.name: d.spec_hash for d in loaded.sessions}
    hashes = {e.name: declared.get(e.name, e.spec_hash) for e in by_file.values()}
    return hashes, written, updated, unchanged
