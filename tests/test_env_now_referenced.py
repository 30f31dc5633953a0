"""A value written literally, then as a reference giving the same value, is no change:
a secret moved out of the manifests (under ``env``), or a plain variable (``plainEnv``)
put in a field. Another value, or one that cannot be known, is a replacement.

Through the CLI against the embedded hub and a served one (`hub serve` subprocess). The
value is a canary: it never appears in any output or saved plan.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from clihub import CliHub, hub_fixture, unique, write_manifests  # noqa: F401 - fixtures

CANARY = "canary-moved-secret-5521"


def _session(token: str, level: str = "debug") -> str:
    return (
        "apiVersion: reconciler/v1\nkind: Session\nname: worker\n"
        "spec:\n  task: Review pull requests\n"
        f'  env: {{API_TOKEN: "{token}", LEVEL: "{level}"}}\n'
    )


def test_a_literal_moved_to_a_reference_of_the_same_value_keeps_its_session(
    hub: CliHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = unique("p")
    repo = write_manifests(tmp_path / "m", project, _session(CANARY))
    hub.ok("apply", str(repo), "--yes")
    [row] = hub.json("status", str(repo))["sessions"]
    session_id = row["sessionId"]

    write_manifests(repo, project, _session("${env:WORKER_TOKEN}"))
    monkeypatch.setenv("WORKER_TOKEN", CANARY)
    code, out, _ = hub.run("plan", str(repo), "--detailed-exitcode", "--out", str(tmp_path / "p"))
    assert code == 0, out
    assert "No changes" in out
    assert hub.json("status", str(repo))["sessions"][0]["sync"] == "in-sync"
    # Moved one at a time: the second is no change either (the record stays the
    # session's, the marker keeps its hash).
    write_manifests(repo, project, _session("${env:WORKER_TOKEN}", "${env:WORKER_LEVEL}"))
    monkeypatch.setenv("WORKER_LEVEL", "debug")
    code, out, _ = hub.run("plan", str(repo), "--detailed-exitcode")
    assert code == 0, out
    assert hub.json("status", str(repo))["sessions"][0]["sessionId"] == session_id

    # The session holds the value it was created with: another one is a replacement.
    monkeypatch.setenv("WORKER_TOKEN", CANARY + "-rotated")
    code, out, _ = hub.run("plan", str(repo), "--detailed-exitcode")
    assert code == 2
    assert "create-only fields changed: env.API_TOKEN, env.LEVEL" in out
    assert all(CANARY not in text for text in hub.outputs)
    assert CANARY not in (tmp_path / "p").read_text()


@pytest.mark.parametrize("value", [CANARY + "-other", None])
def test_a_literal_moved_to_a_reference_of_another_or_no_value_is_replaced(
    hub: CliHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    project = unique("p")
    repo = write_manifests(tmp_path / "m", project, _session(CANARY))
    hub.ok("apply", str(repo), "--yes")
    write_manifests(repo, project, _session("${env:WORKER_TOKEN}"))
    if value is None:
        monkeypatch.delenv("WORKER_TOKEN", raising=False)
    else:
        monkeypatch.setenv("WORKER_TOKEN", value)
    code, out, _ = hub.run("plan", str(repo), "--detailed-exitcode")
    assert "replace, then archive the old session (create-only fields changed: env.API_TOKEN" in out
    assert "Plan: 0 to create, 0 to update, 1 to replace" in out
    assert all(CANARY not in text for text in hub.outputs)


def test_a_field_rewritten_with_a_plain_reference_of_the_same_value_keeps_its_session(
    hub: CliHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = unique("p")
    repo = write_manifests(tmp_path / "m", project, _task("Loop over main."))
    (repo / "project.yaml").write_text(
        f"apiVersion: reconciler/v1\nkind: Project\nname: {project}\nplainEnv: [BR]\n"
    )
    hub.ok("apply", str(repo), "--yes")
    write_manifests(repo, project, _task("Loop over ${env:BR}."))
    (repo / "project.yaml").write_text(
        f"apiVersion: reconciler/v1\nkind: Project\nname: {project}\nplainEnv: [BR]\n"
    )
    monkeypatch.setenv("BR", "dev")
    code, out, _ = hub.run("plan", str(repo), "--detailed-exitcode")
    assert "replace, then archive the old session (create-only fields changed: task)" in out
    monkeypatch.setenv("BR", "main")
    code, out, _ = hub.run("plan", str(repo), "--detailed-exitcode")
    assert code == 0, out


def _task(task: str) -> str:
    return f"apiVersion: reconciler/v1\nkind: Session\nname: loop\nspec:\n  task: {task}\n"
