"""What plan and apply cover besides the manifests' plan: `--replace NAME`,
`--selector tag=VALUE` and `plan --destroy`, through the CLI with the safety rules."""

from __future__ import annotations

import json
from pathlib import Path

from clihub import CliHub
from cliproject import (  # noqa: F401 - fixtures
    Folder,
    apply_all,
    cli_hub_fixture,
    folder_fixture,
)

LOOP = """\
    task: Watch the gamma queue
    label: Gamma
    tags: [team-a]
    workflowMode: loop
    loop: {goal: Queue empty, maxIterations: 5, autoContinue: true, allowDetached: true}
    """


def _status(hub: CliHub, session_id: str) -> str:
    return str(hub.json("sessions", "get", session_id)["status"])


# --replace


def test_replace_forces_one_replacement(cli_hub: CliHub, folder: Folder) -> None:
    ids = apply_all(cli_hub, folder)
    code, out, err = cli_hub.run("plan", folder.path, "--replace", "alpha")
    assert code == 0, err
    assert out.splitlines()[2:] == [
        f"-/+ alpha [{ids['alpha']}]: replace, then archive the old session "
        "(replacement requested (--replace))",
        "",
        "Plan: 0 to create, 0 to update, 1 to replace, 0 to resume, 0 to archive, 0 to delete.",
    ]
    new = apply_all(cli_hub, folder, "--replace", "alpha")
    assert new["alpha"] != ids["alpha"]
    assert (_status(cli_hub, ids["alpha"]), _status(cli_hub, new["alpha"])) == (
        "archived",
        "active",
    )
    code, out, _ = cli_hub.run("plan", folder.path, "--detailed-exitcode")
    assert (code, out.splitlines()[-1][:10]) == (0, "No changes")


def test_replace_keeps_every_safety_rule(cli_hub: CliHub, folder: Folder) -> None:
    folder.write("beta", "task: Review beta pull requests\n", "{preventDestroy: true}")
    folder.write("gamma", LOOP)
    ids = apply_all(cli_hub, folder)
    code, out, err = cli_hub.run("plan", folder.path, "--replace", "beta", "--force")
    assert code == 3
    assert "-/+ beta" in out  # the refused plan is still shown
    assert err.startswith("error: refused by preventDestroy: ")
    assert f"beta ({ids['beta']}) (--force cannot lift it)" in err
    # A running loop is live: protectLive refuses, --force lifts it.
    code, _, err = cli_hub.run("apply", folder.path, "--replace", "gamma", "--yes")
    assert code == 3
    assert "refused by protectLive" in err and _status(cli_hub, ids["gamma"]) == "active"
    new = apply_all(cli_hub, folder, "--replace", "gamma", "--force")
    assert new["gamma"] != ids["gamma"]


def test_replace_bad_names(cli_hub: CliHub, folder: Folder) -> None:
    folder.write("beta", "task: Review beta pull requests\nstate: archived\n")
    code, out, err = cli_hub.run("plan", folder.path, "--replace", "alpah", "--replace", "beta")
    assert (code, out) == (64, "")
    assert err == (
        "error: --replace alpah: no session of that name is declared active; did you mean "
        "alpha?\nerror: --replace beta: no session of that name is declared active\n"
    )


# --selector


def test_selector_narrows_like_a_target(cli_hub: CliHub, folder: Folder) -> None:
    ids = apply_all(cli_hub, folder)
    for name in ("alpha", "beta", "gamma"):
        text = (folder.root / f"{name}.yaml").read_text()
        (folder.root / f"{name}.yaml").write_text(text.replace("label: ", "label: New "))
    code, out, err = cli_hub.run("plan", folder.path, "--selector", "tag=team-a")
    assert code == 0, err
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("  ~")] == [
        f"  ~ alpha [{ids['alpha']}]: update (manifest: label)",
        f"  ~ gamma [{ids['gamma']}]: update (manifest: label)",
    ]
    assert lines[-1] == "1 change outside the target not shown."
    # Repeated selectors and targets add up.
    code, out, _ = cli_hub.run("plan", folder.path, "--selector", "tag=backend", "--target", "beta")
    assert "Plan: 0 to create, 2 to update" in out
    report = cli_hub.json("apply", folder.path, "--selector", "tag=team-b", "--yes")
    assert [(r["name"], r["outcome"]) for r in report["results"]] == [("beta", "succeeded")]
    code, out, _ = cli_hub.run("status", folder.path, "--selector", "tag=team-b")
    # The header, a blank line, the table's head, its rows, the summary.
    assert [line.split()[0] for line in out.splitlines()[3:-1]] == ["beta"]


def test_selector_bad_input(cli_hub: CliHub, folder: Folder) -> None:
    apply_all(cli_hub, folder)
    cases = {
        "tag=team-c": "--selector tag=team-c: no declared session carries that tag; "
        "did you mean tag=team-a or tag=team-b?",
        "tag=zzz": "--selector tag=zzz: no declared session carries that tag",
        "tags=team-a": "--selector tags=team-a: only tag=VALUE selects sessions; "
        "did you mean tag=team-a?",
        "team-a": "--selector team-a: expected tag=VALUE",
    }
    extra = {"plan": (), "apply": ("--yes",), "status": ()}
    for given, message in cases.items():
        for command, flags in extra.items():
            code, out, err = cli_hub.run(command, folder.path, "--selector", given, *flags)
            assert (code, out, err) == (64, "", f"error: {message}\n"), (command, given)


# plan --destroy


def test_destroy_is_refused_unless_forced(cli_hub: CliHub, folder: Folder, tmp_path: Path) -> None:
    ids = apply_all(cli_hub, folder)
    code, out, err = cli_hub.run("plan", folder.path, "--destroy")
    assert code == 3
    assert [line for line in out.splitlines() if line.startswith("  -")] == [
        f"  - {name} [{ids[name]}]: archive (plan --destroy: retiring the project)"
        for name in ("alpha", "beta", "gamma")
    ]
    assert err.startswith("error: refused by removeAll: the plan would remove every managed")
    saved = tmp_path / "destroy.json"
    code, _, err = cli_hub.run("plan", folder.path, "--destroy", "--force", "--out", str(saved))
    assert code == 0, err
    # Its hint is the whole command, --force (never recorded) included.
    assert (
        f"apply it with `{cli_hub.invocation} apply --plan {saved} {folder.path} --destroy --force "
        "--expect-checksum sha256:"
    ) in err
    # The saved plan is re-checked by apply: --destroy and --force again, or refused.
    code, _, err = cli_hub.run("apply", "--plan", str(saved), folder.path, "--yes", "--force")
    assert code == 4 and f"it was made from {folder.path} --destroy, and this apply" in err
    code, _, err = cli_hub.run("apply", "--plan", str(saved), folder.path, "--yes", "--destroy")
    assert code == 3 and "removeAll" in err
    assert {_status(cli_hub, i) for i in ids.values()} == {"active"}
    code, _, err = cli_hub.run(
        "apply", "--plan", str(saved), folder.path, "--yes", "--destroy", "--force"
    )
    assert code == 0, err
    assert {_status(cli_hub, i) for i in ids.values()} == {"archived"}
    # Nothing left to retire.
    code, out, _ = cli_hub.run("plan", folder.path, "--destroy", "--detailed-exitcode")
    assert (code, out.splitlines()[-1]) == (
        0,
        "No changes. The hub matches the manifests (0 managed sessions).",
    )


def test_destroy_keeps_prevent_destroy_and_prune(cli_hub: CliHub, folder: Folder) -> None:
    folder.write("beta", "task: Review beta pull requests\n", "{preventDestroy: true}")
    folder.write_project("{prune: delete}")
    ids = apply_all(cli_hub, folder)
    code, _, err = cli_hub.run("apply", folder.path, "--destroy", "--force", "--yes")
    assert code == 3
    assert (
        "refused by preventDestroy: the plan would archive, delete or replace a protected "
        f"session: beta ({ids['beta']})" in err
    )
    # Narrowed by --target, one session is not every session: no --force needed.
    code, out, err = cli_hub.run("apply", folder.path, "--destroy", "--target", "alpha", "--yes")
    assert code == 0, err
    assert f"  - alpha [{ids['alpha']}]: delete (plan --destroy: retiring the project)" in out
    code, _, _ = cli_hub.run("sessions", "get", ids["alpha"])
    assert code == 1


def test_a_protected_session_stays_protected_when_its_document_goes(
    cli_hub: CliHub, folder: Folder
) -> None:
    # Deleting the file (by mistake, in a merge) must not archive what preventDestroy
    # guards: the session's last apply recorded the protection in a tag.
    folder.write("beta", "task: Review beta pull requests\n", "{preventDestroy: true}")
    ids = apply_all(cli_hub, folder)
    tags = cli_hub.json("sessions", "get", ids["beta"])["tags"]
    assert f"reconciler:protected:{folder.project}" in tags
    folder.remove("beta")
    for flags in ([], ["--force"]):
        code, out, err = cli_hub.run("apply", folder.path, "--yes", *flags)
        assert code == 3, err
        assert f"  - beta [{ids['beta']}]: archive (no longer declared)" in out  # shown
        assert err.startswith(
            "error: refused by preventDestroy: the plan would archive, delete or replace a "
            "protected session (one no longer declared keeps the preventDestroy its last "
            "apply recorded: declare it again without preventDestroy, or forget it): "
            f"beta ({ids['beta']}) (--force cannot lift it)"
        )
    # With every document gone, --destroy and --force cannot lift it either.
    for name in ("alpha", "gamma"):
        folder.remove(name)
    code, _, err = cli_hub.run("apply", folder.path, "--destroy", "--force", "--yes")
    assert code == 3 and "refused by preventDestroy" in err
    assert _status(cli_hub, ids["beta"]) == "active"
    # The way out: declare it unprotected and apply (the tag goes), then remove it.
    folder.write("beta", "task: Review beta pull requests\n", "{preventDestroy: false}")
    code, out, err = cli_hub.run("apply", folder.path, "--yes", "--force")
    assert code == 0, err
    assert f"reconciler:protected:{folder.project}" not in str(
        cli_hub.json("sessions", "get", ids["beta"])["tags"]
    )
    folder.remove("beta")
    code, out, err = cli_hub.run("apply", folder.path, "--yes", "--force")
    assert code == 0, err
    assert _status(cli_hub, ids["beta"]) == "archived"


def test_a_session_protected_before_the_tag_existed_stays_protected(
    cli_hub: CliHub, folder: Folder, tmp_path: Path
) -> None:
    # As an earlier version left it: the protection only in the declaration recorded at
    # create (metadata), no protection tag, a last-applied record without the note.
    folder.write("beta", "task: Review beta pull requests\n", "{preventDestroy: true}")
    ids = apply_all(cli_hub, folder)
    beta = cli_hub.json("sessions", "get", ids["beta"])
    old = [
        t.replace(",preventDestroy.1", "")
        for t in beta["tags"]
        if not t.startswith("reconciler:protected:")
    ]
    body = tmp_path / "legacy.json"
    body.write_text(
        json.dumps(
            {
                "task": "Review beta pull requests",
                "label": "Legacy",
                "tags": [t.replace("/beta@", "/legacy@") for t in old],
                "metadata": beta["metadata"],
            }
        )
    )
    legacy = cli_hub.json("sessions", "create", "--from-json", str(body))["sessionId"]
    code, out, err = cli_hub.run("plan", folder.path)
    assert code == 3, out
    assert f"  - legacy [{legacy}]: archive (no longer declared)" in out
    assert "refused by preventDestroy" in err and f"legacy ({legacy})" in err


def test_a_saved_plan_is_applied_with_what_it_was_made_from(
    cli_hub: CliHub, folder: Folder, tmp_path: Path
) -> None:
    """The apply gives again the PATHs and flags the plan was made from: the file's own
    record of them is checked against the apply's, never trusted alone (anyone who can
    edit it can make its checksum again). Its scope flags may be left to the file (they
    only narrow the plan), or given: then the same."""
    saved, targeted = tmp_path / "plan.json", tmp_path / "alpha.json"
    cli_hub.ok("plan", folder.path, "--out", str(saved))
    cli_hub.ok("plan", folder.path, "--target", "alpha", "--out", str(targeted))
    for plan, flags, given in (
        (saved, ["--selector", "tag=team-a"], f"{folder.path} --selector tag=team-a"),
        (saved, ["--target", "alpha"], f"{folder.path} --target alpha"),
        (saved, ["--replace", "alpha"], f"{folder.path} --replace alpha"),
        (saved, ["--destroy"], f"{folder.path} --destroy"),
        (targeted, ["--target", "beta"], f"{folder.path} --target beta"),
    ):
        code, out, err = cli_hub.run("apply", "--plan", str(plan), folder.path, "--yes", *flags)
        assert (code, out) == (4, ""), flags
        assert f", and this apply gives {given}: a saved plan applies only" in err
    code, out, err = cli_hub.run("apply", "--plan", str(saved), "--yes")  # no PATH: "."
    assert code == 4 and f"it was made from {folder.path}, and this apply gives .:" in err
    code, _, err = cli_hub.run(
        "apply", "--plan", str(targeted), folder.path, "--target", "alpha", "--yes"
    )
    assert code == 0, err
