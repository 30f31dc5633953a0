"""Help that suggests: close names for unknown commands, options, fields, kinds, values,
targets and selectors (difflib, one place: reconciler/suggest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from docs_pages import page

from reconciler.cli.main import run
from reconciler.suggest import close_names, did_you_mean


def test_close_names_closest_first_ties_by_name() -> None:
    assert close_names("team-c", ["team-b", "team-a", "zeta"]) == ["team-a", "team-b"]
    assert close_names("lable", ["label", "task"]) == ["label"]
    assert did_you_mean("x", []) == ""
    assert did_you_mean("tga", ["tag"], show=lambda k: f"{k}=v") == "; did you mean tag=v?"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["plna"], "Error: No such command 'plna'. Did you mean 'plan'?"),
        (["sessions", "lst"], "Error: No such command 'lst'. Did you mean 'list'?"),
        (["plan", "--targte", "x"], "Error: No such option '--targte'. Did you mean '--target'?"),
    ],
)
def test_unknown_commands_and_options_suggest(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # click finds these close names itself.
    assert run(argv) == 64
    assert expected in capsys.readouterr().err.splitlines()


def test_unknown_field_kind_and_value_suggest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: a\n"
        "spec: {task: x, lable: y, visibility: organisation}\n---\n"
        "apiVersion: reconciler/v1\nkind: Sesion\nname: b\n"
    )
    assert run(["validate", str(tmp_path), "--project", "p"]) == 65
    err = capsys.readouterr().err.splitlines()
    where = tmp_path / "a.yaml"
    head = f"error: {where}:4:17: spec: unknown field 'lable'; did you mean label? "
    assert err[0].startswith(head + "(allowed: agent, env, label, ")
    assert err[1] == (
        f"error: {where}:4:39: spec.visibility: 'organisation' is not one of private, "
        "organization, collaborate, org, collab (or a ${env:NAME} reference); did you mean "
        "organization?"
    )
    assert err[2] == (
        f"error: {where}:7:7: kind: 'Sesion' is not one of Project, Session, SessionSet; "
        "did you mean Session?"
    )


def test_shell_completion_as_the_docs_document(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = page("reference/cli.md")
    assert 'eval "$(_RECONCILER_COMPLETE=bash_source reconciler)"' in readme
    monkeypatch.setenv("_RECONCILER_COMPLETE", "bash_source")
    with pytest.raises(SystemExit) as done:  # click answers and exits before any command
        run([])
    assert done.value.code == 0
    assert "_reconciler_completion()" in capsys.readouterr().out
    monkeypatch.setenv("_RECONCILER_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "reconciler plan --sel")
    monkeypatch.setenv("COMP_CWORD", "2")
    with pytest.raises(SystemExit):
        run([])
    assert capsys.readouterr().out.splitlines() == ["plain,--selector"]
