"""End to end on the embedded hub: twin copies a concurrent apply of the same manifests
left stay exempt from maxDestroyPercent after a plainEnv value changed, and after an
apply that updated them was stopped before archiving the twins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.applyrun import ApplyRequest, run_apply
from reconciler.client.core import CoderClient
from reconciler.connect import Endpoint, open_client, resolve_endpoint
from reconciler.errors import ApiError, SafetyError
from reconciler.settings import GlobalOptions

Options = Callable[[str], GlobalOptions]


async def _twelve_twins(tmp_path: Path) -> tuple[Path, Options, Endpoint]:
    """12 sessions (label `Triage ${env:GIT_BRANCH}`, maxDestroyPercent 10) applied with
    GIT_BRANCH=main, then the copies a concurrent apply of the same manifests made and
    did not settle (interrupted, its listing failed...): same task, label, tags."""
    folder = tmp_path / "m"
    folder.mkdir()
    docs = [
        "apiVersion: reconciler/v1\nkind: Project\nname: alpha\nplainEnv: [GIT_BRANCH]\n"
        "policy: {maxDestroyPercent: 10}\n"
    ]
    for i in range(12):
        docs.append(
            f"apiVersion: reconciler/v1\nkind: Session\nname: s{i:02d}\n"
            f"spec: {{task: t{i}, label: 'Triage ${{env:GIT_BRANCH}}'}}\n"
        )
    (folder / "all.yaml").write_text("---\n".join(docs))
    db = str(tmp_path / "hub.sqlite3")

    def opts(branch: str) -> GlobalOptions:
        return GlobalOptions(api_url="local", local_db=db, environ={"GIT_BRANCH": branch})

    endpoint = resolve_endpoint(opts("main"))
    first = await run_apply(opts("main"), ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    assert first.report is not None and len(first.report.results) == 12
    async with open_client(endpoint) as client:
        for item in await client.list_all_sessions(include_archived=False):
            detail = await client.get_session(item["sessionId"])
            await client.create_session(
                {"task": detail["task"], "label": item["label"], "tags": item["tags"]}
            )
    return folder, opts, resolve_endpoint(opts("dev"))


async def test_twins_then_a_plain_env_change_are_archived_not_refused(tmp_path: Path) -> None:
    folder, opts, endpoint = await _twelve_twins(tmp_path)
    try:
        done = await run_apply(opts("dev"), ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    except SafetyError as exc:
        pytest.fail(f"refused: {exc}")
    assert done.report is not None
    kinds = sorted(r.action.kind for r in done.report.results)
    assert kinds == ["archive"] * 12 + ["update"] * 12


async def test_twins_are_not_refused_after_an_apply_whose_archives_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The apply updates the kept sessions (their record rewritten), then its listing
    right before the archives fails once, which fails every archive of a twin; the next
    apply, same manifests and environment, still finds them twins."""
    folder, opts, endpoint = await _twelve_twins(tmp_path)
    updated = {"n": 0}
    patch, listing = CoderClient.update_session, CoderClient.list_all_sessions

    async def counting(self: CoderClient, sid: str, body: Any) -> Any:
        updated["n"] += 1
        return await patch(self, sid, body)

    async def flaky(self: CoderClient, *a: Any, **k: Any) -> Any:
        if updated["n"] == 12 and not updated.get("failed"):
            updated["failed"] = True  # the re-listing right before the archive phase
            raise ApiError("503 once")
        return await listing(self, *a, **k)

    monkeypatch.setattr(CoderClient, "update_session", counting)
    monkeypatch.setattr(CoderClient, "list_all_sessions", flaky)
    done = await run_apply(opts("dev"), ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    assert done.report is not None
    outcomes = sorted((r.action.kind, r.outcome) for r in done.report.results)
    assert outcomes == [("archive", "failed")] * 12 + [("update", "succeeded")] * 12
    monkeypatch.undo()
    try:  # the same manifests, the same environment, nothing else changed
        await run_apply(opts("dev"), ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    except SafetyError as exc:
        pytest.fail(f"real twins refused: {exc}")
