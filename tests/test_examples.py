"""examples/ is a working manifest repository: validate -> plan -> apply -> plan -> status."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from reconciler.cli.main import run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
MANIFESTS = sorted(EXAMPLES.glob("*.yaml"))  # examples/ci/ is ignored by .reconcilerignore
SECRETS = {"RELEASE_GITHUB_TOKEN": "ghp_example-not-a-real-token", "NPM_TOKEN": "npm_example"}


def _copy_manifests(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for path in MANIFESTS:
        shutil.copy(path, dest / path.name)
    return dest


def test_every_manifest_names_a_schema_that_exists() -> None:
    assert len(MANIFESTS) >= 3
    for path in MANIFESTS:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        prefix = "# yaml-language-server: $schema="
        assert first.startswith(prefix), path
        schema = (path.parent / first.removeprefix(prefix)).resolve()
        assert schema.is_file(), f"{path.name}: {schema} does not exist"
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        kinds = {d["kind"] for d in docs}
        expected = "project.schema.json" if kinds == {"Project"} else "manifest.schema.json"
        assert schema.name == expected, path.name


def test_the_examples_cover_what_the_readme_promises() -> None:
    sessions = [
        d
        for path in MANIFESTS
        for d in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if d["kind"] == "Session"
    ]
    specs = [d["spec"] for d in sessions]
    assert 6 <= len(sessions) <= 10
    assert any(s.get("workflowMode") == "loop" and "loop" in s for s in specs)
    assert any(len(s.get("repos", [])) > 1 for s in specs)
    assert any(s.get("skills") and s.get("savedSkillIds") for s in specs)
    assert any("${env:" in v for s in specs for v in s.get("env", {}).values())
    assert any(s.get("state") == "archived" for s in specs)
    assert any(d.get("lifecycle", {}).get("preventDestroy") for d in sessions)


def test_examples_end_to_end_on_the_local_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    repo = _copy_manifests(tmp_path / "repo")
    hub = ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3")]
    paths = [str(repo)]

    assert run([*hub, "validate", *paths]) == 0
    capsys.readouterr()

    assert run([*hub, "plan", *paths, "--detailed-exitcode"]) == 2
    out = capsys.readouterr().out
    assert "Plan: 10 to create, 0 to update, 0 to replace" in out
    assert all(secret not in out for secret in SECRETS.values())

    assert run([*hub, "apply", *paths, "--yes"]) == 0
    captured = capsys.readouterr()
    assert all(s not in captured.out + captured.err for s in SECRETS.values())

    assert run([*hub, "plan", *paths, "--detailed-exitcode"]) == 0
    capsys.readouterr()

    assert run([*hub, "status", *paths, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["project"] == "platform-team"
    rows = {row["name"]: row for row in doc["sessions"]}
    assert len(rows) == 11
    assert {row["sync"] for row in rows.values()} == {"in-sync"}
    # Declared archived and never created: in sync, with no session behind it.
    archived = rows["legacy-billing-migration"]
    assert (archived["sessionId"], archived["declaredState"]) == (None, "archived")
    loop = rows["nightly-triage"]
    assert loop["loopStatus"] == "running" and loop["loopIteration"] == 0
    assert all(r["sessionId"] for n, r in rows.items() if n != "legacy-billing-migration")

    assert run([*hub, "status", *paths]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[-1] == "11 session(s): 11 in-sync"


def test_status_exits_0_when_changes_are_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _copy_manifests(tmp_path / "repo")
    hub = ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3")]
    assert run([*hub, "status", str(repo)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[-1] == "11 session(s): 1 in-sync, 10 missing"


def test_status_keeps_the_exit_code_of_invalid_manifests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: x\nspec: {task: t}\nbogus: 1\n"
    )
    hub = ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3")]
    assert run([*hub, "status", str(tmp_path), "--project", "p"]) == 65


def test_every_schema_comment_resolves_after_the_folder_is_copied(tmp_path: Path) -> None:
    """Editors (yaml-language-server) find the schema wherever examples/ is copied."""
    copy = tmp_path / "sessions"
    shutil.copytree(EXAMPLES, copy)
    manifests = sorted(copy.glob("*.yaml"))
    assert manifests
    for path in manifests:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert match, f"{path.name} has no $schema comment"
        target = path.parent / match.group(1)
        assert target.is_file(), f"{path.name}: {match.group(1)} does not resolve"
        kind = "project" if "kind: Project" in path.read_text(encoding="utf-8") else "manifest"
        assert target.name == f"{kind}.schema.json"
        assert json.loads(target.read_text(encoding="utf-8"))["$id"].endswith(target.name)


@pytest.mark.parametrize(
    ("repo", "denied"),
    [
        ("{fullName: acme/api}", False),
        ("{fullName: acme/api, cloneUrl: 'https://github.com/acme/api.git'}", False),
        ("{fullName: acme/api, cloneUrl: 'https://evil.example/x.git'}", True),
        ("{fullName: evil/api}", True),
    ],
)
def test_the_example_repository_policy_covers_the_clone_url(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    repo: str,
    denied: bool,
) -> None:
    """team-repositories judges where a repository is fetched from: a cloneUrl
    elsewhere under an acme fullName is denied as a foreign fullName is."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    folder = _copy_manifests(tmp_path / "repo")
    (folder / "extra.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: cloned\nspec:\n  task: t\n"
        f"  tags: ['owner:platform']\n  repo: {repo}\n"
    )
    code = run(["validate", str(folder)])
    out = capsys.readouterr()
    assert code == (3 if denied else 0), out.out + out.err
    assert ("team-repositories" in out.out + out.err) is denied
