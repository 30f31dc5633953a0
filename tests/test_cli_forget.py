"""`reconciler forget NAME`: the marker goes, nothing else; refused while declared."""

from __future__ import annotations

from clihub import CliHub, unique
from cliproject import (  # noqa: F401 - fixtures
    Folder,
    apply_all,
    cli_hub_fixture,
    folder_fixture,
)


def _session(hub: CliHub, session_id: str) -> dict[str, object]:
    got: dict[str, object] = hub.json("sessions", "get", session_id)
    return got


def test_forget_removes_only_the_marker(cli_hub: CliHub, folder: Folder) -> None:
    ids = apply_all(cli_hub, folder)
    before = _session(cli_hub, ids["alpha"])
    folder.remove("alpha")
    code, out, err = cli_hub.run("forget", "alpha", folder.path, "--yes")
    assert code == 0, err
    assert f"  ~ alpha [{ids['alpha']}]: update (forget: marker removed, no longer managed)" in out
    assert "Plan: 0 to create, 1 to update, 0 to replace" in out
    # Its header names where it applies, as plan's and apply's do.
    assert out.splitlines()[0] == cli_hub.run("plan", folder.path)[1].splitlines()[0]
    assert ", endpoint " in out.splitlines()[0]
    after = _session(cli_hub, ids["alpha"])
    assert after["tags"] == ["team-a", "backend"]
    unchanged = ("status", "label", "task", "visibility", "defaultAgent", "skills")
    assert {k: after.get(k) for k in unchanged} == {k: before.get(k) for k in unchanged}
    # No longer managed: prune (archive) leaves it alone, and there is nothing to forget.
    code, out, _ = cli_hub.run("plan", folder.path, "--detailed-exitcode")
    assert (code, out.splitlines()[-1]) == (
        0,
        "No changes. The hub matches the manifests (2 managed sessions).",
    )
    code, _, err = cli_hub.run("forget", "alpha", folder.path, "--yes")
    assert code == 64
    assert err == "error: forget alpha: no session of that name is declared or managed\n"


def test_forget_refuses_a_declared_session_unless_forced(cli_hub: CliHub, folder: Folder) -> None:
    ids = apply_all(cli_hub, folder)
    code, out, err = cli_hub.run("forget", "beta", folder.path, "--yes")
    assert (code, out) == (3, "")
    assert err == (
        f"error: refused by stillDeclared: the session is still declared at {folder.root}"
        "/beta.yaml:1, so the next plan would create it again (remove it from the manifests "
        "first, or declare it `state: forgotten`): beta (use --force to override)\n"
    )
    assert f"reconciler:{folder.project}/beta@" in str(_session(cli_hub, ids["beta"])["tags"])

    code, _, err = cli_hub.run("forget", "beta", folder.path, "--yes", "--force")
    assert code == 0, err
    assert _session(cli_hub, ids["beta"])["tags"] == ["team-b"]
    code, out, _ = cli_hub.run("plan", folder.path)
    assert "  + beta: create (declared, not on the hub)" in out


def test_forget_finds_a_session_tagged_under_the_project_s_old_name(
    cli_hub: CliHub, folder: Folder
) -> None:
    # Applied under the old name; the Project then says `previously: [old]`. The plan
    # owns the session (it would re-tag it), so forget must find it and take the old
    # marker and last-applied record off, not report "no changes" and leave it managed.
    ids = apply_all(cli_hub, folder)
    folder.project, formerly = unique("new-"), folder.project
    folder.write_project()
    with open(folder.root / "project.yaml", "a", encoding="utf-8") as project:
        project.write(f"previously: [{formerly}]\n")
    folder.remove("alpha")
    code, out, err = cli_hub.run("forget", "alpha", folder.path, "--yes")
    assert code == 0, err
    assert f"  ~ alpha [{ids['alpha']}]: update (forget: marker removed, no longer managed)" in out
    assert _session(cli_hub, ids["alpha"])["tags"] == ["team-a", "backend"]


def test_forget_bad_input(cli_hub: CliHub, folder: Folder) -> None:
    apply_all(cli_hub, folder)
    folder.remove("gamma")
    code, out, err = cli_hub.run("forget", "gama", folder.path, "--yes")
    assert (code, out) == (64, "")
    assert err == (
        "error: forget gama: no session of that name is declared or managed; did you mean gamma?\n"
    )
    # No terminal to ask on, and no --yes: nothing changes.
    code, _, err = cli_hub.run("forget", "gamma", folder.path)
    assert code == 64
    assert "pass --yes" in err
    broken = folder.root / "broken.yaml"
    broken.write_text("apiVersion: reconciler/v1\nkind: Session\nname: Bad Name\n")
    code, _, err = cli_hub.run("forget", "gamma", folder.path, "--yes")
    assert code == 65
    assert f"{broken}:3:7" in err
    broken.unlink()
    report = cli_hub.json("forget", "gamma", folder.path, "--yes")
    assert report["summary"]["succeeded"] == 1


def test_forget_of_a_declared_name_with_no_session_changes_nothing(
    cli_hub: CliHub, folder: Folder
) -> None:
    code, out, err = cli_hub.run("forget", "alpha", folder.path, "--yes")
    assert code == 0, err
    assert out.splitlines()[-1] == "No changes. The hub matches the manifests (0 managed sessions)."


def test_state_forgotten_lets_go_through_the_manifests(cli_hub: CliHub, folder: Folder) -> None:
    ids = apply_all(cli_hub, folder)
    before = _session(cli_hub, ids["alpha"])
    folder.write("alpha", "task: Keep the alpha service green\nstate: forgotten\n")
    code, out, err = cli_hub.run("apply", folder.path, "--yes")
    assert code == 0, err
    assert (
        f"  ~ alpha [{ids['alpha']}]: update (declared state: forgotten: marker removed, "
        "no longer managed)" in out
    )
    after = _session(cli_hub, ids["alpha"])
    assert after["tags"] == ["team-a", "backend"]
    assert (after["status"], after["label"]) == (before["status"], before["label"])
    # Nothing to do now, with the document or without it.
    code, out, _ = cli_hub.run("plan", folder.path, "--detailed-exitcode")
    assert code == 0, out
    status = cli_hub.json("status", folder.path)
    assert {"name": "alpha", "sync": "in-sync"}.items() <= next(
        r for r in status["sessions"] if r["name"] == "alpha"
    ).items()
    folder.remove("alpha")
    code, out, _ = cli_hub.run("plan", folder.path, "--detailed-exitcode")
    assert code == 0, out


def test_forget_of_a_renamed_session_s_old_name_says_the_name_it_has_now(
    cli_hub: CliHub, folder: Folder
) -> None:
    """Renamed (`previously: [alpha]`), the session is managed as alpha2 though its marker
    still says alpha: forget alpha is told so, as --target alpha is, not that nothing of
    that name is managed."""
    ids = apply_all(cli_hub, folder)
    text = (folder.root / "alpha.yaml").read_text()
    folder.remove("alpha")
    renamed = text.replace("name: alpha\n", "name: alpha2\npreviously: [alpha]\n")
    (folder.root / "alpha2.yaml").write_text(renamed)
    code, out, err = cli_hub.run("forget", "alpha", folder.path, "--yes")
    assert (code, out) == (64, "")
    assert err == (
        "error: forget alpha: renamed to alpha2 (whose previously names alpha), its session "
        "is planned as alpha2: use forget alpha2\n"
    )
    assert f"reconciler:{folder.project}/alpha@" in str(_session(cli_hub, ids["alpha"])["tags"])
