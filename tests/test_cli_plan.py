"""`reconciler plan` end to end against the embedded local hub (a fixture directory)."""

from __future__ import annotations

import asyncio
import gc
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from clihub import CliHub, hub_fixture, invoke, unique, write_manifests  # noqa: F401 - fixtures
from jsonschema import Draft202012Validator

from reconciler import gctune, planner
from reconciler.connect import open_client, resolve_endpoint
from reconciler.manifest import envref
from reconciler.pipeline import build_plan
from reconciler.planfile import plan_schema, read_plan
from reconciler.settings import GlobalOptions

PROJECT = """\
apiVersion: reconciler/v1
kind: Project
name: demo
plainEnv: [GAMMA_LABEL, BETA_LABEL]  # not secret: may be referenced in a label
defaults:
  visibility: organization
policy: {prune: archive, protectLive: true}
"""

SESSIONS = {
    "alpha": """\
apiVersion: reconciler/v1
kind: Session
name: alpha
spec:
  task: Keep the alpha service green
  label: Alpha
  tags: [demo, alpha]
  env: {TOKEN: "${env:ALPHA_TOKEN}"}
""",
    "beta": """\
apiVersion: reconciler/v1
kind: Session
name: beta
spec:
  task: Review beta pull requests
  label: Beta
  env: {API_KEY: "${env:BETA_SECRET}"}
""",
    "gamma": """\
apiVersion: reconciler/v1
kind: Session
name: gamma
spec:
  task: Answer gamma questions
  label: "${env:GAMMA_LABEL:-Gamma}"
""",
}

CANARY_SECRET = "canary-secret-5d1c0e"
CANARY_TOKEN = "canary-token-a83f21"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "manifests"
    root.mkdir()
    (root / "project.yaml").write_text(PROJECT)
    for name, text in SESSIONS.items():
        (root / f"{name}.yaml").write_text(text)
    return root


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "hub" / "hub.sqlite3"


def reconciler(capsys: pytest.CaptureFixture[str], db: Path, *args: str) -> tuple[int, str, str]:
    return invoke(capsys, "--api-url", "local", "--local-db", str(db), *args)


def opts(db: Path, **kw: Any) -> GlobalOptions:
    return GlobalOptions(api_url="local", local_db=str(db), environ=kw)


async def seed(db: Path, repo: Path, environ: dict[str, str]) -> dict[str, str]:
    """Create every planned session on the hub as apply would; name -> session id."""
    options = opts(db, **environ)
    endpoint = resolve_endpoint(options)
    async with open_client(endpoint) as client:
        context = await build_plan(options, [str(repo)], endpoint=endpoint, client=client)
        ids = {}
        for action in context.plan.actions:
            assert action.kind == "create" and action.body is not None
            created = await client.create_session(envref.resolve(action.body, environ))
            ids[action.name] = created["sessionId"]
        return ids


async def count_requests(db: Path, repo: Path) -> int:
    endpoint = resolve_endpoint(opts(db))
    async with open_client(endpoint) as client:
        await build_plan(opts(db), [str(repo)], endpoint=endpoint, client=client)
        return client.request_count


def anonymise(text: str, ids: dict[str, str]) -> str:
    for name, session_id in ids.items():
        text = text.replace(session_id, f"<{name}>")
    return text


async def test_first_plan_creates_everything_with_one_list_request(repo: Path, db: Path) -> None:
    endpoint = resolve_endpoint(opts(db))
    async with open_client(endpoint) as client:
        context = await build_plan(opts(db), [str(repo)], endpoint=endpoint, client=client)
        assert client.request_count == 1
    assert context.requests == 1
    assert context.plan.summary() == (
        "Plan: 3 to create, 0 to update, 0 to replace, 0 to resume, 0 to archive, 0 to delete."
    )


def test_end_to_end(
    repo: Path,
    db: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secrets = {"ALPHA_TOKEN": CANARY_SECRET, "BETA_SECRET": CANARY_SECRET + "-beta"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    ids = asyncio.run(seed(db, repo, secrets))

    code, out, _ = reconciler(capsys, db, "plan", str(repo), "--detailed-exitcode")
    assert (code, out.splitlines()[-1]) == (
        0,
        "No changes. The hub matches the manifests (3 managed sessions).",
    )

    # Drift: alpha's label and tags; beta's task (create-only); gamma no longer declared.
    (repo / "alpha.yaml").write_text(
        SESSIONS["alpha"]
        .replace("label: Alpha", "label: Alpha service")
        .replace("[demo, alpha]", "[demo, service]")
    )
    (repo / "beta.yaml").write_text(SESSIONS["beta"].replace("Review beta", "Review every beta"))
    (repo / "gamma.yaml").unlink()

    # One list page plus the detail of the one session being replaced.
    assert asyncio.run(count_requests(db, repo)) == 2

    code, out, err = reconciler(capsys, db, "plan", str(repo), "--detailed-exitcode")
    assert code == 2, err
    assert anonymise(out, ids) == textwrap.dedent(
        f"""\
        Project demo, org org_local, endpoint local ({db})

          ~ alpha [<alpha>]: update (manifest: label, tags)
              label: "Alpha" -> "Alpha service"
              tags: + service, - alpha
        -/+ beta [<beta>]: replace, then archive the old session (create-only fields changed: task)
              task: "Review beta pull requests" -> "Review every beta pull requests"
          - gamma [<gamma>]: archive (no longer declared)

        Plan: 0 to create, 1 to update, 1 to replace, 0 to resume, 1 to archive, 0 to delete.
        """
    )

    # JSON on stdout follows the schema.
    code, out, _ = reconciler(capsys, db, "plan", str(repo), "--format", "json")
    document = json.loads(out)
    Draft202012Validator(plan_schema()).validate(document)
    assert [a["kind"] for a in document["actions"]] == ["update", "replace", "archive"]

    # Markdown, also appended to the GitHub step summary.
    summary = tmp_path / "step-summary.md"
    summary.write_text("previous step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, _ = reconciler(capsys, db, "plan", str(repo), "--format", "markdown")
    assert out.startswith("### reconciler plan: `demo`")
    assert summary.read_text() == "previous step\n" + out + "\n"
    # A summary file that cannot be written costs a warning, never the plan.
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "missing" / "summary.md"))
    code, again, err = reconciler(capsys, db, "plan", str(repo), "--format", "markdown")
    assert (code, again) == (0, out)
    assert err == (
        "warning: could not add the plan to GITHUB_STEP_SUMMARY "
        f"({tmp_path / 'missing' / 'summary.md'}): No such file or directory\n"
    )
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")

    # Saved plan: no secret value, the token neither; checksum verified on read.
    monkeypatch.setenv("AGENTUITY_SDK_KEY", CANARY_TOKEN)
    saved = tmp_path / "plan.json"
    code, _, err = reconciler(capsys, db, "plan", str(repo), "--out", str(saved))
    assert code == 0, err
    text = saved.read_text()
    assert CANARY_SECRET not in text and CANARY_TOKEN not in text
    assert '"API_KEY": "${env:BETA_SECRET}"' in text
    loaded = read_plan(saved)
    assert loaded.endpoint == f"local ({db})"
    assert [a.precondition != "" for a in loaded.actions] == [True, True, True]

    # --target / --exclude narrow by name.
    # A name no longer declared but still managed is a valid target; a targeted plan
    # says how many changes it left out, in every format.
    code, out, _ = reconciler(capsys, db, "plan", str(repo), "--target", "gamma")
    assert out.splitlines()[-2:] == [
        "Plan: 0 to create, 0 to update, 0 to replace, 0 to resume, 1 to archive, 0 to delete.",
        "2 changes outside the target not shown.",
    ]
    code, out, _ = reconciler(
        capsys, db, "plan", str(repo), "--format", "json", "--target", "gamma"
    )
    assert json.loads(out)["leftOut"] == 2
    code, out, _ = reconciler(
        capsys, db, "plan", str(repo), "--format", "markdown", "--target", "beta"
    )
    assert "\n2 changes outside the target not shown.\n" in out
    code, out, _ = reconciler(
        capsys, db, "plan", str(repo), "--exclude", "gamma", "--exclude", "beta"
    )
    assert out.splitlines()[-2].startswith("Plan: 0 to create, 1 to update, 0 to replace")


def test_unknown_target_or_exclude_is_a_usage_error_naming_close_names(
    repo: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = reconciler(capsys, db, "plan", str(repo), "--target", "alpah")
    assert (code, out) == (64, "")
    assert (
        "--target alpah: no session of that name is declared or managed; did you mean alpha?" in err
    )
    code, _, err = reconciler(
        capsys,
        db,
        "plan",
        str(repo),
        "--exclude",
        "gamma",
        "--exclude",
        "zzz",
        "--detailed-exitcode",
    )
    assert code == 64 and "--exclude zzz: no session of that name" in err and "did you" not in err
    # apply gets the same check from the library, before it changes anything.
    code, _, err = reconciler(capsys, db, "apply", str(repo), "--yes", "--target", "bet")
    assert code == 64 and "did you mean beta?" in err
    code, out, _ = reconciler(capsys, db, "plan", str(repo))
    assert "Plan: 3 to create" in out


def test_a_target_without_changes_says_what_it_left_out(
    repo: Path, db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {"ALPHA_TOKEN": CANARY_SECRET, "BETA_SECRET": CANARY_SECRET}
    asyncio.run(seed(db, repo, secrets))
    (repo / "beta.yaml").write_text(SESSIONS["beta"].replace("label: Beta", "label: Beta 2"))
    code, out, _ = reconciler(
        capsys, db, "plan", str(repo), "--target", "alpha", "--detailed-exitcode"
    )
    assert code == 0
    assert out.splitlines()[-1] == (
        "No changes within the target. 1 change outside the target not shown."
    )


def test_removing_every_session_is_refused_unless_forced(
    repo: Path, db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = asyncio.run(seed(db, repo, {"ALPHA_TOKEN": "x", "BETA_SECRET": "y"}))
    for name in SESSIONS:
        (repo / f"{name}.yaml").unlink()
    saved = repo.parent / "refused.json"
    code, out, err = reconciler(capsys, db, "plan", str(repo), "--out", str(saved))
    assert code == 3
    assert out.splitlines()[-1].endswith("3 to archive, 0 to delete.")  # shown in full
    assert "refused by removeAll" in err
    for name, session_id in ids.items():
        assert f"{name} ({session_id})" in err
    assert not saved.exists()
    assert f"Not saved to {saved}: a refused plan is never saved." in err
    saved.write_text("an older plan")  # one made before: left, and said so
    code, _, err = reconciler(capsys, db, "plan", str(repo), "--out", str(saved))
    assert code == 3 and saved.read_text() == "an older plan"
    assert "a refused plan is never saved (the file there is left as it was)." in err
    # The Markdown (a pull request comment, the job summary) says it is refused, first.
    summary = repo.parent / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, _ = reconciler(capsys, db, "plan", str(repo), "--format", "markdown")
    assert code == 3
    refused = "**Refused: apply would stop here (1 refusal).**\n\n- `refused by removeAll:"
    assert refused in out and out.index(refused) < out.index("3 to archive")
    assert refused in summary.read_text()
    code, _, err = reconciler(capsys, db, "plan", str(repo), "--force")
    assert code == 0, err


def test_invalid_manifest_exits_65_before_any_request(
    repo: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "beta.yaml").write_text(SESSIONS["beta"] + "  bogusField: 1\n")
    code, out, err = reconciler(capsys, db, "plan", str(repo))
    assert code == 65
    assert "beta.yaml" in err
    assert out == ""
    assert not db.exists()  # the embedded hub was never opened


def test_unset_name_in_a_compared_field_exits_65_before_any_request(
    repo: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "beta.yaml").write_text(
        SESSIONS["beta"].replace("label: Beta", 'label: "${env:BETA_LABEL}"')
    )
    code, _, err = reconciler(capsys, db, "plan", str(repo))
    assert code == 65
    # At the reference, not at the session's first line.
    assert f"BETA_LABEL (used by beta.label at {repo / 'beta.yaml'}:6)" in err
    assert not db.exists()
    # An unset name only under env is apply's concern: plan goes ahead.
    code, _, err = reconciler(capsys, db, "plan", str(repo), "--exclude", "beta")
    assert code == 0, err
    assert "ALPHA_TOKEN" in err  # a warning, not an error


def test_apply_names_an_unset_variable_under_env_at_its_reference(
    repo: Path, db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BETA_SECRET", CANARY_SECRET)
    monkeypatch.delenv("ALPHA_TOKEN", raising=False)
    code, _, err = reconciler(capsys, db, "apply", "--yes", str(repo))
    assert code == 65
    # alpha.yaml's env holds it on line 8, not on the session's first line.
    assert f"ALPHA_TOKEN (used by create alpha at {repo / 'alpha.yaml'}:8)" in err, err
    assert CANARY_SECRET not in err


def test_an_unset_name_the_project_defaults_hold_is_named_where_they_hold_it(
    repo: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = PROJECT.replace("  visibility: organization\n", '  label: "${env:BETA_LABEL}"\n')
    (repo / "project.yaml").write_text(project)
    (repo / "beta.yaml").write_text(SESSIONS["beta"].replace("  label: Beta\n", ""))
    code, _, err = reconciler(capsys, db, "plan", str(repo))
    assert code == 65
    # The label beta inherits: the Project's defaults hold the reference, on line 6.
    assert f"BETA_LABEL (used by beta.label at {repo / 'project.yaml'}:6)" in err
    assert not db.exists()


def test_an_unset_name_is_named_where_it_has_no_default(
    repo: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first reference has a default (it resolves); the one without is on line 11.
    tags = '  tags:\n    - "${env:BETA_LABEL:-none}"\n    - plain\n    - "${env:BETA_LABEL}"\n'
    (repo / "beta.yaml").write_text(SESSIONS["beta"] + tags)
    code, _, err = reconciler(capsys, db, "plan", str(repo))
    assert code == 65
    assert f"BETA_LABEL (used by beta.tags at {repo / 'beta.yaml'}:11)" in err


def test_org_flag_wins_over_the_project(
    repo: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "project.yaml").write_text(
        PROJECT.replace("name: demo\n", "name: demo\norgId: org_project\n")
    )
    code, out, _ = reconciler(
        capsys, db, "plan", str(repo), "--format", "json", "--exclude", "alpha"
    )
    assert json.loads(out)["org"] == "org_project"
    code, out, _ = reconciler(
        capsys, db, "--org", "org_flag", "plan", str(repo), "--format", "json", "--exclude", "alpha"
    )
    assert json.loads(out)["org"] == "org_flag"


def test_commit_recorded_when_manifests_are_in_git(
    repo: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess

    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "m"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    code, out, _ = reconciler(
        capsys, db, "plan", str(repo), "--format", "json", "--exclude", "alpha"
    )
    document = json.loads(out)
    assert document["commit"] == head
    assert {a["body"]["metadata"]["reconciler"]["commit"] for a in document["actions"]} == {head}
    assert re.fullmatch(r"[0-9a-f]{40}", head)


def test_headers_name_the_endpoint_and_the_organisation(hub: CliHub, tmp_path: Path) -> None:
    manifests = write_manifests(
        tmp_path / "m",
        unique("hdr-"),
        "apiVersion: reconciler/v1\nkind: Session\nname: alpha\nspec: {task: t}\n",
    )
    project = manifests.joinpath("project.yaml").read_text().split("name: ")[1].strip()
    if hub.kind == "inprocess":
        endpoint, org, org_words = f"local ({hub.global_args[-1]})", "org_local", "org org_local"
    else:  # a remote hub says nothing of the token's organisation
        endpoint, org, org_words = hub.global_args[-1], None, "the token's organisation"
    header = f"Project {project}, {org_words}, endpoint {endpoint}"
    assert hub.ok("plan", str(manifests)).splitlines()[0] == header
    document = hub.json("plan", str(manifests))
    assert (document["endpoint"], document["org"]) == (endpoint, org)
    code, out, err = hub.run("apply", str(manifests), "--yes")
    assert code == 0, err
    assert out.splitlines()[0] == header
    assert hub.ok("status", str(manifests)).splitlines()[:2] == [header, ""]
    status = hub.json("status", str(manifests))
    assert (status["project"], status["org"], status["endpoint"]) == (project, org, endpoint)


def test_gc_tuning_is_the_commands_not_the_librarys(
    repo: Path, db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, ...]] = []
    make = planner.plan

    def planning(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.get_threshold())
        return make(*args, **kwargs)

    monkeypatch.setattr(planner, "plan", planning)
    before = gc.get_threshold()
    asyncio.run(build_plan(opts(db), [str(repo)], endpoint=resolve_endpoint(opts(db))))
    assert seen == [before]  # an embedder (watch, a benchmark) keeps its own thresholds
    code, _, err = reconciler(capsys, db, "plan", str(repo))
    assert code == 0, err
    assert seen == [before, gctune.BULK_THRESHOLDS]
    assert gc.get_threshold() == before
