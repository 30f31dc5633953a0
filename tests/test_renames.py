"""`previously: [old-name]`: a rename re-tags the managed session in place.

Through the CLI against the embedded hub and a served one (`hub serve` subprocess).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clihub import CliHub, hub_fixture, unique, write_manifests  # noqa: F401 - fixtures

from reconciler.cli.main import run


def _session(name: str, task: str = "Review pull requests", *, extra: str = "") -> str:
    return (
        f"apiVersion: reconciler/v1\nkind: Session\nname: {name}\n{extra}"
        f"spec:\n  task: {task}\n  label: Reviewer\n  tags: [review]\n"
    )


def _applied(hub: CliHub, tmp_path: Path, *docs: str) -> tuple[str, Path]:
    """A new project with ``docs`` applied: its name and manifest folder."""
    project = unique("p")
    repo = write_manifests(tmp_path / "m", project, *docs)
    hub.ok("apply", str(repo), "--yes")
    return project, repo


def _tags(hub: CliHub, session_id: str) -> list[str]:
    tags: list[str] = hub.json("sessions", "get", session_id)["tags"]
    return tags


def test_a_rename_retags_the_same_session(hub: CliHub, tmp_path: Path) -> None:
    project, repo = _applied(hub, tmp_path, _session("old-name"))
    [row] = hub.json("status", str(repo))["sessions"]
    session_id = row["sessionId"]
    old_marker = next(t for t in _tags(hub, session_id) if t.startswith("reconciler:"))
    digest = old_marker.rsplit("@", 1)[1]
    # The record of the values the create applied (planner.applied) stays as it is.
    record = next(t for t in _tags(hub, session_id) if t.startswith("reconciler:applied:"))

    write_manifests(repo, project, _session("new-name", extra="previously: [old-name]\n"))
    status = hub.json("status", str(repo))["sessions"]
    assert [(r["name"], r["sessionId"], r["sync"]) for r in status] == [
        ("new-name", session_id, "pending")  # a rename is the manifests' change
    ]
    code, out, _ = hub.run("plan", str(repo), "--detailed-exitcode")
    assert code == 2
    new_marker = f"reconciler:{project}/new-name@{digest}"
    assert f"  ~ new-name [{session_id}]: update (renamed from old-name)" in out
    assert f"      tags: + {new_marker}, - {old_marker}" in out
    assert "Plan: 0 to create, 1 to update, 0 to replace, 0 to resume, 0 to archive" in out

    plan = hub.json("plan", str(repo))
    [action] = plan["actions"]
    assert (action["kind"], action["markerTag"]) == ("update", new_marker)
    assert action["body"]["tags"] == ["review", new_marker, record]

    hub.ok("apply", str(repo), "--yes")
    assert sorted(_tags(hub, session_id)) == sorted(["review", new_marker, record])
    code, out, _ = hub.run("plan", str(repo), "--detailed-exitcode")
    assert code == 0, out
    # The old name can go from the manifest once applied: nothing changes.
    write_manifests(repo, project, _session("new-name"))
    assert hub.run("plan", str(repo), "--detailed-exitcode")[0] == 0


def test_previously_naming_a_session_while_the_new_name_has_its_own_is_refused(
    hub: CliHub, tmp_path: Path
) -> None:
    # b and c both applied; then b's file goes and c says `previously: [b]`: two
    # sessions, not one renamed. Merged, c's own would be archived as a duplicate.
    project, repo = _applied(hub, tmp_path, _session("b"), _session("c"))
    ids = {r["name"]: r["sessionId"] for r in hub.json("status", str(repo))["sessions"]}
    write_manifests(repo, project, _session("c", extra="previously: [b]\n"))
    for command in ("plan", "apply", "status"):
        code, out, err = hub.run(command, str(repo), *(["--yes"] if command == "apply" else []))
        assert code == 64, out + err
        assert f"c: previously names {project}/b, which has a live session ({ids['b']})" in err
        assert f"and so has c ({ids['c']})" in err
    statuses = {i: hub.json("sessions", "get", i)["status"] for i in ids.values()}
    assert set(statuses.values()) == {"active"}


def test_without_previously_a_rename_is_a_destroy_and_safety_refuses_it(
    hub: CliHub, tmp_path: Path
) -> None:
    project, repo = _applied(hub, tmp_path, _session("old-name"))

    write_manifests(repo, project, _session("new-name"))
    code, out, err = hub.run("plan", str(repo))
    assert code == 3, err
    assert "removeAll" in err
    assert "Plan: 1 to create, 0 to update, 0 to replace, 0 to resume, 1 to archive" in out

    # The same rename declared: no destroy, so nothing to refuse.
    write_manifests(repo, project, _session("new-name", extra="previously: [old-name]\n"))
    code, out, err = hub.run("apply", str(repo), "--yes")
    assert code == 0, err


def test_a_protected_session_can_be_renamed(hub: CliHub, tmp_path: Path) -> None:
    project = unique("p")
    guard = "lifecycle: {preventDestroy: true}\n"
    repo = write_manifests(tmp_path / "m", project, _session("old-name") + guard)
    hub.ok("apply", str(repo), "--yes")
    write_manifests(repo, project, _session("new-name", extra="previously: [old-name]\n") + guard)
    code, _, err = hub.run("apply", str(repo), "--yes")
    assert code == 0, err


def test_a_rename_with_a_create_only_change_is_a_replacement(hub: CliHub, tmp_path: Path) -> None:
    project = unique("p")
    repo = write_manifests(tmp_path / "m", project, _session("old-name"), _session("other"))
    hub.ok("apply", str(repo), "--yes")
    rows = {r["name"]: r["sessionId"] for r in hub.json("status", str(repo))["sessions"]}

    renamed = _session("new-name", "Review every pull request", extra="previously: [old-name]\n")
    write_manifests(repo, project, renamed, _session("other"))
    plan = hub.json("plan", str(repo))
    assert [(a["kind"], a["name"], a["sessionId"]) for a in plan["actions"]] == [
        ("replace", "new-name", rows["old-name"])
    ]
    [action] = plan["actions"]
    assert action["markerTag"].startswith(f"reconciler:{project}/new-name@")
    assert [c["field"] for c in action["changes"]] == ["task"]
    hub.ok("apply", str(repo), "--yes")
    rows_after = {r["name"]: r for r in hub.json("status", str(repo))["sessions"]}
    assert set(rows_after) == {"new-name", "other"}
    assert rows_after["new-name"]["sessionId"] != rows["old-name"]
    assert hub.json("sessions", "get", rows["old-name"])["status"] == "archived"


def test_export_writes_the_name_of_the_marker_after_a_rename(hub: CliHub, tmp_path: Path) -> None:
    project, repo = _applied(hub, tmp_path, _session("old-name"))
    write_manifests(repo, project, _session("new-name", extra="previously: [old-name]\n"))
    hub.ok("apply", str(repo), "--yes")
    # metadata.reconciler (create-only) still says old-name; the marker is the identity.
    [row] = hub.json("status", str(repo))["sessions"]
    detail = hub.json("sessions", "get", row["sessionId"])
    assert detail["metadata"]["reconciler"]["name"] == "old-name"

    out_dir = tmp_path / "exported"
    hub.ok("export", "--project", project, "--out", str(out_dir))
    assert sorted(p.name for p in out_dir.glob("*.yaml")) == ["new-name.yaml", "project.yaml"]
    text = (out_dir / "new-name.yaml").read_text()
    assert "name: new-name\n" in text and "old-name" not in text
    code, out, _ = hub.run("plan", str(out_dir), "--detailed-exitcode")
    assert code == 0, out


BAD = {
    "claimed twice": (
        _session("a", extra="previously: [old]\n"),
        _session("b", extra="previously: [x, old]\n"),
        "sessions.yaml:13:17: previously: 'old' is also claimed by 'a' (sessions.yaml:1); "
        "one old name renames one session",
    ),
    "declared": (
        _session("a", extra="previously: [b]\n"),
        _session("b"),
        "sessions.yaml:4:14: previously: 'b' is declared as a session (sessions.yaml:10); "
        "'a' cannot be renamed from it",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_renames_are_located_errors(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, expected = BAD[case]
    repo = write_manifests(tmp_path / "m", "p", first, second)
    capsys.readouterr()
    assert run(["validate", str(repo)]) == 65
    err = capsys.readouterr().err
    assert expected in err.replace(str(repo) + "/", ""), err


def test_bad_renames_send_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second, _ = BAD["declared"]
    repo = write_manifests(tmp_path / "m", "p", first, second)
    db = tmp_path / "hub.sqlite3"
    assert run(["--api-url", "local", "--local-db", str(db), "plan", str(repo)]) == 65
    assert not db.exists()


def test_previously_must_hold_session_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = write_manifests(tmp_path / "m", "p", _session("a", extra="previously: [Bad_Name, ok]\n"))
    capsys.readouterr()
    assert run(["validate", str(repo), "--format", "json"]) == 65
    [error] = json.loads(capsys.readouterr().out)["errors"]
    assert (error["line"], error["column"]) == (4, 14)
    assert error["message"].startswith("previously[0]: 'Bad_Name' does not match")


# -- renaming the Project ----------------------------------------------------------------


def _project_doc(name: str, extra: str = "") -> str:
    return f"apiVersion: reconciler/v1\nkind: Project\nname: {name}\n{extra}"


def test_renaming_the_project_without_previously_plans_creates_with_the_hint(
    hub: CliHub, tmp_path: Path
) -> None:
    old, repo = _applied(hub, tmp_path, _session("reviewer"), _session("triage", "Triage"))
    new = unique("p")
    write_manifests(repo, new, _session("reviewer"), _session("triage", "Triage"))
    code, out, _ = hub.run("plan", str(repo), "--detailed-exitcode")
    assert code == 2
    reason = (
        f"declared, not on the hub; managed under project {old} (renamed the project? "
        f"previously: [{old}] on the Project re-tags its sessions instead)"
    )
    assert f"  + reviewer: create ({reason})" in out, out
    [action, _] = hub.json("plan", str(repo))["actions"]
    assert (action["kind"], action["reason"]) == ("create", reason)
    assert "Plan: 2 to create, 0 to update" in out


def test_previously_on_the_project_retags_its_sessions_in_place(
    hub: CliHub, tmp_path: Path
) -> None:
    old, repo = _applied(hub, tmp_path, _session("reviewer"), _session("triage", "Triage"))
    before = {r["name"]: r["sessionId"] for r in hub.json("status", str(repo))["sessions"]}
    records = {
        name: next(t for t in _tags(hub, sid) if t.startswith(f"reconciler:applied:{old}="))
        for name, sid in before.items()
    }
    new = unique("p")
    write_manifests(repo, new, _session("reviewer"), _session("triage", "Triage"))
    (repo / "project.yaml").write_text(_project_doc(new, f"previously: [{old}]\n"))

    status = hub.json("status", str(repo))["sessions"]
    # The rename is the manifests' change, not the hub's.
    assert {r["name"]: (r["sessionId"], r["sync"]) for r in status} == {
        name: (sid, "pending") for name, sid in before.items()
    }
    code, out, _ = hub.run("plan", str(repo), "--detailed-exitcode")
    assert code == 2
    assert f"  ~ reviewer [{before['reviewer']}]: update (project renamed from {old})" in out
    assert "Plan: 0 to create, 2 to update, 0 to replace, 0 to resume, 0 to archive" in out

    hub.ok("apply", str(repo), "--yes")
    for name, session_id in before.items():
        tags = _tags(hub, session_id)
        markers = [t for t in tags if t.startswith("reconciler:") and "applied:" not in t]
        assert len(markers) == 1 and markers[0].startswith(f"reconciler:{new}/{name}@")
        # The last-applied record moved with the marker: same digests, the new name.
        moved = records[name].replace(f"applied:{old}=", f"applied:{new}=")
        assert [t for t in tags if t.startswith("reconciler:applied:")] == [moved]
    assert hub.run("plan", str(repo), "--detailed-exitcode")[0] == 0
    # Once applied, `previously` can go: the sessions carry the new name.
    (repo / "project.yaml").write_text(_project_doc(new))
    assert hub.run("plan", str(repo), "--detailed-exitcode")[0] == 0


def test_a_project_is_not_its_own_old_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = write_manifests(tmp_path / "m", "p", _session("a"))
    (repo / "project.yaml").write_text(_project_doc("p", "previously: [old, p]\n"))
    capsys.readouterr()
    assert run(["validate", str(repo), "--format", "json"]) == 65
    [error] = json.loads(capsys.readouterr().out)["errors"]
    assert (error["file"], error["line"]) == (str(repo / "project.yaml"), 4)
    assert "a project is not its own old name" in error["message"]
