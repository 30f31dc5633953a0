"""End to end on the embedded hub: twin copies a concurrent apply of the same manifests
left are archived by the next apply after a plainEnv value changed, not refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.applyrun import ApplyRequest, run_apply
from reconciler.connect import open_client, resolve_endpoint
from reconciler.errors import SafetyError
from reconciler.settings import GlobalOptions


async def test_twins_then_a_plain_env_change_are_refused(tmp_path: Path) -> None:
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
    # The copies a concurrent apply of the same manifests (same GIT_BRANCH) made and
    # did not settle (interrupted, its listing failed, ...): same task, label, tags.
    async with open_client(endpoint) as client:
        for item in await client.list_all_sessions(include_archived=False):
            detail = await client.get_session(item["sessionId"])
            await client.create_session(
                {"task": detail["task"], "label": item["label"], "tags": item["tags"]}
            )
    endpoint = resolve_endpoint(opts("dev"))
    try:
        done = await run_apply(opts("dev"), ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    except SafetyError as exc:
        pytest.fail(f"refused: {exc}")
    assert done.report is not None
    kinds = sorted(r.action.kind for r in done.report.results)
    assert kinds == ["archive"] * 12 + ["update"] * 12
