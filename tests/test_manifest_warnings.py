"""Warnings of manifests with errors: said beside the errors, each where it belongs.

The warnings (an unset variable, an ``env`` value written literally) of a tree with any
error come with its errors (``ManifestErrors.warnings``): the documents the checks
refused count as far as they read, in reading order, and say nothing their errors
contradict. Canary values stand for secrets: never shown.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli.main import run
from reconciler.manifest import yamlread

CANARY = "canary-warn-5e1f0c"
PROJECT = "apiVersion: reconciler/v1\nkind: Project\nname: proj\n---\n"


def _validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(["validate", *args])
    out, err = capsys.readouterr()
    assert CANARY not in out + err
    return code, out, err


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning: ")]


def test_a_file_name_cannot_break_a_warning_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "x\n::error file=a.py::INJECTED\n.yaml").write_text(
        PROJECT + "apiVersion: reconciler/v1\nkind: Session\nname: s1\nspec:\n  task: t\n"
        f"  tags: 5\n  env: {{A: {CANARY}}}\n"
    )
    code, _, err = _validate(capsys, str(folder))
    assert code == 65
    lines = err.splitlines()
    assert len(lines) == 2, err  # one warning, one error: nothing broke a line
    assert lines[0].startswith("warning: ") and "x\\u000a::error" in lines[0]
    assert lines[1].startswith("error: ")


def test_a_refused_project_hides_no_warning_and_its_plain_env_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the Project refused its plainEnv is unknown: a lone reference's default may
    be a plain one's, so only what is surely written literally is warned of."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: proj\nbogus: 1\n---\n"
        "apiVersion: reconciler/v1\nkind: Session\nname: s1\nspec:\n  task: t\n"
        f"  env: {{A: {CANARY}, B: '${{env:UNSET_Q}}', C: '${{env:MAYBE_PLAIN:-x}}'}}\n"
    )
    code, _, err = _validate(capsys, str(path))
    assert code == 65
    assert _warnings(err) == [
        f"warning: {path}:11:35: ${{env:UNSET_Q}} is not set (an apply that sends it will "
        "stop; a plan does not need it)",
        f"warning: {path}:11:9: spec.env.A is written literally: a secret in the manifest is "
        'in git and in the marker hash; write "${env:A}" alone and set it where apply runs '
        "(`plan --out` refuses it)",
    ]
    assert "unknown field 'bogus'" in err


def test_a_refused_session_sets_template_is_warned_of_at_the_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        PROJECT + "apiVersion: reconciler/v1\nkind: SessionSet\nname: st\n"
        "generator:\n  items: [{name: a, v: '${env:IN_ITEM}'}]\n"
        "template:\n  name: 'x-{{ item.name }}'\n  spec:\n    task: 5\n"
        f"    env: {{A: {CANARY}, B: '${{env:UNSET_SET}}'}}\n"
    )
    code, out, _ = _validate(capsys, "--format", "json", str(path))
    assert code == 65
    doc = json.loads(out)
    assert [(w["line"], w["column"], w["message"].split(" ")[0]) for w in doc["warnings"]] == [
        (14, 37, "${env:UNSET_SET}"),  # not the item's: a set's items are never resolved
        (14, 11, "template.spec.env.A"),
    ]
    assert [e["line"] for e in doc["errors"]] == [13]


def test_each_warning_is_at_its_first_place_in_reading_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused session before a valid one: the warnings are at the first (refused)
    one, counting the valid one's place as one more."""
    path = tmp_path / "s.yaml"
    session = "apiVersion: reconciler/v1\nkind: Session\nname: {name}\nspec:\n"
    path.write_text(
        PROJECT
        + session.format(name="s1")
        + f"  tags: 5\n  task: '${{env:UNSET_Z}}'\n  env:\n    K: {CANARY}\n---\n"
        + session.format(name="s2")
        + f"  task: t\n  env: {{K: {CANARY}, L: '${{env:UNSET_Z}}'}}\n"
    )
    code, _, err = _validate(capsys, str(path))
    assert code == 65
    assert [w.split(": ")[1] for w in _warnings(err)] == [f"{path}:10:9", f"{path}:12:5"]
    assert "; 1 more reference to it" in err
    assert "spec.env.K is written literally (and in 1 more session)" in err


def test_what_a_refused_documents_errors_say_is_no_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tool's credentials referenced (an error wherever written), a reference in a
    name (never resolved), a malformed reference: none is called unset, nor is a value
    naming the token a secret to write as a reference."""
    path = tmp_path / "s.yaml"
    path.write_text(
        PROJECT + "apiVersion: reconciler/v1\nkind: Session\nname: '${env:NAME_REF}'\nspec:\n"
        "  task: t\n  env:\n"
        f"    T: '${{env:AGENTUITY_SDK_KEY:-{CANARY}}}'\n"
        f"    M: '${{env:X:-${{env:Y_INSIDE}}}}'\n"
    )
    code, _, err = _validate(capsys, str(path))
    assert code == 65
    for quiet in ("NAME_REF", "AGENTUITY_SDK_KEY} is not set", "Y_INSIDE", "spec.env.T"):
        assert quiet not in "\n".join(_warnings(err)), err


def test_one_file_without_its_project_warns_only_of_sure_literals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pre-commit hook validates one file alone: a lone reference's default may be of
    a plainEnv variable the Project (not read) declares, so it is not warned of."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: s1\nspec:\n  task: t\n"
        f"  env: {{CHANNEL: '${{env:CHANNEL:-stable}}', SECRET: {CANARY}}}\n"
    )
    code, _, err = _validate(capsys, str(path))
    assert code == 0
    assert [w.split(": ")[2].split(" ")[0] for w in _warnings(err)] == ["spec.env.SECRET"]


def test_warning_positions_index_each_mapping_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of literal keys in one document: each warning's key found through an
    index of the mapping, not a scan of it per key (quadratic: a 1 MB file took minutes)."""
    scans = 0
    find_key = yamlread._find_key

    def counted(node: object, key: object) -> object:
        nonlocal scans
        scans += 1
        return find_key(node, key)  # type: ignore[arg-type]

    monkeypatch.setattr(yamlread, "_find_key", counted)
    keys = "\n".join(f"    K{i}: {CANARY}" for i in range(500))
    path = tmp_path / "s.yaml"
    path.write_text(
        PROJECT + "apiVersion: reconciler/v1\nkind: Session\nname: s1\nspec:\n"
        f"  task: t\n  env:\n{keys}\n"
    )
    code, _, err = _validate(capsys, str(path))
    assert code == 0
    assert len(_warnings(err)) == 500
    assert f"{path}:11:5: spec.env.K0 is" in err and f"{path}:510:5: spec.env.K499 is" in err
    assert scans < 10, scans


def test_a_misspelled_reference_is_told_the_reference_it_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`${ENV:BAR}` or `$env:BAR` is text to the tool, a literal secret by the rules: the
    warning says which reference was meant, not to invent a variable named as the key."""
    path = tmp_path / "s.yaml"
    path.write_text(
        PROJECT + "apiVersion: reconciler/v1\nkind: Session\nname: s\nspec:\n  task: t\n  env:\n"
        '    L: "${ENV:BAR}"\n    M: "$env:BAZ"\n    N: "${ Env : QUX }"\n'
        f"    P: {CANARY}\n"
    )
    code, _, err = _validate(capsys, str(path))
    assert code == 0
    meant = [w.split(": ", 3)[2:] for w in _warnings(err) if "it reads as text" in w]
    assert meant == [
        [
            f"spec.env.{key} is written literally",
            f'it reads as text, not a reference: write "${{env:{name}}}" (lowercase env, in '
            f"braces) to take {name}'s value where apply runs",
        ]
        for key, name in (("L", "BAR"), ("M", "BAZ"), ("N", "QUX"))
    ]
    # A literal that is no reference at all keeps its advice.
    assert any("spec.env.P is written literally: a secret" in w for w in _warnings(err))
