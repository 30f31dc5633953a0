"""The export workflow as a library: adoption is a plan of tag updates run by the applier."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli.main import run
from reconciler.errors import StalePlanError
from reconciler.export import adopt, export_sessions

SESSIONS: list[dict[str, Any]] = [
    {"sessionId": "s1", "status": "active", "label": "Docs bot", "task": "Docs", "tags": ["a"]},
    {
        "sessionId": "s2",
        "status": "active",
        "label": "Old",
        "task": "Old",
        "tags": ["reconciler:team/old@0123456789ab"],
    },
]


class FakeHub:
    """Just what export and the applier's updates need, recording every PATCH."""

    def __init__(self) -> None:
        self.sessions = {s["sessionId"]: copy.deepcopy(s) for s in SESSIONS}
        self.patches: list[tuple[str, dict[str, Any]]] = []

    async def list_all_sessions(
        self, *, include_archived: bool = False, search: str | None = None
    ) -> list[dict[str, Any]]:
        return [copy.deepcopy(s) for s in self.sessions.values()]

    async def get_session(self, session_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.sessions[session_id])

    async def get_loop(self, session_id: str) -> dict[str, Any]:
        return {"sessionId": session_id, "loop": None}

    async def update_session(self, session_id: str, body: dict[str, Any]) -> Any:
        self.patches.append((session_id, body))
        self.sessions[session_id].update(body)
        return self.sessions[session_id]

    async def create_session(self, body: dict[str, Any]) -> Any:
        raise AssertionError("adoption never creates")

    archive_session = resume_session = delete_session = create_session


async def test_adoption_is_a_plan_of_tag_updates_and_runs_once(tmp_path: Path) -> None:
    hub = FakeHub()
    outcome = await export_sessions(hub, project="team", environ={}, out_dir=tmp_path / "out")
    plan = outcome.adoption
    assert [(a.kind, a.name, a.session_id) for a in plan.actions] == [
        ("update", "docs-bot", "s1"),
        ("update", "old", "s2"),
    ]
    new_marker = plan.actions[1].marker_tag
    assert plan.actions[1].body == {"tags": [new_marker]}  # the stale own marker replaced
    report = await adopt(hub, plan, environ={})
    assert [r.outcome for r in report.results] == ["succeeded", "succeeded"]
    assert [sid for sid, _ in hub.patches] == ["s1", "s2"]
    # Idempotent: exported again, nothing is left to adopt.
    again = await export_sessions(hub, project="team", environ={}, out_dir=tmp_path / "out")
    assert again.adoption.actions == ()
    assert [e.name for e in again.already_adopted] == ["docs-bot", "old"]


async def test_adoption_is_refused_when_a_session_changed_since_it_was_read(
    tmp_path: Path,
) -> None:
    hub = FakeHub()
    outcome = await export_sessions(hub, project="team", environ={}, out_dir=None)
    hub.sessions["s1"]["tags"] = ["a", "added-meanwhile"]  # a PATCH of tags would drop it
    with pytest.raises(StalePlanError, match="update docs-bot: session s1 changed"):
        await adopt(hub, outcome.adoption, environ={})
    assert hub.patches == []


def test_export_declares_the_plain_variables_its_sessions_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GIT_BRANCH", "main")
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "all.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: team\nplainEnv: [GIT_BRANCH]\n---\n"
        "apiVersion: reconciler/v1\nkind: Session\nname: nightly\n"
        "spec: {task: 'Triage ${env:GIT_BRANCH}', label: Nightly}\n"
    )
    local = ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3")]
    assert run([*local, "apply", "--yes", str(manifests)]) == 0
    out = tmp_path / "out"
    assert run([*local, "export", "--project", "team", "--out", str(out)]) == 0
    assert "plainEnv:\n- GIT_BRANCH\n" in (out / "project.yaml").read_text()
    assert "task: Triage ${env:GIT_BRANCH}" in (out / "nightly.yaml").read_text()
    capsys.readouterr()
    assert run([*local, "plan", "--detailed-exitcode", str(out)]) == 0  # exported as declared
    # A folder whose Project does not declare it: the session is skipped, saying why.
    other = tmp_path / "other"
    other.mkdir()
    (other / "p.yaml").write_text("apiVersion: reconciler/v1\nkind: Project\nname: team\n")
    capsys.readouterr()
    assert run([*local, "export", "--project", "team", "--out", str(other)]) == 0
    _, err = capsys.readouterr()
    assert "(nightly): its manifest would not validate: spec.task: ${env:GIT_BRANCH}" in err
    assert "plainEnv: [GIT_BRANCH]" in err
    assert sorted(p.name for p in other.iterdir()) == ["p.yaml"]
