"""`reconciler export`: manifests from existing sessions, and `--adopt` to manage them."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.errors import ManifestError, UsageError
from reconciler.export import (
    ExportedSession,
    adopt_tags,
    build_exports,
    render_file,
    render_project_file,
    render_stream,
)
from reconciler.manifest.schemagen import PROJECT_NAME_PATTERN
from reconciler.model import Marker

_PROJECT_RE = re.compile(PROJECT_NAME_PATTERN)
_DETAIL_CONCURRENCY = 8


__all__ = ["command"]


@click.command("export")
@click.option(
    "--project",
    "project",
    metavar="NAME",
    help="Project to export for (default: the Project document in --out DIR).",
)
@click.option("--search", metavar="S", help="Only sessions the hub's search matches.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="T",
    help="Only sessions carrying this tag (repeatable).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write one <name>.yaml per session (and project.yaml when DIR has no Project); "
    "default: print the documents to stdout.",
)
@click.option(
    "--adopt", is_flag=True, help="Then mark the exported sessions as managed by the project."
)
@click.option("--yes", is_flag=True, help="Adopt without asking (needed without a terminal).")
@pass_options
def command(
    opts: GlobalOptions,
    project: str | None,
    search: str | None,
    tags: tuple[str, ...],
    out_dir: Path | None,
    adopt: bool,
    yes: bool,
) -> int:
    """Write manifests for existing (non-archived) sessions.

    Each session's detail (GET /hub/session/{id}) becomes a Session manifest: task,
    label, agent, visibility, workflowMode, loop, tags, skills, repo(s), workspaceId
    and metadata. env values are never written: each key becomes a ${env:KEY}
    reference. Sessions managed by another project are skipped.

    --adopt then adds the marker tag reconciler:<project>/<name>@<hash> to each one
    (PATCH), so that `reconciler plan` on the exported files creates and replaces
    nothing.
    """
    if project is None:
        project = _project_document_name(out_dir) if out_dir is not None else None
        if project is None:
            raise UsageError(
                "--project NAME is needed (or --out DIR holding a Project document to name it)"
            )
    if not _PROJECT_RE.match(project):
        raise UsageError(f"--project {project!r} is not a valid name ([a-z0-9][a-z0-9-]{{0,39}})")
    if adopt and not yes and not sys.stdin.isatty():
        raise UsageError("--adopt without a terminal needs --yes")
    return asyncio.run(_export(opts, project, search, tags, out_dir, adopt, yes))


async def _export(
    opts: GlobalOptions,
    project: str,
    search: str | None,
    tags: tuple[str, ...],
    out_dir: Path | None,
    adopt: bool,
    yes: bool,
) -> int:
    from reconciler.client.endpoint import open_client

    async with open_client(opts) as client:
        items = await client.list_all_sessions(include_archived=False, search=search)
        wanted = [
            item
            for item in items
            if all(t in (item.get("tags") or []) for t in tags) and "sessionId" in item
        ]
        wanted.sort(key=lambda i: (str(i.get("createdAt") or ""), str(i["sessionId"])))
        details, loops = await _read_details(client, [str(i["sessionId"]) for i in wanted])
        exports = build_exports(project, details, loops)
        kept: list[ExportedSession] = []
        for exported in exports:
            foreign = exported.foreign_markers(project)
            if foreign and not exported.owned_by(project):
                owners = ", ".join(sorted({m.project for m in foreign}))
                click.echo(f"skipped {exported.session_id}: managed by project {owners}", err=True)
                continue
            kept.append(exported)
        for exported in kept:
            if exported.dropped_env_keys:
                click.echo(
                    f"{exported.name}: env keys not exported (not variable names): "
                    + ", ".join(exported.dropped_env_keys),
                    err=True,
                )
        if out_dir is None:
            click.echo(render_stream(project, kept), nl=False)
            hashes = {e.name: e.spec_hash for e in kept}
        else:
            hashes = _write_files(opts, project, kept, out_dir)
        if not kept:
            click.echo("no sessions to export", err=True)
        if adopt and kept:
            await _adopt(client, project, kept, hashes, yes)
    return 0


async def _read_details(
    client: Any, session_ids: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    gate = asyncio.Semaphore(_DETAIL_CONCURRENCY)

    async def detail(session_id: str) -> dict[str, Any]:
        async with gate:
            result: dict[str, Any] = await client.get_session(session_id)
            return result

    async def loop(session_id: str) -> tuple[str, dict[str, Any]]:
        async with gate:
            return session_id, await client.get_loop(session_id)

    details = list(await asyncio.gather(*(detail(s) for s in session_ids)))
    looping = [str(d["sessionId"]) for d in details if d.get("workflowMode") == "loop"]
    loops = dict(await asyncio.gather(*(loop(s) for s in looping)))
    return details, loops


def _project_documents(out_dir: Path) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    from reconciler.manifest.yamlread import iter_documents

    for path in sorted(out_dir.glob("*.y*ml")):
        # The manifest reader (size cap, bounded aliases, UTF-8 only); its errors are
        # the later validation's to report: here they only decide whether to add one.
        unreported: list[ManifestError] = []
        for doc in iter_documents(str(path), str(path), unreported):
            doc.release()
            if isinstance(doc.value, Mapping) and doc.value.get("kind") == "Project":
                found.append(doc.value)
    return found


def _project_document_name(out_dir: Path) -> str | None:
    """The name of the one Project document in ``out_dir``, if there is exactly one."""
    names = {
        d.get("name") if isinstance(d.get("name"), str) else None
        for d in _project_documents(out_dir)
    }
    if len(names) == 1:
        (name,) = names
        return name
    return None


def _write_files(
    opts: GlobalOptions, project: str, exports: Sequence[ExportedSession], out_dir: Path
) -> dict[str, str]:
    """Write the files, load them back (they must validate); the hash per name."""
    from reconciler.manifest import load_manifests

    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[Path, str] = {out_dir / f"{e.name}.yaml": render_file(e) for e in exports}
    if not _project_documents(out_dir):
        files[out_dir / "project.yaml"] = render_project_file(project)
    existing = sorted(str(p) for p in files if p.exists())
    if existing:
        raise UsageError(
            "refusing to overwrite " + ", ".join(existing) + "; remove them or choose another --out"
        )
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}", err=True)
    loaded = load_manifests([str(out_dir)], environ=opts.environ, project_name=project)
    if loaded.project.name != project:
        raise UsageError(
            f"{out_dir} declares project {loaded.project.name!r}, not {project!r}; nothing adopted"
        )
    declared = {d.name: d.spec_hash for d in loaded.sessions}
    return {e.name: declared.get(e.name, e.spec_hash) for e in exports}


async def _adopt(
    client: Any,
    project: str,
    exports: Sequence[ExportedSession],
    hashes: Mapping[str, str],
    yes: bool,
) -> None:
    todo: list[tuple[ExportedSession, Marker]] = []
    for exported in exports:
        marker = Marker(project, exported.name, hashes[exported.name])
        if (
            marker.tag in exported.tags
            and sum(1 for m in exported.markers if m.project == project) == 1
        ):
            click.echo(f"{exported.name}: already adopted ({exported.session_id})", err=True)
            continue
        todo.append((exported, marker))
    if not todo:
        return
    click.echo(f"Adopt {len(todo)} session(s) into project {project}:", err=True)
    for exported, marker in todo:
        click.echo(f"  {exported.session_id} as {exported.name} (tag {marker.tag})", err=True)
    if not yes and not click.confirm("Add these marker tags?", default=False, err=True):
        click.echo("Nothing adopted.", err=True)
        return
    for exported, marker in todo:
        await client.update_session(
            exported.session_id, {"tags": adopt_tags(exported, project, marker)}
        )
        click.echo(f"adopted {exported.name} ({exported.session_id})", err=True)
