"""`reconciler show PLANFILE`: a saved plan rendered as `plan` rendered it, no request."""

from __future__ import annotations

import json
from pathlib import Path

from clihub import CliHub
from cliproject import Folder, cli_hub_fixture, folder_fixture  # noqa: F401 - fixtures

from reconciler.cli.main import run


def _saved(hub: CliHub, folder: Folder, tmp_path: Path, fmt: str) -> tuple[Path, str]:
    plan_file = tmp_path / "saved" / "plan.json"
    code, out, err = hub.run("plan", folder.path, "--out", str(plan_file), "--format", fmt)
    assert code == 0, err
    return plan_file, out


def test_show_renders_each_format_as_plan_did(
    cli_hub: CliHub, folder: Folder, tmp_path: Path
) -> None:
    folder.write("beta", "task: Review beta pull requests\nenv: {KEY: '${env:BETA_KEY}'}\n")
    for fmt in ("text", "json", "markdown"):
        plan_file, planned = _saved(cli_hub, folder, tmp_path, fmt)
        code, shown, err = cli_hub.run("show", str(plan_file), "--format", fmt)
        # Its checksum on stderr (what an approver compares with --expect-checksum's).
        checksum = json.loads(plan_file.read_text())["checksum"]
        assert (code, err) == (0, f"{plan_file}: checksum {checksum}\n")
        assert shown == planned
    assert "Plan: 3 to create, 0 to update" in cli_hub.ok("show", str(plan_file))
    document = json.loads(cli_hub.ok("show", str(plan_file), "--format", "json"))
    assert document["project"] == folder.project
    (beta,) = [a for a in document["actions"] if a["name"] == "beta"]
    assert beta["body"]["env"] == {"KEY": "(sensitive)"}


def test_show_needs_no_hub(folder: Folder, tmp_path: Path, cli_hub: CliHub) -> None:
    plan_file, planned = _saved(cli_hub, folder, tmp_path, "text")
    # An endpoint nobody answers on (port 9, discard): show never sends a request.
    cli_hub.capsys.readouterr()
    assert run(["--api-url", "http://127.0.0.1:9", "show", str(plan_file)]) == 0
    assert cli_hub.capsys.readouterr().out == planned


def test_show_refuses_a_changed_or_missing_file(
    cli_hub: CliHub, folder: Folder, tmp_path: Path
) -> None:
    plan_file, _ = _saved(cli_hub, folder, tmp_path, "text")
    document = json.loads(plan_file.read_text())
    document["actions"][0]["name"] = "mallory"
    plan_file.write_text(json.dumps(document))
    code, out, err = cli_hub.run("show", str(plan_file))
    assert (code, out) == (4, "")
    assert (
        err
        == f"error: saved plan {plan_file} fails its checksum: it was changed after it was made\n"
    )

    code, out, err = cli_hub.run("show", str(tmp_path / "none.json"))
    assert (code, out) == (64, "")
    assert err.startswith(f"error: cannot read saved plan {tmp_path / 'none.json'}")

    code, _, err = cli_hub.run("show", str(plan_file), "--format", "yaml")
    assert code == 64
    assert "'yaml' is not one of 'text', 'json', 'markdown'" in err
