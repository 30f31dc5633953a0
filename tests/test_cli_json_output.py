"""`--format json`: stdout holds exactly one JSON document whatever the exit code, so a
CI step piping it to `jq` always has something to read (reconciler.cli.jsonout).

A command that stopped before writing its own document writes the error document
(`{"error": {"exitCode", "message", "errors"?, "refusals"?}}`); a refused plan carries
its refusals in the plan document; in text format stdout stays empty on an error."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import click
import pytest
from clihub import CliHub, invoke
from cliproject import (  # noqa: F401 - fixtures
    Folder,
    apply_all,
    cli_hub_fixture,
    folder_fixture,
)
from jsonschema import Draft202012Validator

from reconciler.cli.main import LazyGroup
from reconciler.planfile import plan_schema


def _one_document(out: str) -> Any:
    """The single JSON document ``out`` holds (json.loads refuses two)."""
    return json.loads(out)


def test_a_refused_plan_carries_its_refusals(cli_hub: CliHub, folder: Folder) -> None:
    folder.write("beta", "task: Review beta pull requests\n", "{preventDestroy: true}")
    apply_all(cli_hub, folder)
    folder.write("beta", "task: Review every beta pull request\n", "{preventDestroy: true}")
    code, out, err = cli_hub.run("plan", folder.path, "--format", "json")
    assert code == 3, err
    document = _one_document(out)
    Draft202012Validator(plan_schema()).validate(document)
    assert [(r["rule"], r["overridable"], r["liftedBy"]) for r in document["refusals"]] == [
        ("preventDestroy", False, None)
    ]
    assert document["actions"][0]["kind"] == "replace"
    # Not refused: no refusals key at all (documents of earlier versions read the same).
    folder.write("beta", "task: Review beta pull requests\n", "{preventDestroy: true}")
    code, out, _ = cli_hub.run("plan", folder.path, "--format", "json")
    assert code == 0 and "refusals" not in _one_document(out)


def test_a_refused_apply_writes_the_error_document(cli_hub: CliHub, folder: Folder) -> None:
    apply_all(cli_hub, folder)
    for name in ("alpha", "beta", "gamma"):
        folder.remove(name)
    code, out, err = cli_hub.run("apply", folder.path, "--yes", "--format", "json")
    assert code == 3, err
    error = _one_document(out)["error"]
    assert error["exitCode"] == 3
    assert [r["rule"] for r in error["refusals"]] == ["removeAll"]
    assert error["refusals"][0]["overridable"] is True
    assert error["refusals"][0]["liftedBy"] == "--force"
    assert error["message"].startswith("refused by removeAll")


def test_invalid_manifests_give_located_errors(cli_hub: CliHub, folder: Folder) -> None:
    broken = folder.write("broken", "task: 3\n")
    for command in (["plan"], ["apply", "--yes"], ["status"]):
        code, out, err = cli_hub.run(*command, folder.path, "--format", "json")
        assert code == 65, (command, err)
        error = _one_document(out)["error"]
        assert error["exitCode"] == 65 and error["message"] == "invalid manifests"
        assert [(e["file"], e["line"]) for e in error["errors"]] == [(str(broken), 5)], error
        # The same run in text: nothing on stdout, the located line on stderr.
        code, out, err = cli_hub.run(*command, folder.path)
        assert (code, out) == (65, "")
        assert f"{broken}:5:" in err


def test_usage_and_hub_errors_give_the_error_document(cli_hub: CliHub, folder: Folder) -> None:
    apply_all(cli_hub, folder)
    code, out, _ = cli_hub.run("plan", folder.path, "--target", "alpah", "--format", "json")
    assert code == 64
    error = _one_document(out)["error"]
    assert error["exitCode"] == 64 and "did you mean alpha?" in error["message"]
    code, out, _ = cli_hub.run("sessions", "get", "codesess_nope", "--format", "json")
    assert code == 1
    error = _one_document(out)["error"]
    assert error["exitCode"] == 1 and "404" in error["message"]
    assert set(error) == {"exitCode", "message"}


def test_a_command_that_wrote_its_document_writes_no_second(
    cli_hub: CliHub, folder: Folder
) -> None:
    folder.write("broken", "task: 3\n")
    code, out, _ = cli_hub.run("validate", folder.path, "--format", "json")
    assert code == 65
    assert _one_document(out)["valid"] is False  # validate's own document, alone


def test_errors_before_format_is_parsed_and_a_plan_that_cannot_be_saved(
    cli_hub: CliHub, folder: Folder, tmp_path: Path
) -> None:
    # click stops at --bogus before it reaches --format: the arguments still say JSON.
    code, out, _ = cli_hub.run("plan", "--format", "json", "--bogus", folder.path)
    assert code == 64
    assert "--bogus" in _one_document(out)["error"]["message"]
    # A plan that cannot be saved fails before stdout holds a plan taken for saved.
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = cli_hub.run(
        "plan", folder.path, "--format", "json", "--out", str(blocker / "plan.json")
    )
    assert code == 1, err
    error = _one_document(out)["error"]
    assert error["message"].startswith(f"could not save the plan to {blocker / 'plan.json'}: ")
    assert "Traceback" not in err


def test_import_write_and_a_declined_delete_write_a_document(
    cli_hub: CliHub, folder: Folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = apply_all(cli_hub, folder)
    hand_made = cli_hub.create("--task", "Triage the inbox", "--label", "Inbox")
    document = cli_hub.json("import", "--write", "newname", hand_made, folder.path)
    assert document["sessionId"] == hand_made
    assert "name: newname" in document["manifest"]
    # Asked on a terminal and answered no: nothing deleted, and stdout still says so.
    monkeypatch.setattr("reconciler.cli.sessions._interactive", lambda: True)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert cli_hub.json("sessions", "delete", ids["beta"]) == {
        "sessionId": ids["beta"],
        "deleted": False,
    }
    assert cli_hub.json("sessions", "get", ids["beta"])["sessionId"] == ids["beta"]


def test_an_interrupt_before_format_is_parsed_still_writes_the_document(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Ctrl-C or SIGTERM while the command's module loads: click has not reached
    # --format yet; the arguments say JSON was asked for.
    def interrupted(self: LazyGroup, name: str) -> click.Command:
        raise KeyboardInterrupt

    monkeypatch.setattr(LazyGroup, "_lazy_load", interrupted)
    code, out, err = invoke(capsys, "plan", "--format", "json", ".")
    assert code == 130 and err.endswith("Aborted.\n")  # click's word for a Ctrl-C
    assert json.loads(out) == {"error": {"exitCode": 130, "message": "aborted"}}


def test_a_refused_saved_plan_says_why_in_one_word(
    cli_hub: CliHub, folder: Folder, tmp_path: Path
) -> None:
    # Exit 4 had three causes a pipeline could not tell apart but by the message.
    saved = tmp_path / "plan.json"
    code, _, err = cli_hub.run("plan", folder.path, "--out", str(saved))
    assert code == 0, err
    code, _, err = cli_hub.run("apply", "--plan", str(saved), folder.path, "--format", "json")
    assert code == 0, err
    # Applied already: not what a fresh plan does now.
    code, out, _ = cli_hub.run("apply", "--plan", str(saved), folder.path, "--format", "json")
    assert code == 4
    assert _one_document(out)["error"]["plan"] == "mismatch"
    # Edited by hand: the file is refused as such.
    saved.write_text(saved.read_text().replace('"create"', '"update"', 1))
    code, out, _ = cli_hub.run("apply", "--plan", str(saved), folder.path, "--format", "json")
    assert code == 4
    assert _one_document(out)["error"]["plan"] == "file"
