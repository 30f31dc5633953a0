"""The lost-name check after an apply (applyrun._still_kept): a kept session another run
renamed away keeps no name; one whose project rename another run's re-tagging beat
still keeps it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.applyrun import ApplyRequest, run_apply
from reconciler.client.core import CoderClient
from reconciler.connect import open_client, resolve_endpoint
from reconciler.model import Marker
from reconciler.settings import GlobalOptions

SESSION_A = "apiVersion: reconciler/v1\nkind: Session\nname: a\nspec: {task: v1}\n"


async def _setup(tmp_path: Path, project_doc: str) -> tuple[Any, Any, Path, str, dict]:
    opts = GlobalOptions(api_url="local", local_db=str(tmp_path / "hub.sqlite3"), environ={})
    endpoint = resolve_endpoint(opts)
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "all.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: alpha\n---\n" + SESSION_A
    )
    first = await run_apply(opts, ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    assert first.report is not None
    old = first.report.results[0].session_id
    assert old is not None
    async with open_client(endpoint) as client:
        # the new side of a replacement whose change was undone: superseded by `old`
        new = await client.create_session(
            {"task": "v2", "tags": [Marker("alpha", "a", "0123456789ab").tag]}
        )
    (folder / "all.yaml").write_text(project_doc + SESSION_A)
    return opts, endpoint, folder, old, new


async def test_an_archive_whose_kept_session_another_run_archived_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two applies of different manifests at once: this one keeps the old session and
    archives the new side of another's replacement as superseded, while that one
    archives the old side. No request makes an archive conditional, so the name can be
    left with nothing; the run that sees it says so (failed, exit 1), where both
    reported success."""
    doc = "apiVersion: reconciler/v1\nkind: Project\nname: alpha\n---\n"
    opts, endpoint, folder, old, new = await _setup(tmp_path, doc)
    archive = CoderClient.archive_session

    async def the_other_run_first(self: CoderClient, sid: str) -> dict[str, Any]:
        if sid == new["sessionId"]:
            await archive(self, old)  # the other run's replacement archives its old side
        return await archive(self, sid)

    monkeypatch.setattr(CoderClient, "archive_session", the_other_run_first)
    done = await run_apply(opts, ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    assert done.report is not None
    [result] = done.report.results
    assert (result.action.kind, result.session_id) == ("archive", new["sessionId"])
    assert result.outcome == "failed"
    assert result.error == (
        "no active session of a is listed now: the one this apply kept was archived "
        "meanwhile (another apply of other manifests, or a hand); the next plan creates it"
    )
    assert done.report.failed == (result,)  # what makes the command exit 1


async def test_a_kept_session_that_lost_its_marker_keeps_no_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other run forgets the kept session (drops its marker: `state: forgotten`, a
    rename into another project, `sessions update --drop-marker`) instead of archiving
    it. The listing shows correctly that no active session carries `a`; the kept
    session, asked for by id, is active but carries no marker of `a`: the name is lost,
    and the run says so."""
    doc = "apiVersion: reconciler/v1\nkind: Project\nname: alpha\n---\n"
    opts, endpoint, folder, old, new = await _setup(tmp_path, doc)
    archive, patch = CoderClient.archive_session, CoderClient.update_session

    async def the_other_run_forgets(self: CoderClient, sid: str) -> dict[str, Any]:
        if sid == new["sessionId"]:
            await patch(self, old, {"tags": []})  # old kept, active, its marker gone
        return await archive(self, sid)

    monkeypatch.setattr(CoderClient, "archive_session", the_other_run_forgets)
    done = await run_apply(opts, ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    assert done.report is not None
    [result] = done.report.results
    assert (result.action.kind, result.session_id) == ("archive", new["sessionId"])
    async with open_client(endpoint) as client:
        listed = await client.list_all_sessions(include_archived=False)
    assert not any("reconciler:alpha/a@" in t for i in listed for t in i.get("tags") or [])
    assert result.outcome == "failed" and "no active session of a" in (result.error or "")


async def test_a_kept_session_renamed_away_by_another_run_keeps_no_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While this run archives the superseded session of `a`, another run (other
    manifests: `c` with previously: [a]) re-tags the kept one alpha/a -> alpha/c. No
    active session of `a` is left: the archive is failed as a lost name."""
    doc = "apiVersion: reconciler/v1\nkind: Project\nname: alpha\n---\n"
    opts, endpoint, folder, old, new = await _setup(tmp_path, doc)
    archive, patch = CoderClient.archive_session, CoderClient.update_session
    h = None
    async with open_client(endpoint) as client:
        h = Marker.parse((await client.get_session(old))["tags"][0]).hash

    async def the_other_run_renames(self: CoderClient, sid: str) -> dict[str, Any]:
        if sid == new["sessionId"]:
            await patch(self, old, {"tags": [Marker("alpha", "c", h).tag]})
        return await archive(self, sid)

    monkeypatch.setattr(CoderClient, "archive_session", the_other_run_renames)
    done = await run_apply(opts, ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    [result] = done.report.results
    async with open_client(endpoint) as client:
        listed = await client.list_all_sessions(include_archived=False)
    assert not any("reconciler:alpha/a@" in t for i in listed for t in i.get("tags") or [])
    assert result.outcome == "failed", "name a lost, yet the archive is reported succeeded"


async def test_project_rename_whose_retag_lost_a_race_is_not_a_lost_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rename whose re-tagging lost a race, with a project rename (beta, previously: [alpha])
    instead of a session rename: the kept one still carries alpha/a (its re-tag lost a
    race) and the next plan re-tags it, yet _still_kept looks for markers of `beta` only
    and the superseded session's archive must not be failed as a lost name."""
    doc = "apiVersion: reconciler/v1\nkind: Project\nname: beta\npreviously: [alpha]\n---\n"
    opts, endpoint, folder, old, new = await _setup(tmp_path, doc)
    async with open_client(endpoint) as client:
        before = (await client.get_session(old))["tags"]
    _beaten_retag(monkeypatch, old, before)
    done = await run_apply(opts, ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    by_kind = {r.action.kind: r for r in done.report.results}
    async with open_client(endpoint) as client:
        kept = await client.get_session(old)
    assert kept["status"] != "archived" and "reconciler:alpha/a@" in kept["tags"][0]
    monkeypatch.undo()
    again = await run_apply(opts, ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    assert [(r.action.kind, r.session_id) for r in again.report.results] == [("update", old)]
    archive = by_kind["archive"]
    assert archive.outcome == "succeeded", archive.error


def _beaten_retag(monkeypatch: pytest.MonkeyPatch, session_id: str, before: Any) -> None:
    """Another run's tags PATCH of ``session_id``, read before ours, lands after it."""
    patch = CoderClient.update_session

    async def raced(self: CoderClient, sid: str, body: Any) -> Any:
        answer = await patch(self, sid, body)
        if sid == session_id:
            await patch(self, sid, {"tags": before})
        return answer

    monkeypatch.setattr(CoderClient, "update_session", raced)


RENAME_PROJECT = "apiVersion: reconciler/v1\nkind: Project\nname: alpha\n---\n"


async def test_a_rename_whose_tags_lost_a_race_is_not_a_lost_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = GlobalOptions(api_url="local", local_db=str(tmp_path / "hub.sqlite3"), environ={})
    endpoint = resolve_endpoint(opts)
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "all.yaml").write_text(
        RENAME_PROJECT + "apiVersion: reconciler/v1\nkind: Session\nname: a\nspec: {task: v1}\n"
    )
    first = await run_apply(opts, ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    assert first.report is not None
    old = first.report.results[0].session_id
    assert old is not None
    async with open_client(endpoint) as client:
        # the new side of a replacement whose change was undone: superseded by `old`
        await client.create_session(
            {"task": "v2", "tags": [Marker("alpha", "a", "0123456789ab").tag]}
        )
        before = (await client.get_session(old))["tags"]
    (folder / "all.yaml").write_text(
        RENAME_PROJECT
        + "apiVersion: reconciler/v1\nkind: Session\nname: b\npreviously: [a]\nspec: {task: v1}\n"
    )
    _beaten_retag(monkeypatch, old, before)
    done = await run_apply(opts, ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    assert done.report is not None
    by_kind = {r.action.kind: r for r in done.report.results}
    assert by_kind["update"].outcome == "failed"  # LOST_MARKER: reported on its own
    async with open_client(endpoint) as client:
        kept = await client.get_session(old)
    assert kept["status"] not in ("archived",) and Marker.parse(kept["tags"][0]) is not None
    monkeypatch.undo()
    again = await run_apply(opts, ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    assert again.report is not None
    assert [(r.action.kind, r.session_id) for r in again.report.results] == [("update", old)]
    archive = by_kind["archive"]
    # `old` is active under the old name's marker, and the next plan renames it: the
    # superseded session's archive lost nothing.
    assert archive.outcome == "succeeded", archive.error
