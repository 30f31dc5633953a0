"""`reconciler export` and adoption: manifests from live sessions, then managed by them."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from clihub import CliHub, invoke, local_hub, unique
from cliproject import cli_hub_fixture  # noqa: F401 - fixtures

from reconciler.cli.main import run
from reconciler.export import (
    ExportedSession,
    adopt_tags,
    build_exports,
    export_spec,
    may_rewrite,
    render_file,
    render_stream,
    slugify,
)
from reconciler.manifest import load_manifests
from reconciler.model import Marker, create_only_hash

SECRET = "ghp_s3cr3t-value-never-shown"

DETAIL: dict[str, Any] = {
    "sessionId": "codesess_1",
    "label": "Nightly Triage!",
    "status": "active",
    "visibility": "org",
    "defaultAgent": "claude-code",
    "workflowMode": "loop",
    "task": "Triage issues",
    "tags": ["triage", "reconciler:other/x@0123456789ab", "team"],
    "skills": [{"skillId": "gh", "repo": "acme/skills", "extra": 1}],
    "repo": {"fullName": "acme/api", "branch": "main", "unknown": True},
    "repos": [],
    "env": {"GITHUB_TOKEN": SECRET, "bad-key": SECRET},
    "metadata": {"team": "platform", "reconciler": {"project": "p"}},
}
LOOP = {
    "sessionId": "codesess_1",
    "workflowMode": "loop",
    "loop": {
        "status": "running",
        "iteration": 0,
        "goal": "Inbox zero",
        "maxIterations": 20,
        "autoContinue": True,
        "allowDetached": False,
        "startedAt": 1,
    },
}


def test_export_spec_keeps_the_create_payload_fields_and_never_an_env_value() -> None:
    spec, env_keys, dropped = export_spec(DETAIL, LOOP)
    assert spec == {
        "task": "Triage issues",
        "label": "Nightly Triage!",
        "agent": "claude-code",
        "visibility": "organization",
        "workflowMode": "loop",
        "loop": {
            "goal": "Inbox zero",
            "maxIterations": 20,
            "autoContinue": True,
            "allowDetached": False,
        },
        "tags": ["triage", "team"],
        "skills": [{"skillId": "gh", "repo": "acme/skills"}],
        "repo": {"fullName": "acme/api", "branch": "main"},
        "env": {"GITHUB_TOKEN": "${env:GITHUB_TOKEN}"},
        "metadata": {"team": "platform"},
    }
    assert env_keys == ("GITHUB_TOKEN",)
    assert dropped == ("bad-key",)
    assert SECRET not in json.dumps(spec)


def test_names_come_from_markers_then_labels_and_are_unique() -> None:
    details = [
        {"sessionId": "a", "label": "Docs writer", "tags": []},
        {"sessionId": "b", "label": "Docs  Writer", "tags": []},
        {"sessionId": "c", "tags": ["reconciler:proj/docs-writer@0123456789ab"]},
        {"sessionId": "d", "label": "!!!", "task": "Fix the build"},
        {"sessionId": "e"},
    ]
    names = [e.name for e in build_exports("proj", details)]
    # The marker's name wins (c keeps docs-writer); labels are slugified, de-duplicated.
    assert names == ["docs-writer-2", "docs-writer-3", "docs-writer", "fix-the-build", "session-e"]


def test_slugify_fits_the_name_pattern() -> None:
    assert slugify("  Hello, World — 2024 ") == "hello-world-2024"
    assert len(slugify("x" * 200)) == 63


def test_slugify_keeps_accented_letters_without_their_accents() -> None:
    assert slugify("Ünïcode Café") == "unicode-cafe"
    # Letters with no accent to lose: their usual spelling.
    assert slugify("Łódź Straße") == "lodz-strasse"
    assert slugify("Smørrebrød Æsir Œuvre Þingvellir Đorđe Işık") == (
        "smorrebrod-aesir-oeuvre-thingvellir-dorde-isik"
    )
    assert slugify("Ωμέγα 東京 ✓") == ""  # other scripts: nothing (export falls back)
    assert slugify("ﬁle ①") == "file-1"  # compatibility forms: their plain letters


def test_adopt_tags_replace_this_projects_marker_and_keep_the_rest() -> None:
    exported = ExportedSession(
        name="n",
        session_id="s",
        spec={},
        tags=("a", "reconciler:proj/old@0123456789ab", "reconciler:other/n@0123456789ab"),
    )
    marker = Marker("proj", "n", "abcdefabcdef")
    assert adopt_tags(exported, "proj", marker) == [
        "a",
        "reconciler:other/n@0123456789ab",
        marker.tag,
        "reconciler:adopted",  # its metadata's record is never believed
    ]


def test_rendered_files_validate_and_keep_the_hash(tmp_path: Path) -> None:
    (exported,) = build_exports("proj", [DETAIL], {"codesess_1": LOOP})
    text = render_file(exported)
    assert SECRET not in text
    assert "GITHUB_TOKEN: ${env:GITHUB_TOKEN}  # value not exported: set $GITHUB_TOKEN" in text
    assert "env keys not exported (not valid variable names): bad-key" in text
    (tmp_path / "s.yaml").write_text(text)
    loaded = load_manifests([str(tmp_path)], environ={}, project_name="proj")
    (desired,) = loaded.sessions
    assert desired.name == "nightly-triage"
    assert desired.spec_hash == create_only_hash(exported.spec) == exported.spec_hash


def test_stream_holds_the_project_first_and_validates(tmp_path: Path) -> None:
    exports = build_exports("proj", [DETAIL, {"sessionId": "x", "task": "T"}])
    text = render_stream("proj", exports)
    kinds = [d["kind"] for d in yaml.safe_load_all(text)]
    assert kinds == ["Project", "Session", "Session"]
    (tmp_path / "all.yaml").write_text(text)
    loaded = load_manifests([str(tmp_path)], environ={})
    assert loaded.project.name == "proj"
    assert [s.name for s in loaded.sessions] == ["nightly-triage", "t"]


def test_an_empty_spec_renders_as_an_empty_mapping() -> None:
    (exported,) = build_exports("proj", [{"sessionId": "x", "label": "Only a label"}])
    assert exported.spec == {"label": "Only a label"}
    (bare,) = build_exports("proj", [{"sessionId": "y"}])
    assert "spec: {}\n" in render_file(bare)


# End to end on the local hub: sessions made by hand, exported, adopted, planned.


def _hub(tmp_path: Path) -> list[str]:
    return local_hub(tmp_path / "hub.sqlite3")


@pytest.fixture
def hand_made(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """Four sessions created with `reconciler sessions create`, one of another project."""
    ids: dict[str, str] = {}

    def create(key: str, *args: str, body: dict[str, Any] | None = None) -> None:
        argv = [*_hub(tmp_path), "sessions", "create", "--format", "json", *args]
        if body is not None:
            payload = tmp_path / f"{key}.json"
            payload.write_text(json.dumps(body))
            argv += ["--from-json", str(payload)]

        assert run(argv) == 0
        ids[key] = str(json.loads(capsys.readouterr().out)["sessionId"])

    create("docs", "--task", "Keep the docs current", "--label", "Docs bot", "--tag", "team")
    create(
        "docs2",
        "--task",
        "Another docs bot",
        "--label",
        "Docs Bot",
        "--tag",
        "team",
        "--tag",
        "docs",
        "--visibility",
        "private",
        "--agent",
        "opencode",
    )
    create(
        "triage",
        "--label",
        "Nightly triage",
        "--tag",
        "team",
        body={
            "task": "Triage issues",
            "workflowMode": "loop",
            "loop": {"goal": "Inbox zero", "maxIterations": 5, "autoContinue": True},
            "repo": {"fullName": "acme/api", "branch": "main"},
            "repos": [{"fullName": "acme/api"}, {"fullName": "acme/web"}],
            "skills": [{"skillId": "gh-triage", "repo": "acme/skills"}],
            "env": {"GITHUB_TOKEN": SECRET},
            "metadata": {"team": "platform"},
        },
    )
    create(
        "foreign",
        "--task",
        "Someone else's",
        "--label",
        "Theirs",
        "--tag",
        "team",
        "--tag",
        "reconciler:other-team/theirs@0123456789ab",
    )
    return ids


def test_export_adopt_then_plan_creates_and_replaces_nothing(
    tmp_path: Path, hand_made: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:

    out = tmp_path / "sessions"
    code = run(
        [
            *_hub(tmp_path),
            "export",
            "--project",
            "team",
            "--tag",
            "team",
            "--out",
            str(out),
            "--adopt",
            "--yes",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert SECRET not in captured.out + captured.err
    assert f"skipped {hand_made['foreign']}: managed by project other-team" in captured.err
    assert sorted(p.name for p in out.iterdir()) == [
        "docs-bot-2.yaml",
        "docs-bot.yaml",
        "nightly-triage.yaml",
        "project.yaml",
    ]
    triage = (out / "nightly-triage.yaml").read_text()
    assert SECRET not in triage
    assert "GITHUB_TOKEN: ${env:GITHUB_TOKEN}  # value not exported" in triage

    # The files validate, and the plan on them neither creates nor replaces anything.
    assert run([*_hub(tmp_path), "validate", str(out)]) == 0
    capsys.readouterr()
    assert run([*_hub(tmp_path), "plan", str(out), "--format", "json", "--detailed-exitcode"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["actions"] == []

    # Each adopted session carries exactly one marker, of this project, and its tags.
    assert run([*_hub(tmp_path), "sessions", "get", hand_made["triage"], "--format", "json"]) == 0
    tags = json.loads(capsys.readouterr().out)["tags"]
    (marker, adopted, record) = [t for t in tags if t.startswith("reconciler:")]
    assert marker.startswith("reconciler:team/nightly-triage@")
    assert adopted == "reconciler:adopted"
    assert record.startswith("reconciler:applied:team=")  # what it took over as applied
    assert "team" in tags

    # Exporting again names sessions after their markers and adopts nothing new.
    again = tmp_path / "again"
    assert (
        run(
            [
                *_hub(tmp_path),
                "export",
                "--project",
                "team",
                "--out",
                str(again),
                "--adopt",
                "--yes",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert "nightly-triage: already adopted" in err
    assert "adopted " not in err.replace("already adopted", "")
    # Nothing left to adopt: it says so, counting what the project manages already
    # (it said "0 managed sessions").
    assert "No changes. The hub matches the manifests (3 managed sessions)." in out + err


def test_export_to_stdout_and_adopt_needs_yes_without_a_terminal(
    tmp_path: Path, hand_made: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:

    assert run([*_hub(tmp_path), "export", "--project", "team", "--adopt"]) == 64
    assert "--yes" in capsys.readouterr().err

    assert run([*_hub(tmp_path), "export", "--project", "team", "--search", "triage"]) == 0
    out = capsys.readouterr().out
    docs = list(yaml.safe_load_all(out))
    assert [(d["kind"], d["name"]) for d in docs] == [
        ("Project", "team"),
        ("Session", "nightly-triage"),
    ]
    assert SECRET not in out
    # Nothing was adopted: the session still has no marker.
    assert run([*_hub(tmp_path), "sessions", "get", hand_made["triage"], "--format", "json"]) == 0
    assert not [t for t in json.loads(capsys.readouterr().out)["tags"] if "reconciler:" in t]


def test_export_refuses_to_overwrite(
    tmp_path: Path, hand_made: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:

    out = tmp_path / "sessions"
    out.mkdir()
    mine = "# mine\napiVersion: reconciler/v1\nkind: Session\nname: mine\nspec: {task: t}\n"
    (out / "docs-bot.yaml").write_text(mine)
    assert run([*_hub(tmp_path), "export", "--project", "team", "--out", str(out)]) == 64
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (out / "docs-bot.yaml").read_text() == mine


def test_export_into_a_folder_that_does_not_validate_sends_no_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder's own errors, before any request (the hub is never read), never those
    of the files export would have added to it."""
    from reconciler.export import workflow

    read: list[object] = []

    async def reading(*args: object) -> object:
        read.append(args)
        raise AssertionError("the hub was read")

    monkeypatch.setattr(workflow, "_read", reading)
    out = tmp_path / "sessions"
    out.mkdir()
    (out / "s.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: a\nspec: {task: t, visibility: nope}\n"
    )
    (out / "empty.yaml").write_text("# nothing yet\n")
    code, _, err = _cli(tmp_path, capsys, "export", "--project", "team", "--out", str(out))
    assert code == 65, err
    assert f"{out / 's.yaml'}:4:" in err and "nope" in err
    assert f"{out / 'empty.yaml'}: the file declares nothing" in err
    assert "duplicate" not in err
    assert read == []
    # No client was opened: the embedded hub's database was never made, nor with --adopt
    # (whose lock and client come before its listing).
    assert not (tmp_path / "hub.sqlite3").exists()
    code, _, err = _cli(
        tmp_path, capsys, "export", "--project", "team", "--out", str(out), "--adopt", "--yes"
    )
    assert code == 65 and f"{out / 's.yaml'}:4:" in err, err
    assert not (tmp_path / "hub.sqlite3").exists() and read == []
    # Valid YAML and schema, but a Policy rule that does not compile: as validate says.
    (out / "s.yaml").unlink()
    (out / "empty.yaml").unlink()
    (out / "p.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Policy\nname: broken\nspec:\n  action: deny\n"
        "  rules:\n    - expression: 'session.name +'\n"
    )
    code, _, err = _cli(tmp_path, capsys, "export", "--project", "team", "--out", str(out))
    assert code == 65, err
    assert str(out / "p.yaml") in err
    assert read == [] and sorted(p.name for p in out.iterdir()) == ["p.yaml"]
    # A rule that compiles but fails on a declaration (validate exits 65): the same.
    (out / "p.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Policy\nname: broken\nspec:\n  action: deny\n"
        "  rules:\n    - expression: 'session.spec.nope == 1'\n"
    )
    (out / "s.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: a\nspec: {task: t}\n"
    )
    assert _cli(tmp_path, capsys, "validate", str(out))[0] == 65
    code, _, err = _cli(tmp_path, capsys, "export", "--project", "team", "--out", str(out))
    assert code == 65, err
    assert read == [] and sorted(p.name for p in out.iterdir()) == ["p.yaml", "s.yaml"]


def test_the_project_comes_from_the_out_directory_when_not_named(
    tmp_path: Path, hand_made: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([*_hub(tmp_path), "export"]) == 64
    assert "--project NAME is needed" in capsys.readouterr().err
    out = tmp_path / "sessions"
    out.mkdir()
    (out / "project.yaml").write_text("apiVersion: reconciler/v1\nkind: Project\nname: crew\n")
    argv = ["export", "--out", str(out), "--search", "triage", "--adopt", "--yes"]
    assert run([*_hub(tmp_path), *argv]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["nightly-triage.yaml", "project.yaml"]
    capsys.readouterr()
    assert run([*_hub(tmp_path), "sessions", "get", hand_made["triage"], "--format", "json"]) == 0
    tags = json.loads(capsys.readouterr().out)["tags"]
    assert [t.split("@")[0].split("=")[0] for t in tags if t.startswith("reconciler:")] == [
        "reconciler:crew/nightly-triage",
        "reconciler:adopted",
        "reconciler:applied:crew",
    ]


def test_an_unreadable_out_directory_never_names_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A Project named by a list, then a file that is not UTF-8: said clearly, no crash.
    out = tmp_path / "sessions"
    out.mkdir()
    (out / "project.yaml").write_text("apiVersion: reconciler/v1\nkind: Project\nname: [a]\n")
    assert run([*_hub(tmp_path), "export", "--out", str(out)]) == 64
    assert "--project NAME is needed" in capsys.readouterr().err
    (out / "project.yaml").write_text("apiVersion: reconciler/v1\nkind: Project\nname: crew\n")
    (out / "latin.yaml").write_bytes(b"name: caf\xe9\n")
    assert run([*_hub(tmp_path), "export", "--out", str(out), "--search", "nothing"]) == 65
    assert "latin.yaml:1:10: not UTF-8 text (byte 0xe9); refused" in capsys.readouterr().err


def test_a_hostile_file_in_the_out_directory_is_read_with_the_manifest_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Looking for the Project in DIR uses the manifest reader: aliases stay bounded.
    out = tmp_path / "sessions"
    out.mkdir()
    laughs = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    laughs += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    (out / "bomb.yaml").write_text("\n".join(laughs) + "\n")
    started = time.monotonic()
    assert run([*_hub(tmp_path), "export", "--out", str(out)]) == 64
    assert "--project NAME is needed" in capsys.readouterr().err
    assert time.monotonic() - started < 10


# Issue 12 part 3: export reproduces exactly what it reads. Every test goes through the
# CLI against the embedded hub.

CANARY = "canary-secret-value-0451"

PROJECT_WITH_DEFAULTS = """\
apiVersion: reconciler/v1
kind: Project
name: platform-team
plainEnv: [RELEASE_CHANNEL]
defaults:
  agent: claude-code
  visibility: org
  tags: [platform]
  metadata: {team: platform}
"""

MANAGED = """\
apiVersion: reconciler/v1
kind: Session
name: release-manager
spec:
  task: Prepare the weekly release.
  label: Release manager
  tags: [platform, release]
  repo: {fullName: acme/cli, provider: github, branch: main}
  env:
    GITHUB_TOKEN: ${env:RELEASE_GITHUB_TOKEN}
    RELEASE_CHANNEL: ${env:RELEASE_CHANNEL:-stable}
lifecycle:
  preventDestroy: true
---
apiVersion: reconciler/v1
kind: Session
name: flaky-test-hunter
spec:
  task: Find the flakiest tests.
  workflowMode: loop
  loop: {goal: No flaky test, maxIterations: 12, allowDetached: true}
  repo: {fullName: acme/api, branch: main}
lifecycle:
  ignoreChanges: [label]
---
apiVersion: reconciler/v1
kind: Session
name: docs-writer
spec:
  task: Keep the docs current.
  visibility: private
  tags: [docs]
  savedSkillIds: [skill_01HZX3TECHWRITER, skill_01HZX3MERMAID]
  skillBucketIds: [bucket_docs]
  repos:
    - {fullName: acme/docs, branch: main}
    - {fullName: acme/api, branch: main, path: openapi}
  metadata: {team: docs, jira: DOC-1}
"""


def _cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return invoke(capsys, *_hub(tmp_path), *args)


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELEASE_GITHUB_TOKEN", CANARY)


@pytest.fixture
def managed(tmp_path: Path, capsys: pytest.CaptureFixture[str], secrets_env: None) -> Path:
    """The sessions of MANAGED (with the Project's defaults), applied to the hub."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "project.yaml").write_text(PROJECT_WITH_DEFAULTS)
    (src / "sessions.yaml").write_text(MANAGED)
    code, _, err = _cli(tmp_path, capsys, "apply", str(src), "--yes")
    assert code == 0, err
    return src


def _plan_text(tmp_path: Path, capsys: pytest.CaptureFixture[str], folder: Path) -> str:
    code, out, err = _cli(tmp_path, capsys, "plan", str(folder), "--detailed-exitcode")
    assert code in (0, 2), err
    return out


def test_round_trip_of_managed_sessions_plans_no_changes(
    tmp_path: Path, managed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exported"
    code, stdout, err = _cli(
        tmp_path, capsys, "export", "--project", "platform-team", "--out", str(out)
    )
    assert code == 0, err
    assert CANARY not in stdout + err
    release = (out / "release-manager.yaml").read_text()
    # References come back as declared (name and :-default), never their values.
    assert "GITHUB_TOKEN: ${env:RELEASE_GITHUB_TOKEN}  # value not exported: set " in release
    assert "RELEASE_CHANNEL: ${env:RELEASE_CHANNEL:-stable}" in release
    assert CANARY not in release
    # The new folder's Project declares nothing plain (export never does): a plan saved
    # with --out refuses the default until a person does, and export says so.
    note = (
        "release-manager: env RELEASE_CHANNEL keeps the default it was applied with; a plan "
        "saved with --out that creates or replaces the session refuses it until the "
        "Project's plainEnv names RELEASE_CHANNEL"
    )
    assert note in err
    # The hub holds no Project's settings: the new folder's Project says it has defaults.
    assert f"{out / 'project.yaml'}: the default policy, no plainEnv and no defaults" in err
    fresh = tmp_path / "fresh"  # an empty hub: the saved plan creates the sessions
    fresh.mkdir()
    saved = ("plan", str(out), "--out", str(tmp_path / "p.json"))
    code, _, refused = _cli(fresh, capsys, *saved)
    assert code == 65 and "spec.env.RELEASE_CHANNEL" in refused
    assert "lifecycle:\n  preventDestroy: true\n" in release
    assert "workflowMode" not in release  # left out in the manifest: left out again
    docs = yaml.safe_load((out / "docs-writer.yaml").read_text())
    assert docs["spec"]["savedSkillIds"] == ["skill_01HZX3TECHWRITER", "skill_01HZX3MERMAID"]
    assert docs["spec"]["skillBucketIds"] == ["bucket_docs"]
    hunter = yaml.safe_load((out / "flaky-test-hunter.yaml").read_text())
    assert hunter["lifecycle"] == {"ignoreChanges": ["label"]}
    assert hunter["spec"]["loop"] == {
        "goal": "No flaky test",
        "maxIterations": 12,
        "allowDetached": True,
    }
    assert _plan_text(tmp_path, capsys, out).splitlines()[-1] == (
        "No changes. The hub matches the manifests (3 managed sessions)."
    )

    # Into a folder whose Project has the same defaults: what they give is left out.
    with_defaults = tmp_path / "with-defaults"
    with_defaults.mkdir()
    (with_defaults / "project.yaml").write_text(PROJECT_WITH_DEFAULTS)
    code, _, err = _cli(tmp_path, capsys, "export", "--out", str(with_defaults))
    assert code == 0, err
    assert "keeps the default" not in err  # its Project names RELEASE_CHANNEL plain
    hunter = yaml.safe_load((with_defaults / "flaky-test-hunter.yaml").read_text())
    assert not {"agent", "visibility", "tags", "metadata"} & hunter["spec"].keys()
    assert _plan_text(tmp_path, capsys, with_defaults).splitlines()[-1].startswith("No changes.")


def test_the_hub_never_holds_an_env_value_in_the_record(
    tmp_path: Path, managed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _cli(tmp_path, capsys, "sessions", "list", "--format", "json")
    assert code == 0
    ids = sorted(set(re.findall(r'"sessionId": "(codesess_[0-9a-f]+)"', out)))
    assert len(ids) == 3
    for session_id in ids:
        code, out, _ = _cli(tmp_path, capsys, "sessions", "get", session_id, "--format", "json")
        record = json.loads(out)["metadata"]["reconciler"]
        assert CANARY not in json.dumps(record)
        if record["name"] == "release-manager":
            assert record["declared"]["env"] == {
                "GITHUB_TOKEN": "${env:RELEASE_GITHUB_TOKEN}",
                "RELEASE_CHANNEL": "${env:RELEASE_CHANNEL:-stable}",
            }
            assert record["lifecycle"] == {"preventDestroy": True}


def test_a_default_under_env_is_a_literal_value_unless_the_variable_is_plain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `${env:DB_PASSWORD:-<a dev password>}`: the default is what is sent when the
    # variable is unset, a value written literally: never recorded on the hub (which the
    # whole organisation reads), never in a saved plan.
    src = tmp_path / "src"
    src.mkdir()
    secret = "canaryHunter2-dev"
    (src / "m.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: team\n---\n"
        "apiVersion: reconciler/v1\nkind: Session\nname: db\nspec:\n  task: Migrate\n"
        f'  env:\n    DB_PASSWORD: "${{env:DB_PASSWORD:-{secret}}}"\n'
    )
    code, out, err = _cli(tmp_path, capsys, "plan", str(src), "--out", str(tmp_path / "p.json"))
    assert code == 65, err
    assert "spec.env.DB_PASSWORD holds a value written literally beside its reference" in err
    assert 'use "${env:DB_PASSWORD}" alone' in err  # the variable it names
    assert not (tmp_path / "p.json").exists() and secret not in out + err
    code, out, err = _cli(tmp_path, capsys, "apply", str(src), "--yes", "--format", "json")
    assert code == 0, err
    (session_id,) = [r["sessionId"] for r in json.loads(out)["results"]]
    code, out, err = _cli(tmp_path, capsys, "sessions", "get", session_id, "--format", "json")
    assert secret not in out + err
    assert json.loads(out)["metadata"]["reconciler"]["declared"]["env"] == {"DB_PASSWORD": None}
    code, out, err = _cli(tmp_path, capsys, "export", "--project", "team")
    assert code == 0, err
    assert secret not in out + err
    assert "DB_PASSWORD: ${env:DB_PASSWORD}  # value not exported" in out
    # Its declaration unchanged, the plan is clean; the default changed, it is replaced,
    # named by key only.
    assert "No changes." in _plan_text(tmp_path, capsys, src)
    text = (src / "m.yaml").read_text()
    (src / "m.yaml").write_text(text.replace(secret, "canaryOther-dev"))
    plan = _plan_text(tmp_path, capsys, src)
    assert "create-only fields changed: env.DB_PASSWORD)" in plan
    assert secret not in plan and "canaryOther" not in plan


def test_a_replace_plan_names_the_nested_fields_that_changed(
    tmp_path: Path, managed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = (
        MANAGED.replace("maxIterations: 12", "maxIterations: 20")
        .replace("${env:RELEASE_GITHUB_TOKEN}", "${env:GITHUB_TOKEN}")
        .replace("preventDestroy: true", "preventDestroy: false")
    )
    (managed / "sessions.yaml").write_text(edited)
    code, text, err = _cli(tmp_path, capsys, "plan", str(managed), "--force")
    assert code == 0, err
    assert "create-only fingerprint" not in text
    assert "(create-only fields changed: loop.maxIterations)" in text
    assert "      loop.maxIterations: 12 -> 20" in text
    assert "(create-only fields changed: env.GITHUB_TOKEN)" in text
    assert "      env.GITHUB_TOKEN: changed (sensitive)" in text


def test_a_literal_env_value_is_never_recorded_nor_exported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "s.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: literal\n"
        f"spec:\n  task: T\n  env:\n    TOKEN: {CANARY}\n"
    )
    code, _, err = _cli(tmp_path, capsys, "apply", str(src), "--project", "p", "--yes")
    assert code == 0, err
    out = tmp_path / "out"
    code, stdout, err = _cli(tmp_path, capsys, "export", "--project", "p", "--out", str(out))
    assert code == 0, err
    assert (
        "literal: env TOKEN was declared with a value written literally, in full or in part" in err
    )
    text = (out / "literal.yaml").read_text()
    assert "TOKEN: ${env:TOKEN}" in text
    assert CANARY not in text + stdout + err
    # The plan says which key differs, and never its value.
    plan = _plan_text(tmp_path, capsys, out)
    assert "(create-only fields changed: env.TOKEN)" in plan
    assert CANARY not in plan


def test_hand_made_sessions_adopted_into_a_folder_with_defaults_plan_clean(
    tmp_path: Path, hand_made: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "team"
    out.mkdir()
    (out / "project.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: team\n"
        "defaults:\n  agent: opencode\n  visibility: private\n  tags: [team, docs]\n"
        "  metadata: {team: platform}\n  repos: [{fullName: acme/default}]\n"
    )
    code, _, err = _cli(
        tmp_path, capsys, "export", "--tag", "team", "--out", str(out), "--adopt", "--yes"
    )
    assert code == 0, err
    # docs2 has exactly the defaults' agent, visibility and tags: they are left out;
    # the others differ from them, or lack a field the defaults give (written empty).
    docs2 = yaml.safe_load((out / "docs-bot-2.yaml").read_text())["spec"]
    assert not {"agent", "visibility", "tags"} & docs2.keys()
    assert docs2["repos"] == [] and docs2["metadata"] == {}
    triage = yaml.safe_load((out / "nightly-triage.yaml").read_text())["spec"]
    assert triage["tags"] == ["team"]
    assert "metadata" not in triage  # {team: platform}, as the defaults give it
    assert triage["repos"] == [{"fullName": "acme/api"}, {"fullName": "acme/web"}]
    assert (
        "docs-bot: the Project's defaults give agent, which the session does not have: "
        "lifecycle.ignoreChanges lists it, so plans leave it alone"
    ) in err
    assert yaml.safe_load((out / "docs-bot.yaml").read_text())["lifecycle"] == {
        "ignoreChanges": ["agent"]
    }
    code, text, err = _cli(tmp_path, capsys, "plan", str(out), "--detailed-exitcode")
    assert code == 0, text + err
    assert text.splitlines()[-1] == (
        "No changes. The hub matches the manifests (3 managed sessions)."
    )


def _create(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: dict[str, Any], *args: str
) -> str:
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps(body))
    argv = ["sessions", "create", "--format", "json", "--from-json", str(payload), *args]
    code, out, err = _cli(tmp_path, capsys, *argv)
    assert code == 0, err
    return str(json.loads(out)["sessionId"])


def test_a_session_labelled_project_never_takes_the_projects_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session_id = _create(tmp_path, capsys, {"task": "Plan the roadmap", "label": "Project"})
    out = tmp_path / "out"
    code, _, err = _cli(
        tmp_path, capsys, "export", "--project", "crew", "--out", str(out), "--adopt", "--yes"
    )
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["project-2.yaml", "project.yaml"]
    assert yaml.safe_load((out / "project.yaml").read_text())["kind"] == "Project"
    code, text, err = _cli(tmp_path, capsys, "plan", str(out), "--detailed-exitcode")
    assert code == 0, text + err
    assert "(1 managed session)" in text
    code, out_json, _ = _cli(tmp_path, capsys, "sessions", "get", session_id, "--format", "json")
    tags = json.loads(out_json)["tags"]
    assert [t.split("@")[0].split("=")[0] for t in tags] == [
        "reconciler:crew/project-2",
        "reconciler:adopted",
        "reconciler:applied:crew",
    ]


def test_metadata_nested_400_deep_is_exported_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep: Any = "bottom"
    for _ in range(400):
        deep = {"k": deep}
    session_id = _create(tmp_path, capsys, {"task": "Deep", "label": "Deep"})
    # As a hub with other limits may hold it (whatever this hub's own create accepts).
    with sqlite3.connect(tmp_path / "hub.sqlite3") as db:
        db.execute(
            "UPDATE sessions SET metadata_json = ? WHERE session_id = ?",
            (json.dumps({"deep": deep}), session_id),
        )
    out = tmp_path / "out"
    code, _, err = _cli(tmp_path, capsys, "export", "--project", "crew", "--out", str(out))
    assert code == 0, err
    if (out / "deep.yaml").exists():  # written (as JSON), and it reads back the same
        (session,) = load_manifests([str(out)], environ={}).sessions
        assert session.spec["metadata"] == {"deep": deep}
    else:  # or, where manifests cannot nest that deep, skipped with a note naming it
        assert f"skipped {session_id} (deep): its manifest would not validate" in err


def test_a_reserved_tag_never_breaks_the_export_and_files_come_all_or_none(
    tmp_path: Path, hand_made: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _create(tmp_path, capsys, {"task": "Legacy"}, "--tag", "team", "--tag", "reconciler:legacy")
    out = tmp_path / "out"
    code, _, err = _cli(
        tmp_path, capsys, "export", "--project", "team", "--tag", "team", "--out", str(out)
    )
    assert code == 0, err
    assert (
        "legacy: tags with the reserved prefix reconciler: left out of the manifest "
        "(they stay on the session): reconciler:legacy"
    ) in err
    assert len(list(out.glob("*.yaml"))) == 5  # four sessions and the Project

    # A folder that does not validate with the new files in it: nothing is written.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "project.yaml").write_text("apiVersion: reconciler/v1\nkind: Project\nname: team\n")
    mine = "apiVersion: reconciler/v1\nkind: Session\nname: legacy\nspec: {task: Mine}\n"
    literal = "task: Mine, bogus: 1, env: {API_KEY: hunter2hunter2}"
    (broken / "mine.yaml").write_text(mine.replace("task: Mine", literal))
    before = sorted(p.name for p in broken.iterdir())
    code, _, err = _cli(tmp_path, capsys, "export", "--tag", "team", "--out", str(broken))
    assert code == 65, err
    assert f"{broken / 'mine.yaml'}:4:" in err and "bogus" in err
    # What the folder warns of is said beside its errors, as validate says it.
    assert f"warning: {broken / 'mine.yaml'}:4:" in err
    assert "spec.env.API_KEY is written literally" in err
    assert "hunter2hunter2" not in err and ".reconciler-" not in err
    assert sorted(p.name for p in broken.iterdir()) == before  # staging gone too
    # Once it validates, everything is written; the name mine.yaml declares is its
    # own: the session export would have named so is named otherwise.
    (broken / "mine.yaml").write_text(mine)
    code, _, err = _cli(tmp_path, capsys, "export", "--tag", "team", "--out", str(broken))
    assert code == 0, err
    assert len(list(broken.glob("*.yaml"))) == 6
    assert "name: legacy-2\n" in (broken / "legacy-2.yaml").read_text()


def test_export_never_writes_through_a_symbolic_link(
    tmp_path: Path, hand_made: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "elsewhere" / "stolen.yaml"
    (out / "docs-bot.yaml").symlink_to(outside)  # dangling: the folder does not read
    code, _, err = _cli(tmp_path, capsys, "export", "--project", "team", "--out", str(out))
    assert code == 65
    assert f"{out / 'docs-bot.yaml'}: broken symbolic link" in err
    assert not outside.exists() and not outside.parent.exists()
    # To a manifest elsewhere: the folder reads, and export writes nothing through it.
    outside.parent.mkdir()
    theirs = "apiVersion: reconciler/v1\nkind: Session\nname: theirs\nspec: {task: t}\n"
    outside.write_text(theirs)
    code, _, err = _cli(tmp_path, capsys, "export", "--project", "team", "--out", str(out))
    assert code == 64
    assert f"refusing to write {out / 'docs-bot.yaml'}: not a regular file" in err
    assert outside.read_text() == theirs
    assert [p.name for p in out.iterdir()] == ["docs-bot.yaml"]  # nothing else written


def test_a_session_with_an_unknown_enum_value_is_skipped_with_a_note(
    tmp_path: Path, hand_made: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # The real service may send a visibility this tool does not know.
    with sqlite3.connect(tmp_path / "hub.sqlite3") as db:
        db.execute(
            "UPDATE sessions SET visibility = 'team' WHERE session_id = ?", (hand_made["docs"],)
        )
    out = tmp_path / "out"
    code, _, err = _cli(tmp_path, capsys, "export", "--project", "team", "--out", str(out))
    assert code == 0, err
    assert f"skipped {hand_made['docs']} (docs-bot): its manifest would not validate: " in err
    assert "visibility" in err
    assert not (out / "docs-bot.yaml").exists()
    code, _, err = _cli(tmp_path, capsys, "validate", str(out))
    assert code == 0, err


def _export_and_adopt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, list[str]]:
    """The team's sessions exported into tmp_path/out and adopted; the command line."""
    out = tmp_path / "out"
    argv = ["export", "--project", "team", "--tag", "team", "--out", str(out), "--adopt", "--yes"]
    code, _, err = _cli(tmp_path, capsys, *argv)
    assert code == 0, err
    return out, argv


def test_exporting_again_when_nothing_changed_changes_no_file(
    tmp_path: Path, hand_made: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out, argv = _export_and_adopt(tmp_path, capsys)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    dir_mtime = out.stat().st_mtime_ns
    code, _, err = _cli(tmp_path, capsys, *argv)
    assert code == 0, err
    assert "unchanged: 3 file(s) already up to date" in err
    assert "already adopted" in err
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert after == before
    assert out.stat().st_mtime_ns == dir_mtime


def test_the_examples_round_trip_through_export_with_no_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = Path(__file__).resolve().parent.parent / "examples"
    monkeypatch.setenv("RELEASE_GITHUB_TOKEN", CANARY)
    monkeypatch.setenv("NPM_TOKEN", CANARY)
    code, _, err = _cli(tmp_path, capsys, "apply", str(examples), "--yes")
    assert code == 0, err
    out = tmp_path / "out"
    out.mkdir()
    (out / "project.yaml").write_bytes((examples / "project.yaml").read_bytes())
    # Export leaves sets alone: their sessions stay declared by the set's own file.
    (out / "reviews.yaml").write_bytes((examples / "reviews.yaml").read_bytes())
    code, stdout, err = _cli(tmp_path, capsys, "export", "--out", str(out))
    assert code == 0, err
    assert err.count("generated by SessionSet 'repo-reviews'; export leaves sets alone") == 3
    assert CANARY not in stdout + err + "".join(p.read_text() for p in out.iterdir())
    code, text, err = _cli(tmp_path, capsys, "plan", str(out), "--detailed-exitcode")
    assert code == 0, text + err
    assert text.splitlines()[-1].startswith("No changes.")


def test_a_paused_session_is_adopted_paused_and_plans_clean(
    cli_hub: CliHub, tmp_path: Path
) -> None:
    paused = cli_hub.create("--task", "Wait for the release", "--label", "Release watch")
    cli_hub.admin(paused, {"status": "paused"})
    out = tmp_path / "adopted"
    argv = ("--project", unique("p"), "--out", str(out), "--adopt", "--yes")
    code, _, err = cli_hub.run("export", *argv)
    assert code == 0, err
    assert "release-watch: found paused: lifecycle.ignoreChanges lists status" in err
    written = yaml.safe_load((out / "release-watch.yaml").read_text())
    assert written["lifecycle"] == {"ignoreChanges": ["status"]}
    # Right after adoption the plan is clean: the paused session is not resumed.
    code, text, err = cli_hub.run("plan", str(out), "--detailed-exitcode")
    assert code == 0, text + err
    assert text.splitlines()[-1].startswith("No changes.")
    assert cli_hub.json("sessions", "get", paused)["status"] == "paused"


def test_may_rewrite_only_what_export_wrote_and_nobody_edited() -> None:
    (exported,) = build_exports("proj", [DETAIL], {"codesess_1": LOOP})
    text = render_file(exported)
    assert re.search(r"^# export-digest: [0-9a-f]{16} ", text, re.MULTILINE)
    replaced = render_file(dataclasses.replace(exported, session_id="codesess_2"))
    assert may_rewrite(text, replaced)  # untouched since written
    # Edited by hand: refused, unless export now writes what the person wrote.
    edited = text.replace("label: Nightly Triage!", "label: Nightly")
    assert not may_rewrite(edited, replaced)
    relabelled = dataclasses.replace(exported, spec={**exported.spec, "label": "Nightly"})
    assert may_rewrite(edited, render_file(relabelled))
    assert not may_rewrite(text + "# a note of mine\n", replaced)
    # Written before digests: only the session-id comment may differ.
    legacy = "".join(line for line in text.splitlines(True) if "export-digest" not in line)
    assert may_rewrite(legacy, replaced)
    assert not may_rewrite(legacy.replace("Triage issues", "Triage all issues"), replaced)


def test_exporting_again_updates_what_changed_and_adds_what_is_new(
    tmp_path: Path, hand_made: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out, argv = _export_and_adopt(tmp_path, capsys)
    # A replacement (the task edited in the manifest, applied) gives docs-bot a new id.
    docs = out / "docs-bot.yaml"
    docs.write_text(docs.read_text().replace("Keep the docs current", "Keep the docs true"))
    code, report, err = _cli(tmp_path, capsys, "apply", str(out), "--yes", "--format", "json")
    assert code == 0, err
    ((kind, replaced),) = [(r["kind"], r["sessionId"]) for r in json.loads(report)["results"]]
    assert kind == "replace" and replaced != hand_made["docs"]
    # Someone relabels triage on the hub; a new session appears.
    code, _, err = _cli(
        tmp_path, capsys, "sessions", "update", hand_made["triage"], "--label", "Triage!"
    )
    assert code == 0, err
    code, _, err = _cli(
        tmp_path,
        capsys,
        "sessions",
        "create",
        "--task",
        "Fresh",
        "--label",
        "Fresh",
        "--tag",
        "team",
    )
    assert code == 0, err

    code, _, err = _cli(tmp_path, capsys, *argv)
    assert code == 0, err
    # docs-bot.yaml was edited by hand, but holds what export writes now: it is updated,
    # its session-id comment with it; nightly-triage.yaml follows the hub.
    assert f"updated {out / 'docs-bot.yaml'}" in err
    assert f"updated {out / 'nightly-triage.yaml'}" in err
    assert f"wrote {out / 'fresh.yaml'}" in err
    assert f"# Exported from session {replaced}.\n" in docs.read_text()
    assert "label: Triage!" in (out / "nightly-triage.yaml").read_text()
    assert "  ~ fresh [codesess_" in err  # the new one only
    assert "Plan: 0 to create, 1 to update" in err
    code, text, err = _cli(tmp_path, capsys, "plan", str(out), "--detailed-exitcode")
    assert code == 0, text + err

    # A file a person edited is theirs: left alone, saying so, and the rest exported
    # (one comment must not stop every later export into the folder).
    triage = out / "nightly-triage.yaml"
    kept = triage.read_text() + "# reviewed by ops\n"
    triage.write_text(kept)
    code, _, err = _cli(
        tmp_path, capsys, "sessions", "update", hand_made["triage"], "--label", "T3"
    )
    assert code == 0, err
    code, _, err = _cli(
        tmp_path, capsys, "sessions", "update", hand_made["docs2"], "--label", "Docs Bot 2"
    )
    assert code == 0, err
    code, _, err = _cli(tmp_path, capsys, *argv)
    assert code == 0, err
    assert f"{triage} was edited since export wrote it, so export leaves it" in err
    assert triage.read_text() == kept
    assert "label: Docs Bot 2" in (out / "docs-bot-2.yaml").read_text()


def test_unmanaged_only_exports_just_the_sessions_no_project_manages(
    tmp_path: Path, hand_made: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["export", "--project", "team", "--search", "docs", "--out", str(out), "--adopt"]
    code, _, err = _cli(tmp_path, capsys, *argv, "--yes")
    assert code == 0, err
    code, stdout, err = _cli(tmp_path, capsys, "export", "--project", "team", "--unmanaged-only")
    assert code == 0, err
    docs = list(yaml.safe_load_all(stdout))
    assert [(d["kind"], d["name"]) for d in docs] == [
        ("Project", "team"),
        ("Session", "nightly-triage"),
    ]
    # The two adopted here and the one of other-team are left out, counted once.
    assert "left out 3 session(s) a project manages (--unmanaged-only)" in err
    assert "managed by project other-team" not in err


def test_an_update_is_rolled_back_when_a_later_file_cannot_be_placed(tmp_path: Path) -> None:
    from reconciler.errors import UsageError
    from reconciler.export.files import compare_with_folder, publish, staged

    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.yaml").write_text("old a\n")
    files = compare_with_folder(
        folder, {"a.yaml": "new a\n", "b.yaml": "new b\n"}, rewritable=lambda old, new: True
    )
    assert (dict(files.updated), dict(files.new)) == ({"a.yaml": "new a\n"}, {"b.yaml": "new b\n"})
    with staged(folder, files.writes) as paths:
        (folder / "b.yaml").write_text("appeared meanwhile\n")
        with pytest.raises(UsageError, match="b.yaml: it appeared meanwhile"):
            publish(folder, paths, files.previous)
    assert (folder / "a.yaml").read_text() == "old a\n"
    assert sorted(p.name for p in folder.iterdir()) == ["a.yaml", "b.yaml"]
    # A file changed after it was judged is never written over.
    (folder / "b.yaml").unlink()
    with staged(folder, files.writes) as paths:
        (folder / "a.yaml").write_text("edited meanwhile\n")
        with pytest.raises(UsageError, match="a.yaml: it changed meanwhile"):
            publish(folder, paths, files.previous)
    assert (folder / "a.yaml").read_text() == "edited meanwhile\n"
    assert not (folder / "b.yaml").exists()


def test_loop_settings_the_hub_holds_spelled_out_or_left_out_replace_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A hand-made loop session, exported and adopted: export writes the loop flags the
    # hub reports (false), which the person never wrote.
    loop = {"goal": "All deps current", "maxIterations": 5}
    _create(tmp_path, capsys, {"task": "Bump deps", "workflowMode": "loop", "loop": loop})
    out = tmp_path / "out"
    argv = ["export", "--project", "team", "--out", str(out), "--adopt", "--yes"]
    code, _, err = _cli(tmp_path, capsys, *argv)
    assert code == 0, err
    (file,) = (p for p in out.iterdir() if p.name != "project.yaml")
    text = file.read_text()
    assert "autoContinue: false" in text and "allowDetached: false" in text
    # Left out again, as created: the hub holds the same, no replacement.
    file.write_text(re.sub(r"\n +(autoContinue|allowDetached): false", "", text))
    assert "No changes." in _plan_text(tmp_path, capsys, out)
    # A real change is still named, with the value the hub holds.
    file.write_text(
        file.read_text().replace("maxIterations: 5", "maxIterations: 5\n    autoContinue: true")
    )
    code, plan, err = _cli(tmp_path, capsys, "plan", str(out), "--detailed-exitcode", "--force")
    assert "create-only fields changed: loop.autoContinue)" in plan
    assert "loop.autoContinue: false -> true" in plan


def test_loop_settings_spelled_out_as_the_hub_holds_them_replace_no_created_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    spec = (
        "  task: Bump deps\n  workflowMode: loop\n  loop:\n    goal: Green\n    maxIterations: 5\n"
    )
    session = "apiVersion: reconciler/v1\nkind: Session\nname: looper\nspec:\n"
    project = "apiVersion: reconciler/v1\nkind: Project\nname: team\n---\n"
    (src / "m.yaml").write_text(project + session + spec)
    code, _, err = _cli(tmp_path, capsys, "apply", str(src), "--yes")
    assert code == 0, err
    # The session records its declaration (no flags); the hub holds them false.
    flags = "    allowDetached: false\n    autoContinue: false\n"
    (src / "m.yaml").write_text(project + session + spec + flags)
    assert "No changes." in _plan_text(tmp_path, capsys, src)
    (src / "m.yaml").write_text(
        project + session + spec + flags.replace("Detached: false", "Detached: true")
    )
    code, plan, err = _cli(tmp_path, capsys, "plan", str(src), "--detailed-exitcode", "--force")
    assert "create-only fields changed: loop.allowDetached)" in plan
    assert "loop.allowDetached: false -> true" in plan
    # A setting that was set, left out now, is a change: the hub holds it, a new session
    # would not.
    (src / "m.yaml").write_text(project + session + spec.replace("    goal: Green\n", ""))
    code, plan, err = _cli(tmp_path, capsys, "plan", str(src), "--detailed-exitcode", "--force")
    assert "create-only fields changed: loop.goal)" in plan, plan + err


def test_an_adopted_export_records_what_it_took_over_so_causes_are_known(
    tmp_path: Path, hand_made: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["export", "--project", "team", "--tag", "team", "--out", str(out), "--adopt", "--yes"]
    code, _, err = _cli(tmp_path, capsys, *argv)
    assert code == 0, err
    # The confirmation shows every tag the adoption adds.
    assert "+ reconciler:adopted" in err
    # A reviewed edit is the manifest's; a hand edit on the hub is drift.
    docs = out / "docs-bot.yaml"
    docs.write_text(docs.read_text().replace("label: Docs bot", "label: Docs bot v2"))
    code, _, err = _cli(
        tmp_path, capsys, "sessions", "update", hand_made["docs2"], "--label", "Hand-edited"
    )
    assert code == 0, err
    code, plan, err = _cli(tmp_path, capsys, "plan", str(out), "--format", "json")
    causes = {
        a["name"]: {c["field"]: c["cause"] for c in a["changes"]}
        for a in json.loads(plan)["actions"]
    }
    assert causes == {"docs-bot": {"label": "manifest"}, "docs-bot-2": {"label": "drift"}}


def test_an_adoption_into_a_folder_with_defaults_records_what_they_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Export leaves out what the folder Project's defaults give (agent, visibility): the
    # adoption records them all the same, so a hand edit of one is drift.
    out = tmp_path / "out"
    out.mkdir()
    (out / "project.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: team\n"
        "defaults: {agent: claude-code, visibility: organization}\n"
    )
    session_id = _create(
        tmp_path,
        capsys,
        {"task": "Two", "label": "H2", "agent": "claude-code", "visibility": "organization"},
    )
    code, _, err = _cli(tmp_path, capsys, "export", "--out", str(out), "--adopt", "--yes")
    assert code == 0, err
    code, _, err = _cli(
        tmp_path, capsys, "sessions", "update", session_id, "--visibility", "private"
    )
    assert code == 0, err
    code, plan, err = _cli(tmp_path, capsys, "plan", str(out), "--format", "json")
    (action,) = json.loads(plan)["actions"]
    assert [(c["field"], c["cause"]) for c in action["changes"]] == [("visibility", "drift")]


def test_a_default_an_older_version_recorded_is_exported_as_a_bare_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before defaults were values, a record kept `${env:APW:-<password>}`: exported into a
    # folder whose Project does not call APW plain, it is a bare reference to APW.
    monkeypatch.setenv("APW", "x")
    src = tmp_path / "src"
    src.mkdir()
    project = "apiVersion: reconciler/v1\nkind: Project\nname: team\n"
    (src / "project.yaml").write_text(project)
    (src / "s.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: db\nspec:\n  task: Migrate\n"
        '  env: {A: "${env:APW}"}\n'
    )
    code, out, err = _cli(tmp_path, capsys, "apply", str(src), "--yes", "--format", "json")
    assert code == 0, err
    (session_id,) = [r["sessionId"] for r in json.loads(out)["results"]]
    with sqlite3.connect(tmp_path / "hub.sqlite3") as db:
        (text,) = db.execute(
            "SELECT metadata_json FROM sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        metadata = json.loads(text.replace("${env:APW}", "${env:APW:-canaryOLD-pw}"))
        del metadata["reconciler"]["envForm"]  # an older version wrote no such mark
        db.execute(
            "UPDATE sessions SET metadata_json = ? WHERE session_id = ?",
            (json.dumps(metadata), session_id),
        )
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "project.yaml").write_text(project)
    code, stdout, err = _cli(tmp_path, capsys, "export", "--out", str(out_dir))
    assert code == 0, err
    written = (out_dir / "db.yaml").read_text()
    assert "canaryOLD" not in written + stdout + err
    assert "A: ${env:APW}  # value not exported" in written
    assert "db: env A was declared with a value written literally, in full or in part" in err
    # To stdout (no folder, no Project to read plainEnv from): the same.
    code, stdout, err = _cli(tmp_path, capsys, "export", "--project", "team")
    assert code == 0, err
    assert "canaryOLD" not in stdout + err and "A: ${env:APW}  # value not exported" in stdout


def test_a_skill_the_hub_holds_twice_is_exported_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A manifest may declare a skill once only; a session holding one twice (made by
    # hand) is still exported, the skill written once, and adopting it changes nothing.
    skill = {"skillId": "x", "repo": "o/r"}
    body = {"task": "Twice", "label": "Twice", "skills": [skill, {**skill, "name": "X"}]}
    session_id = _create(tmp_path, capsys, body)
    out = tmp_path / "out"
    code, _, err = _cli(tmp_path, capsys, "export", "--project", "crew", "--out", str(out))
    assert code == 0, err
    assert "twice: skills the hub holds more than once, written once" in err
    written = yaml.safe_load((out / "twice.yaml").read_text())
    assert written["adopt"] == session_id and written["spec"]["skills"] == [skill]
    plan = _plan_text(tmp_path, capsys, out)
    assert f"  ~ twice [{session_id}]: update (adopt: adopted as declared)" in plan
    assert "skills" not in plan  # the repeat left alone: skills compare as a set


RENAME_PROJECT = "apiVersion: reconciler/v1\nkind: Project\nname: p1\n---\n"
RENAME_SESSION = "apiVersion: reconciler/v1\nkind: Session\nname: {name}\n{extra}spec:\n  task: t\n"


def _exported_then_renamed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str
) -> tuple[Path, Path]:
    """Session ``old`` of project p1 applied from src/ and exported into copy/, then
    renamed ``new`` (`previously`) and applied: (src, copy)."""
    src, copy = tmp_path / "src", tmp_path / "copy"
    src.mkdir()
    (src / "m.yaml").write_text(RENAME_PROJECT + RENAME_SESSION.format(name=old, extra=""))
    assert _cli(tmp_path, capsys, "apply", str(src), "--yes")[0] == 0
    assert _cli(tmp_path, capsys, "export", "--project", "p1", "--out", str(copy))[0] == 0
    renamed = RENAME_SESSION.format(name=new, extra=f"previously: [{old}]\n")
    (src / "m.yaml").write_text(RENAME_PROJECT + renamed)
    assert _cli(tmp_path, capsys, "apply", str(src), "--yes")[0] == 0
    return src, copy


def test_exporting_again_after_a_rename_updates_the_file_export_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A session renamed since export wrote its file (`previously`) is written into that
    file under its new name: a second file would leave the old name declared, which a
    plan of the folder would create again (and prune the renamed session). One a person
    edited since is left, saying how to rename it there; one whose session the hub lists
    no more (archived) is named too, as a plan would create it again."""
    src, copy = _exported_then_renamed(tmp_path, capsys, "old-name", "new-name")
    project, body = RENAME_PROJECT, RENAME_SESSION
    code, _, err = _cli(tmp_path, capsys, "export", "--project", "p1", "--out", str(copy))
    assert code == 0, err
    assert f"{copy / 'old-name.yaml'}: declares new-name now (renamed from old-name)" in err
    assert sorted(p.name for p in copy.iterdir()) == ["old-name.yaml", "project.yaml"]
    assert "name: new-name" in (copy / "old-name.yaml").read_text()
    code, out, err = _cli(tmp_path, capsys, "plan", str(copy), "--detailed-exitcode")
    assert code == 0, out + err
    # Edited by a person since: left as it is, the session skipped, the way out said.
    (src / "m.yaml").write_text(
        project + body.format(name="newer", extra="previously: [new-name]\n")
    )
    assert _cli(tmp_path, capsys, "apply", str(src), "--yes")[0] == 0
    edited = (copy / "old-name.yaml").read_text() + "# mine\n"
    (copy / "old-name.yaml").write_text(edited)
    code, _, err = _cli(tmp_path, capsys, "export", "--project", "p1", "--out", str(copy))
    assert code == 0, err
    assert (
        f"(newer): {copy / 'old-name.yaml'} declares it as new-name, and export did not "
        "write it as it is (edited or moved since); declare it there as newer with "
        "`previously: [new-name]`, or a plan of this folder creates new-name again"
    ) in err
    assert (copy / "old-name.yaml").read_text() == edited
    assert sorted(p.name for p in copy.iterdir()) == ["old-name.yaml", "project.yaml"]
    # Archived on the hub: export writes nothing for it, and says the file would bring
    # it back.
    (copy / "old-name.yaml").write_text(edited.replace("# mine\n", ""))
    assert _cli(tmp_path, capsys, "export", "--project", "p1", "--out", str(copy))[0] == 0
    (session_id,) = {
        m.group(1) for m in re.finditer(r"(codesess_\w+)", (copy / "old-name.yaml").read_text())
    }
    assert _cli(tmp_path, capsys, "sessions", "archive", session_id)[0] == 0
    code, _, err = _cli(tmp_path, capsys, "export", "--project", "p1", "--out", str(copy))
    assert code == 0, err
    assert (
        f"{copy / 'old-name.yaml'}: declares newer, exported from {session_id}, which the hub "
        "no longer lists (archived or deleted): a plan of this folder creates newer again"
    ) in err


def test_a_replaced_session_is_not_said_gone_and_a_skipped_rename_is_not_said_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file of a session replaced since (a new id under the same name) is updated,
    and no note says the hub lists it no more (deleting the file, as that note advises,
    would prune the replacement). A rename export cannot write (another file declares
    the new name) says only that it skipped it."""
    src, copy = tmp_path / "src", tmp_path / "copy"
    src.mkdir()
    project = "apiVersion: reconciler/v1\nkind: Project\nname: p1\n---\n"
    body = "apiVersion: reconciler/v1\nkind: Session\nname: {name}\n{extra}spec:\n  task: {task}\n"
    (src / "m.yaml").write_text(project + body.format(name="a", extra="", task="t1"))
    assert _cli(tmp_path, capsys, "apply", str(src), "--yes")[0] == 0
    assert _cli(tmp_path, capsys, "export", "--project", "p1", "--out", str(copy))[0] == 0
    (src / "m.yaml").write_text(project + body.format(name="a", extra="", task="t2"))
    assert _cli(tmp_path, capsys, "apply", str(src), "--yes")[0] == 0  # a replacement
    code, _, err = _cli(tmp_path, capsys, "export", "--project", "p1", "--out", str(copy))
    assert code == 0 and "task: t2" in (copy / "a.yaml").read_text(), err
    assert "no longer lists" not in err, err
    assert _cli(tmp_path, capsys, "plan", str(copy), "--detailed-exitcode")[0] == 0
    renamed = body.format(name="b", extra="previously: [a]\n", task="t2")
    (src / "m.yaml").write_text(project + renamed)
    assert _cli(tmp_path, capsys, "apply", str(src), "--yes")[0] == 0
    (copy / "mine.yaml").write_text(body.format(name="b", extra="", task="t2"))
    code, _, err = _cli(tmp_path, capsys, "export", "--project", "p1", "--out", str(copy))
    assert code == 0, err
    assert f"declared already in {copy / 'mine.yaml'}" in err
    assert "declares b now" not in err


def test_a_rename_export_skips_later_is_not_said_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A renamed session whose manifest would not validate (a label holding a reference
    no Project declares plain) is skipped after its file was chosen: no note says the
    file now declares the new name."""
    _src, copy = _exported_then_renamed(tmp_path, capsys, "a", "b")
    code, out, err = _cli(tmp_path, capsys, "sessions", "list", "--format", "json")
    doc = json.loads(out)
    items = doc["sessions"]["websocket"]
    sid = items[0].get("sessionId") or items[0].get("id")
    code, out, err = _cli(
        tmp_path, capsys, "sessions", "update", sid, "--label", "${env:NOT_PLAIN}"
    )
    assert code == 0, err
    code, _, err = _cli(tmp_path, capsys, "export", "--project", "p1", "--out", str(copy))
    assert "skipped" in err and "would not validate" in err
    assert "declares b now" not in err  # skipped after the rename was found: not said done
    assert "name: a\n" in (copy / "a.yaml").read_text()  # file not rewritten
