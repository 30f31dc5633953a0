"""No request leaves while any manifest is invalid or a needed ${env:...} is unset.

Against a served hub: the hub records every token that makes a request (as a known
user of its org), so a command whose token never shows up in `GET /hub/users` sent
nothing.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from hubproc import start_hub

from reconciler.cli.main import run

pytestmark = [pytest.mark.subprocess]

WATCHER = "watcher-token"
PLANNER = "planner-token"

PROJECT = "apiVersion: reconciler/v1\nkind: Project\nname: quiet\n"
GOOD = "apiVersion: reconciler/v1\nkind: Session\nname: good\nspec: {task: t}\n"


def _users(url: str) -> set[str]:
    response = httpx.get(
        f"{url}/hub/users", headers={"Authorization": f"Bearer {WATCHER}"}, timeout=10
    )
    return {u["userId"] for u in response.json()["users"]}


@pytest.mark.parametrize(
    ("extra", "env"),
    [
        ("apiVersion: reconciler/v1\nkind: Session\nname: Bad_Name\nspec: {task: t}\n", {}),
        ("apiVersion: reconciler/v1\nkind: Session\nname: x\nspec: {task: t, tsk: 1}\n", {}),
        (
            "apiVersion: reconciler/v1\nkind: Session\nname: x\nspec: {label: '${env:NOPE}', "
            "task: t}\n",
            {},
        ),
        ("key: [unclosed\n", {}),
    ],
    ids=["bad-name", "unknown-field", "unset-compared-env", "yaml-syntax"],
)
@pytest.mark.parametrize("command", ["plan", "apply", "status"])
def test_invalid_input_sends_no_request(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    extra: str,
    env: dict[str, str],
) -> None:
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "a.yaml").write_text(PROJECT + "---\n" + GOOD)
    (manifests / "b.yaml").write_text(extra)
    tokens = {WATCHER: ("org_q", "user_watcher"), PLANNER: ("org_q", "user_planner")}
    with start_hub(tmp_path, tokens=tokens) as hub:
        monkeypatch.setenv("AGENTUITY_SDK_KEY", PLANNER)
        args = ["--api-url", hub.url, command, str(manifests)]
        code = run([*args, "--yes"] if command == "apply" else args)
        err = capsys.readouterr().err
        assert code == 65, err
        assert "user_planner" not in _users(hub.url)
        # The same command with the problem gone does reach the hub.
        (manifests / "b.yaml").unlink()
        again = run([*args, "--yes"] if command == "apply" else args)
        assert again == 0, capsys.readouterr().err
        assert "user_planner" in _users(hub.url)
