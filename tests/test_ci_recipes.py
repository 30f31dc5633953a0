"""The CI recipes and the pre-commit hook use only commands and flags that exist.

Every `reconciler ...` command line of the scripted recipe (GitLab) is extracted and run
against the local hub, in a copy of the example manifests, in the order the pipeline
runs them. The GitHub recipe runs the tool through the action: tests/test_action.py runs
its jobs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from tools import require_tool

from reconciler.cli.main import run

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted((ROOT / "examples" / "ci").glob("*.yml"))
SCRIPTED = [p for p in RECIPES if p.name == "gitlab-ci.yml"]
ACTION_REF = "<owner>/coder-reconciler@<40-hex-commit-sha>"
SECRETS = {"RELEASE_GITHUB_TOKEN": "ghp_example", "NPM_TOKEN": "npm_example"}
_OPERATORS = re.compile(r"^[;&|<>()]+$")
_SEPARATORS = {";", "&&", "||", "|", "then", "do", "{", "(", "else"}


def _jobs(recipe: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The jobs of a GitHub workflow (under `jobs`) or a GitLab pipeline (top level)."""
    yield from (recipe.get("jobs") or {}).values()
    for name, job in recipe.items():
        if isinstance(job, Mapping) and name not in ("variables", "workflow", "jobs"):
            yield job


def _job_scripts(job: Mapping[str, Any]) -> Iterator[str]:
    for step in job.get("steps") or []:
        if "run" in step:
            yield step["run"]
    for key in ("before_script", "script", "after_script"):
        lines = job.get(key) or []
        yield from ([lines] if isinstance(lines, str) else lines)


def _scripts(recipe: Mapping[str, Any]) -> Iterator[str]:
    """Every shell script of a GitHub workflow (steps' `run`) or a GitLab pipeline."""
    for job in _jobs(recipe):
        yield from _job_scripts(job)


def _verb(cmd: list[str]) -> str:
    return next(a for a in cmd if not a.startswith("-"))


def _commands(script: str) -> Iterator[list[str]]:
    """Each `reconciler` invocation in a script, up to the next shell operator."""
    for line in script.replace("\\\n", " ").splitlines():  # continuation lines joined
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        for i, token in enumerate(tokens):
            if token == "reconciler" and (i == 0 or tokens[i - 1] in _SEPARATORS):
                args: list[str] = []
                for arg in tokens[i + 1 :]:
                    if _OPERATORS.match(arg):
                        break
                    args.append(arg)
                yield args


def _variables(recipe: Mapping[str, Any]) -> dict[str, str]:
    found = dict(recipe.get("env") or {})
    found.update(recipe.get("variables") or {})
    return {k: str(v) for k, v in found.items()}


def _expand(arg: str, values: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m["a"] or m["b"]
        assert name in values, f"${name} is not set by the recipe"
        return values[name]

    return re.sub(r"\$(?:\{(?P<a>\w+)\}|(?P<b>\w+))", sub, arg)


def test_there_are_two_recipes() -> None:
    assert [p.name for p in RECIPES] == ["github-actions.yml", "gitlab-ci.yml"]


@pytest.mark.parametrize("recipe_path", SCRIPTED, ids=lambda p: p.name)
def test_every_reconciler_command_runs(
    recipe_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    commands = [cmd for script in _scripts(recipe) for cmd in _commands(script)]
    verbs = [_verb(cmd) for cmd in commands]
    assert {"validate", "plan", "apply", "status"} <= set(verbs)

    workdir = tmp_path / "repo"
    workdir.mkdir()
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        shutil.copy(path, workdir / path.name)
    # A recipe sits in the repository, as it will: hidden files are not manifests.
    shutil.copy(recipe_path, workdir / ".gitlab-ci.yml")
    monkeypatch.chdir(workdir)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    values = {**_variables(recipe), **SECRETS}
    hub = ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3")]
    for cmd in commands:
        args = [*hub, *(_expand(a, values) for a in cmd)]
        code = run(args)
        captured = capsys.readouterr()
        # plan --detailed-exitcode answers 2 when there are changes.
        assert code in (0, 2), f"reconciler {shlex.join(cmd)} -> {code}\n{captured.err}"
        assert "--help" not in cmd


def _applies(job: Mapping[str, Any]) -> bool:
    through_action = any(
        step.get("uses") == ACTION_REF and (step.get("with") or {}).get("command") == "apply"
        for step in job.get("steps") or []
    )
    scripted = any(
        _verb(cmd) == "apply" for script in _job_scripts(job) for cmd in _commands(script)
    )
    return through_action or scripted


def _apply_jobs(recipe: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [job for job in _jobs(recipe) if _applies(job)]


@pytest.mark.parametrize("recipe_path", RECIPES, ids=lambda p: p.name)
def test_recipes_install_from_a_pinned_commit_not_the_package_index(recipe_path: Path) -> None:
    text = recipe_path.read_text(encoding="utf-8")
    assert "coder-reconciler==" not in text
    assert "<40-hex-commit-sha>" in text


@pytest.mark.parametrize("recipe_path", RECIPES, ids=lambda p: p.name)
def test_applies_run_one_at_a_time_per_project(recipe_path: Path) -> None:
    """Two applies of one Project at once race their creates: the recipes queue them in a
    group named after the Project (GitHub `concurrency`, GitLab `resource_group`)."""
    project = yaml.safe_load((ROOT / "examples" / "project.yaml").read_text(encoding="utf-8"))
    recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    [job] = _apply_jobs(recipe)
    if "steps" in job:
        group = job["concurrency"]
        assert group["cancel-in-progress"] is False  # never abandon a running apply
        name = group["group"]
    else:
        name = job["resource_group"]
    assert name == f"reconciler-apply-{project['name']}"


def test_the_pre_commit_hook_runs_validate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["id"] == "reconciler-validate"
    assert (hook["language"], hook["pass_filenames"]) == ("python", False)
    assert re.search(hook["files"], "sessions/a.yaml") and re.search(hook["files"], "b.yml")
    entry = shlex.split(hook["entry"])
    assert entry[0] == "reconciler"
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.chdir(tmp_path)
    # No token, no secrets, no endpoint: validation reads files only.
    assert run([*entry[1:], *hook.get("args", [])]) == 0
    capsys.readouterr()
    (tmp_path / "broken.yaml").write_text("apiVersion: reconciler/v1\nkind: Sesion\n")
    assert run([*entry[1:], *hook.get("args", [])]) == 65


FAKE_CURL = r"""
import json, os, sys, urllib.parse

state_path = os.environ["FAKE_CURL_STATE"]
with open(state_path, encoding="utf-8") as fh:
    state = json.load(fh)
method, headers_file, body, url, i = "GET", None, None, None, 1
args = sys.argv
while i < len(args):
    arg = args[i]
    if arg == "--request":
        method = args[i + 1]; i += 2
    elif arg == "--header":
        assert args[i + 1] == "PRIVATE-TOKEN: note-token", args[i + 1]; i += 2
    elif arg == "--dump-header":
        headers_file = args[i + 1]; i += 2
    elif arg == "--data-urlencode":
        name, _, path = args[i + 1].partition("@")
        with open(path, encoding="utf-8") as fh:
            body = fh.read()
        i += 2
    elif arg.startswith("--"):
        i += 1
    else:
        url = arg; i += 1
parsed = urllib.parse.urlparse(url)
base = "https://gitlab.test/api/v4/projects/5/merge_requests/9/notes"
path = f"{parsed.scheme}://{parsed.netloc}{parsed.path}"
state["calls"].append([method, path])
me = {"id": 77, "username": "project_5_bot_note"}  # the user GITLAB_NOTE_TOKEN stands for
if method == "GET" and path == "https://gitlab.test/api/v4/user":
    print(json.dumps(me))
elif method == "GET":
    assert path == base, path
    page = int(urllib.parse.parse_qs(parsed.query)["page"][0])
    notes = state["notes"][(page - 1) * 2 : page * 2]  # two per page: paging is exercised
    more = page * 2 < len(state["notes"])
    with open(headers_file, "w", encoding="utf-8") as fh:
        next_page = page + 1 if more else ""
        fh.write(f"HTTP/2 200\r\nx-next-page: {next_page}\r\n")
    print(json.dumps(notes))
elif method == "POST":
    assert path == base
    state["notes"].append({"id": 100 + len(state["notes"]), "body": body, "author": me})
elif method == "PUT":
    note_id = int(path.rsplit("/", 1)[1])
    [note] = [n for n in state["notes"] if n["id"] == note_id]
    note["body"] = body
with open(state_path, "w", encoding="utf-8") as fh:
    json.dump(state, fh)
"""


def _post_plan_note(tmp_path: Path, notes: list[dict[str, Any]], plans: list[str]) -> Any:
    """Run the recipe's note script once per plan against a fake curl; its final state."""
    require_tool("jq")
    recipe = yaml.safe_load((ROOT / "examples" / "ci" / "gitlab-ci.yml").read_text())
    [script] = [s for s in recipe["plan"]["script"] if "GITLAB_NOTE_TOKEN" in s]
    (tmp_path / "bin").mkdir()
    curl = tmp_path / "bin" / "curl"
    curl.write_text(f"#!{sys.executable}\n{FAKE_CURL}")
    curl.chmod(0o755)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"notes": notes, "calls": []}))
    env = {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "FAKE_CURL_STATE": str(state),
        "GITLAB_NOTE_TOKEN": "note-token",
        "CI_API_V4_URL": "https://gitlab.test/api/v4",
        "CI_PROJECT_ID": "5",
        "CI_MERGE_REQUEST_IID": "9",
        "MANIFESTS": ".",
    }
    for plan in plans:
        (tmp_path / "plan.md").write_text(plan + "\n")
        subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=tmp_path, env=env, check=True)
    return json.loads(state.read_text())


_PLANS = ["first plan: 2 to create", "second plan: 3 to create"]
_REVIEWER = {"id": 12, "username": "reviewer"}


@pytest.mark.subprocess  # bash runs a Python fake curl
def test_the_gitlab_recipe_keeps_one_merge_request_note(tmp_path: Path) -> None:
    others = [{"id": n, "body": f"a reviewer's note {n}", "author": _REVIEWER} for n in (1, 2, 3)]
    state = _post_plan_note(tmp_path, others, _PLANS)
    notes = state["notes"]
    ours = [n for n in notes if n["body"].startswith("<!-- coder-reconciler plan: . -->")]
    assert len(notes) == 4 and len(ours) == 1
    assert ours[0]["body"].endswith("second plan: 3 to create\n")
    calls = [c[0] for c in state["calls"]]
    assert calls == ["GET", "GET", "GET", "POST", "GET", "GET", "GET", "PUT"]


@pytest.mark.subprocess  # bash runs a Python fake curl
def test_the_gitlab_recipe_edits_only_the_note_its_token_wrote(tmp_path: Path) -> None:
    # A reviewer's note that starts with the recipe's marker comes first: never ours.
    look_alike = {"id": 1, "body": "<!-- coder-reconciler plan: . -->\nLGTM", "author": _REVIEWER}
    state = _post_plan_note(tmp_path, [look_alike], _PLANS)
    first, ours = state["notes"]
    assert first == look_alike
    assert ours["author"]["id"] == 77 and ours["body"].endswith("second plan: 3 to create\n")
    assert [c[0] for c in state["calls"] if c[0] != "GET"] == ["POST", "PUT"]


def _gitlab() -> Any:
    return yaml.safe_load((ROOT / "examples" / "ci" / "gitlab-ci.yml").read_text())


def test_the_gitlab_recipe_checks_drift_on_a_schedule_and_never_applies_then() -> None:
    recipe = _gitlab()
    assert recipe["drift"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    drift_commands = [_verb(c) for s in _job_scripts(recipe["drift"]) for c in _commands(s)]
    assert drift_commands == ["plan"]
    assert any("--detailed-exitcode" in s for s in recipe["drift"]["script"])
    assert recipe["apply"]["rules"][0] == {
        "if": '$CI_PIPELINE_SOURCE == "schedule"',
        "when": "never",
    }


@pytest.mark.subprocess  # bash runs the CLI
@pytest.mark.parametrize("job", ["plan", "drift"])
def test_a_failed_gitlab_plan_puts_the_error_in_its_note(tmp_path: Path, job: str) -> None:
    """The plan job's script up to the note (the drift job's up to its last check): an
    invalid manifest's located error lands in plan.md (what the note and the artifact
    show), not just the exit code."""
    recipe = _gitlab()
    script = [s for s in recipe[job]["script"] if not s.startswith("apt-get")]
    last = next((i for i, s in enumerate(script) if "GITLAB_NOTE_TOKEN" in s), len(script) - 1)
    before_note = script[:last]
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: Bad_Name\nspec: {task: t}\n"
    )
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MANIFESTS": ".",
        "CODER_API_URL": "local",
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", "\n".join(before_note)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr  # the job fails later, after the note
    note = (tmp_path / "plan.md").read_text()
    assert "### reconciler plan failed (exit 65)" in note
    assert "bad.yaml:3:7: name: 'Bad_Name'" in note, note


def test_the_github_recipe_grants_each_job_what_the_action_does_there() -> None:
    # The apply job sets a commit status by default (the action's commit-status input):
    # without `statuses: write` every apply as shipped ended with a warning.
    recipe = yaml.safe_load((ROOT / "examples" / "ci" / "github-actions.yml").read_text())
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["inputs"]["commit-status"]["default"] == "true"
    apply = recipe["jobs"]["apply"]
    step = next(s for s in apply["steps"] if str(s.get("uses", "")).startswith("<owner>"))
    if step.get("with", {}).get("commit-status", "true") == "true":
        assert apply["permissions"].get("statuses") == "write"
    plan = recipe["jobs"]["plan"]
    assert plan["permissions"].get("pull-requests") == "write"  # its comment
