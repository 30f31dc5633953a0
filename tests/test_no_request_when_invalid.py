"""No request leaves while any manifest is invalid or a needed ${env:...} is unset.

Against the shared served hub, as a tenant of its own: the hub records every token that
makes a request (as a known user of its org), so a command whose token never shows up in
`GET /hub/users` sent nothing.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from hubproc import HubProcess, Tenant

from reconciler.cli.main import run

PROJECT = "apiVersion: reconciler/v1\nkind: Project\nname: quiet\n"
GOOD = "apiVersion: reconciler/v1\nkind: Session\nname: good\nspec: {task: t}\n"


def _users(hub: HubProcess, tenant: Tenant) -> set[str]:
    """The users of the tenant's org, asked with its first token (the watcher)."""
    response = httpx.get(
        f"{hub.url}/hub/users", headers={"Authorization": f"Bearer {tenant.token}"}, timeout=10
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
    served_hub: HubProcess,
    tenant: Tenant,
    command: str,
    extra: str,
    env: dict[str, str],
) -> None:
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "a.yaml").write_text(PROJECT + "---\n" + GOOD)
    (manifests / "b.yaml").write_text(extra)
    # The planner is the tenant's second user; the first one only watches.
    monkeypatch.setenv("AGENTUITY_SDK_KEY", tenant.token2)
    args = ["--api-url", served_hub.url, command, str(manifests)]
    code = run([*args, "--yes"] if command == "apply" else args)
    err = capsys.readouterr().err
    assert code == 65, err
    assert tenant.user2_id not in _users(served_hub, tenant)
    # The same command with the problem gone does reach the hub.
    (manifests / "b.yaml").unlink()
    again = run([*args, "--yes"] if command == "apply" else args)
    assert again == 0, capsys.readouterr().err
    assert tenant.user2_id in _users(served_hub, tenant)


def test_single_session_commands_send_nothing_while_invalid(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    served_hub: HubProcess,
    tenant: Tenant,
) -> None:
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "a.yaml").write_text(PROJECT + "---\n" + GOOD)
    bad = manifests / "b.yaml"
    bad.write_text("apiVersion: reconciler/v1\nkind: Session\nname: x\nspec: {task: t, tsk: 1}\n")
    commands = {
        "forget": ["forget", "good", str(manifests), "--yes", "--force"],
        "import": ["import", "good", "codesess_x", str(manifests), "--yes"],
        "import --write": ["import", "other", "codesess_x", str(manifests), "--write"],
        "plan --replace": ["plan", str(manifests), "--replace", "good"],
        "plan --destroy": ["plan", str(manifests), "--destroy"],
        "status --selector": ["status", str(manifests), "--selector", "tag=t"],
    }
    monkeypatch.setenv("AGENTUITY_SDK_KEY", tenant.token2)
    for name, argv in commands.items():
        code = run(["--api-url", served_hub.url, *argv])
        err = capsys.readouterr().err
        assert code == 65 and "unknown field 'tsk'" in err, (name, err)
    assert tenant.user2_id not in _users(served_hub, tenant)
    bad.unlink()
    assert run(["--api-url", served_hub.url, *commands["forget"]]) == 0, capsys.readouterr().err
    assert tenant.user2_id in _users(served_hub, tenant)
