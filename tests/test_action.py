"""The GitHub Action (action.yml) and the GitHub recipe that uses it, run for real.

Each job of examples/ci/github-actions.yml that uses the action runs the action's
steps' scripts with bash, as the runner would (`bash --noprofile --norc -eo pipefail`),
against the embedded hub, in a copy of the example manifests. `${{ }}` expressions are
evaluated from a fake context; an expression of a form the evaluator does not know
fails the test instead of being skipped. `gh` is a fake on PATH that keeps comments and
issues in a JSON file (the scripts' own `jq` filters run for real). The `uses:` steps
(setup-python, the pip cache) and the pip install are not run: they are checked for
their pins and their command.

actionlint checks the recipe with the action as a local action (`uses: ./`), which
also checks the action's metadata and the recipe's inputs against it; shellcheck checks
the action's scripts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from docs_pages import page
from tools import require_tool

from reconciler.cli.main import run
from reconciler.planfile import checksum as checksum_of

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
RECIPE_PATH = ROOT / "examples" / "ci" / "github-actions.yml"
RECIPE = yaml.safe_load(RECIPE_PATH.read_text(encoding="utf-8"))
ACTION_REF = "<owner>/coder-reconciler@<40-hex-commit-sha>"
BOT = "github-actions[bot]"  # who GITHUB_TOKEN writes as (GraphQL's viewer, REST's user.login)
SECRETS = {
    "CODER_API_URL": "local",
    "AGENTUITY_SDK_KEY": "",
    "AGENTUITY_SDK_KEY_READ": "",
    "RELEASE_GITHUB_TOKEN": "ghp_example",
    "NPM_TOKEN": "npm_example",
}
APPLIED_SHA = "0123456789abcdef0123456789abcdef01234567"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_NAME = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*")

FAKE_GH = r"""
import json, os, re, sys

state_path = os.environ["FAKE_GH_STATE"]
with open(state_path, encoding="utf-8") as fh:
    state = json.load(fh)
assert os.environ.get("GH_TOKEN"), "gh needs GH_TOKEN"
args = sys.argv[1:]
assert args and args[0] == "api", args
method, path, body, i = "GET", None, {}, 1
while i < len(args):
    arg = args[i]
    if arg == "--method":
        method = args[i + 1]; i += 2
    elif arg == "--paginate":
        i += 1
    elif arg == "--input":
        with open(args[i + 1], encoding="utf-8") as fh:
            body.update(json.load(fh))
        i += 2
    elif arg == "-f":
        key, value = args[i + 1].split("=", 1); body[key] = value; i += 2
    elif path is None:
        path = arg; i += 1
    else:
        raise SystemExit(f"fake gh: unexpected argument {arg!r}")
state["calls"].append([method, path, body])
repo = os.environ["GITHUB_REPOSITORY"]
route = path.split("?")[0].removeprefix(f"repos/{repo}/")
# The token's identity: what GitHub shows as the author of what this token writes.
author = {"login": state["viewer"], "type": "Bot"}
answer = None
if route == "graphql":
    assert "viewer" in body["query"], body
    answer = {"data": {"viewer": {"login": state["viewer"]}}}
elif m := re.fullmatch(r"issues/(\d+)/comments", route):
    issue = int(m[1])
    if method == "GET":
        answer = [c for c in state["comments"] if c["issue"] == issue]
    else:
        answer = {"id": 1000 + len(state["comments"]), "issue": issue, "body": body["body"]}
        answer["user"] = author
        state["comments"].append(answer)
elif m := re.fullmatch(r"issues/comments/(\d+)", route):
    [answer] = [c for c in state["comments"] if c["id"] == int(m[1])]
    answer.update(body)
elif route == "issues":
    if method == "GET":
        answer = [x for x in state["issues"] if x["state"] == "open"]
    else:
        answer = {"number": 1 + len(state["issues"]), "state": "open", **body, "user": author}
        state["issues"].append(answer)
elif m := re.fullmatch(r"issues/(\d+)", route):
    [answer] = [x for x in state["issues"] if x["number"] == int(m[1])]
    answer.update(body)
elif (m := re.fullmatch(r"statuses/([0-9a-f]{40})", route)) and method == "POST":
    answer = {"sha": m[1], **body}
    state.setdefault("statuses", []).append(answer)
else:
    raise SystemExit(f"fake gh: no route for {method} {path}")
with open(state_path, "w", encoding="utf-8") as fh:
    json.dump(state, fh)
print(json.dumps(answer))
"""


def _lookup(name: str, context: Mapping[str, Any]) -> Any:
    value: Any = context
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise AssertionError(f"${{{{ {name} }}}}: not in the test's context")
        value = value[part]
    return value


def evaluate(text: str, context: Mapping[str, Any]) -> str:
    """``${{ a.b }}`` and ``${{ a.b || c.d }}``: the only forms the action and recipe use."""

    def one(match: re.Match[str]) -> str:
        alternatives = [a.strip() for a in match[1].split("||")]
        assert all(_NAME.fullmatch(a) for a in alternatives), f"unsupported: {match[0]}"
        values = [_lookup(a, context) for a in alternatives]
        return str(next((v for v in values if v), values[-1]))

    return _EXPR.sub(one, text)


@dataclass
class Runner:
    """One job's worth of a GitHub runner: a workspace, a temp dir, a fake gh."""

    workspace: Path
    tmp: Path
    event: str
    pr_number: str = ""
    summary: Path = field(init=False)
    gh_state: Path = field(init=False)

    def __post_init__(self) -> None:
        self.summary = self.tmp / "step-summary.md"
        self.summary.write_text("")
        self.gh_state = self.tmp / "gh-state.json"
        if not self.gh_state.exists():
            state = {"viewer": BOT, "comments": [], "issues": [], "calls": []}
            self.gh_state.write_text(json.dumps(state))
        bin_dir = self.tmp / "bin"
        bin_dir.mkdir(exist_ok=True)
        gh = bin_dir / "gh"
        gh.write_text(f"#!{sys.executable}\n{FAKE_GH}")
        gh.chmod(0o755)

    @property
    def gh(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.gh_state.read_text())
        return state

    def context(self, inputs: Mapping[str, str], steps: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "inputs": inputs,
            "steps": steps,
            "secrets": SECRETS,
            "vars": {"AGENTUITY_ORG_ID": ""},
            "runner": {"temp": str(self.tmp / "runner-temp")},
            "github": {
                "action_path": str(ROOT),
                "token": "ghs_test",
                "event_name": self.event,
                "event": {"pull_request": {"number": self.pr_number}},
                "server_url": "https://github.com",
                "repository": "acme/sessions",
                "run_id": "42",
                "sha": APPLIED_SHA,
            },
        }

    def base_env(self) -> dict[str, str]:
        path = os.pathsep.join([str(self.tmp / "bin"), str(Path(sys.executable).parent)])
        return {
            "PATH": f"{path}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(self.tmp),
            "CI": "true",
            "RUNNER_OS": "Linux",
            "RUNNER_TEMP": str(self.tmp / "runner-temp"),
            "GITHUB_REPOSITORY": "acme/sessions",
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "FAKE_GH_STATE": str(self.gh_state),
        }

    def run_action(self, with_: Mapping[str, Any], env: Mapping[str, str]) -> ActionRun:
        defaults = {k: str(v.get("default", "")) for k, v in ACTION["inputs"].items()}
        inputs = {**defaults, **{k: str(v) for k, v in with_.items()}}
        assert set(inputs) == set(defaults), "the recipe passes an input the action lacks"
        steps: dict[str, Any] = {"python": {"outputs": {"python-version": "3.12"}}}
        (self.tmp / "runner-temp").mkdir(exist_ok=True)
        done = ActionRun()
        for index, step in enumerate(ACTION["runs"]["steps"]):
            if "uses" in step or step["name"] == "Install coder-reconciler":
                continue
            context = self.context(inputs, steps)
            output = self.tmp / f"output-{index}"
            output.write_text("")
            step_env = {k: evaluate(str(v), context) for k, v in (step.get("env") or {}).items()}
            script = self.tmp / f"step-{index}.sh"
            assert "${{" not in step["run"], f"{step['name']}: an expression inside a script"
            script.write_text(step["run"])
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=self.workspace,
                env={**self.base_env(), **env, **step_env, "GITHUB_OUTPUT": str(output)},
                capture_output=True,
                text=True,
                timeout=120,
            )
            done.logs.append(f"## {step['name']} -> {proc.returncode}\n{proc.stdout}{proc.stderr}")
            outputs = dict(
                line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
            )
            if "id" in step:
                steps[step["id"]] = {"outputs": outputs}
            if proc.returncode != 0:
                done.failed_step = step["name"]
                break
        done.outputs = steps.get("reconcile", {}).get("outputs", {})
        return done

    def run_job(
        self,
        name: str,
        dispatch: Mapping[str, str] | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> ActionRun:
        """Run the recipe's job; ``dispatch``: the inputs of a run by hand (empty on other
        events, as GitHub evaluates them); ``extra``: inputs as a workflow would add them
        (an override-policy input set from a label)."""
        job = RECIPE["jobs"][name]
        [step] = [s for s in job["steps"] if s.get("uses") == ACTION_REF]
        triggers = RECIPE.get("on", RECIPE.get(True))  # YAML 1.1 reads `on` as true
        declared = triggers["workflow_dispatch"]["inputs"]
        context = self.context({k: "" for k in declared} | dict(dispatch or {}), {})
        env: dict[str, str] = {}
        for scope in (RECIPE, job, step):  # workflow, job, step: the innermost wins
            env.update({k: evaluate(str(v), context) for k, v in (scope.get("env") or {}).items()})
        with_ = {k: evaluate(str(v), context) for k, v in (step.get("with") or {}).items()}
        return self.run_action({**with_, **(extra or {})}, env)


@dataclass
class ActionRun:
    failed_step: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        return "\n".join(self.logs)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Path]:
    repo = tmp_path / "repo"
    repo.mkdir()
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        shutil.copy(path, repo / path.name)
    (repo / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(RECIPE_PATH, repo / ".github" / "workflows" / "sessions.yml")
    yield repo


def _runner(workspace: Path, event: str, pr: str = "") -> Runner:
    return Runner(workspace, workspace.parent, event, pr)


def _hub(workspace: Path, *args: str) -> Any:
    db = workspace / ".reconciler" / "hub.sqlite3"
    return run(["--api-url", "local", "--local-db", str(db), *args])


@pytest.fixture
def jq() -> str:
    """jq is on every GitHub runner; the action's steps call it."""
    return require_tool("jq")


@pytest.mark.subprocess  # bash runs the CLI (and a Python fake gh)
@pytest.mark.usefixtures("jq")
def test_a_pull_request_gets_one_plan_comment_updated_in_place(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = _runner(workspace, "pull_request", "7")
    first = runner.run_job("plan")
    assert first.failed_step is None, first.log
    assert first.outputs == {"exitcode": "2", "changes": "true"}
    # The tool writes the summary; the action does not write it again.
    assert runner.summary.read_text().count("### reconciler plan: `platform-team`") == 1
    [comment] = runner.gh["comments"]
    assert comment["issue"] == 7
    assert comment["body"].startswith("<!-- coder-reconciler plan: . -->\n### reconciler plan")
    created = int(re.search(r"(\d+) to create", comment["body"])[1])  # type: ignore[index]
    assert created >= 7  # every example session

    (workspace / "extra.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: extra\nspec: {task: More}\n"
    )
    second = _runner(workspace, "pull_request", "7").run_job("plan")
    assert second.failed_step is None, second.log
    [comment] = runner.gh["comments"]  # still one, updated
    assert f"{created + 1} to create" in comment["body"]
    assert [c[0] for c in runner.gh["calls"] if "comments" in c[1]] == [
        "GET",
        "POST",
        "GET",
        "PATCH",
    ]


def _plant(runner: Runner, key: str, item: dict[str, Any]) -> dict[str, Any]:
    """A look-alike by another author, listed before anything the action writes."""
    state = runner.gh
    planted = {**item, "user": {"login": "mallory", "type": "User"}}
    state[key].insert(0, planted)
    runner.gh_state.write_text(json.dumps(state))
    return planted


@pytest.mark.subprocess  # bash runs the CLI (and a Python fake gh)
@pytest.mark.usefixtures("jq")
def test_the_action_edits_only_its_own_comment_never_a_look_alike(workspace: Path) -> None:
    runner = _runner(workspace, "pull_request", "7")
    # The PR's author writes a comment that starts with the action's marker, first.
    body = "<!-- coder-reconciler plan: . -->\nAll clear, merge me."
    planted = _plant(runner, "comments", {"id": 5, "issue": 7, "body": body})
    for _ in range(2):  # the first run creates the action's comment, the second edits it
        done = _runner(workspace, "pull_request", "7").run_job("plan")
        assert done.failed_step is None, done.log
        look_alike, ours = runner.gh["comments"]
        assert look_alike == planted
        assert ours["user"]["login"] == BOT and "### reconciler plan" in ours["body"]
    edits = [c[1] for c in runner.gh["calls"] if c[0] == "PATCH"]
    assert edits == [f"repos/acme/sessions/issues/comments/{ours['id']}"]


@pytest.mark.subprocess  # bash runs the CLI (and a Python fake gh)
@pytest.mark.usefixtures("jq")
def test_drift_never_edits_or_closes_a_look_alike_issue(workspace: Path) -> None:
    assert _runner(workspace, "push").run_job("apply").failed_step is None
    runner = _runner(workspace, "schedule")
    body = "<!-- coder-reconciler drift: . -->\nNothing to see."
    planted = _plant(runner, "issues", {"number": 99, "state": "open", "body": body})
    assert runner.run_job("drift").failed_step is None  # clean: nothing of ours to close
    assert runner.gh["issues"] == [planted]
    (workspace / "extra.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: extra\nspec: {task: More}\n"
    )
    assert _runner(workspace, "schedule").run_job("drift").failed_step == "Result"
    look_alike, ours = runner.gh["issues"]
    assert look_alike == planted and ours["user"]["login"] == BOT
    assert "1 to create" in ours["body"]


@pytest.mark.subprocess  # bash runs the CLI (and a Python fake gh)
@pytest.mark.usefixtures("jq")
def test_a_plan_that_fails_is_commented_and_fails_the_job(workspace: Path) -> None:
    (workspace / "broken.yaml").write_text("apiVersion: reconciler/v1\nkind: Sesion\n")
    runner = _runner(workspace, "pull_request", "8")
    done = runner.run_job("plan")
    assert done.failed_step == "Result"
    assert done.outputs["exitcode"] == "65"
    [comment] = runner.gh["comments"]
    assert "### reconciler plan failed (exit 65)" in comment["body"]
    assert "broken.yaml:2" in comment["body"]
    assert runner.summary.read_text().count("reconciler plan failed (exit 65)") == 1


@pytest.mark.subprocess  # bash runs the CLI (and a Python fake gh)
@pytest.mark.usefixtures("jq")
def test_apply_then_drift_opens_updates_and_closes_one_issue(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    applied = _runner(workspace, "push").run_job("apply")
    assert applied.failed_step is None, applied.log
    summary = (workspace.parent / "step-summary.md").read_text()
    assert summary.startswith("### reconciler apply (exit 0)")
    assert "ghp_example" not in summary and "npm_example" not in summary

    clean = _runner(workspace, "schedule").run_job("drift")
    assert clean.failed_step is None, clean.log
    assert clean.outputs["exitcode"] == "0"
    assert _runner(workspace, "schedule").gh["issues"] == []

    # A hand edit: the next drift job fails, writes the drift to the summary, opens an issue.
    capsys.readouterr()
    assert _hub(workspace, "sessions", "list", "--format", "json") == 0
    listed = json.loads(capsys.readouterr().out)
    session_id = listed["sessions"]["websocket"][0]["sessionId"]
    assert _hub(workspace, "sessions", "update", session_id, "--label", "Edited by hand") == 0
    for _ in range(2):  # the second run updates the same issue
        runner = _runner(workspace, "schedule")
        drifted = runner.run_job("drift")
        assert drifted.failed_step == "Result", drifted.log
        assert "drift: the live hub differs" in drifted.log
        summary = runner.summary.read_text()
        assert summary.count("### reconciler plan") == 1 and "**Drift:**" in summary
        [issue] = runner.gh["issues"]
        assert issue["state"] == "open" and "1 to update" in issue["body"]
        assert issue["body"].startswith("<!-- coder-reconciler drift: . -->")
        assert "actions/runs/42" in issue["body"]

    healed = _runner(workspace, "push").run_job("apply")
    assert healed.failed_step is None, healed.log
    runner = _runner(workspace, "schedule")
    assert runner.run_job("drift").failed_step is None
    [issue] = runner.gh["issues"]
    assert issue["state"] == "closed"
    assert any("No drift any more" in c["body"] for c in runner.gh["comments"])


@pytest.mark.subprocess  # bash runs the CLI (and a Python fake gh)
def test_apply_sets_a_commit_status_on_the_applied_commit(workspace: Path) -> None:
    runner = _runner(workspace, "push")
    assert runner.run_job("apply").failed_step is None
    [status] = runner.gh["statuses"]
    assert status == {
        "sha": APPLIED_SHA,
        "state": "success",
        "context": "coder-reconciler/.",
        "description": "applied",
        "target_url": "https://github.com/acme/sessions/actions/runs/42",
    }
    # A refused apply (every session dropped: removeAll) is a failure status, exit named.
    for path in workspace.glob("*.yaml"):
        if "kind: Session" in path.read_text() and "kind: Project" not in path.read_text():
            path.unlink()
    refused = _runner(workspace, "push")
    assert refused.run_job("apply").failed_step == "Result"
    assert refused.gh["statuses"][-1]["state"] == "failure"
    assert "(exit 3)" in refused.gh["statuses"][-1]["description"]
    off = _runner(workspace, "push")
    before = len(off.gh["statuses"])
    off.run_action({"command": "apply", "commit-status": "false"}, {})
    assert len(off.gh["statuses"]) == before


@pytest.mark.usefixtures("jq")
def test_the_override_policy_input_lifts_an_overridable_policy(workspace: Path) -> None:
    # A loop over the example Policy loop-budget's 50 iterations (overridable: true).
    maintenance = workspace / "maintenance.yaml"
    text = maintenance.read_text(encoding="utf-8")
    assert "maxIterations: 20" in text
    maintenance.write_text(text.replace("maxIterations: 20", "maxIterations: 60", 1))

    refused = _runner(workspace, "pull_request", "9").run_job("plan")
    assert refused.failed_step == "Result", refused.log
    assert refused.outputs["exitcode"] == "3"
    runner = _runner(workspace, "pull_request", "9")
    [comment] = runner.gh["comments"]
    assert "deny loop-budget (policies.yaml:" in comment["body"]
    assert "### reconciler plan failed (exit 3)" in comment["body"]

    # The label a policy owner added, turned into the input by the workflow.
    lifted = runner.run_job("plan", extra={"override-policy": "loop-budget"})
    assert lifted.failed_step is None, lifted.log
    assert lifted.outputs == {"exitcode": "2", "changes": "true"}
    [comment] = runner.gh["comments"]  # the same comment, updated
    assert "overridden loop-budget (policies.yaml:" in comment["body"]
    assert "plan failed" not in comment["body"]

    assert _runner(workspace, "push").run_job("apply").outputs["exitcode"] == "3"
    # A plan saved with the override is applied with it: the input goes to the apply of
    # a plan-file too (the file alone cannot lift a deny), and without it, refused (4).
    saved = runner.run_job(
        "plan", extra={"override-policy": "loop-budget", "plan-out": "plan.json"}
    )
    assert saved.outputs["exitcode"] == "2", saved.log
    pinned = {"plan-file": "plan.json", "plan-checksum": saved.outputs["plan-checksum"]}
    alone = _runner(workspace, "push").run_job("apply", extra=pinned)
    assert alone.outputs["exitcode"] == "4", alone.log
    applied = _runner(workspace, "push").run_job(
        "apply", extra={**pinned, "override-policy": "loop-budget,"}
    )
    assert applied.failed_step is None, applied.log
    summary = (workspace.parent / "step-summary.md").read_text()
    assert "Policies overridden for this apply (--override-policy): loop-budget" in summary

    # Only an overridable policy: owner-tag is not one (exit 64, nothing applied).
    refused = _runner(workspace, "push").run_job("apply", extra={"override-policy": "owner-tag"})
    assert refused.outputs["exitcode"] == "64"


@pytest.mark.subprocess  # runs the action's bash steps
def test_a_bad_command_input_fails(workspace: Path) -> None:
    runner = _runner(workspace, "push")
    done = runner.run_action({"command": "destroy"}, {})
    assert done.failed_step == "Reconcile"
    assert "command must be plan, apply or drift" in done.log


# -- the action's shape, pins and install ------------------------------------------------


def test_the_action_is_composite_and_pins_what_it_uses() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert set(ACTION["inputs"]) >= {"paths", "project", "command", "parallelism", "comment"}
    for step in ACTION["runs"]["steps"]:
        if "uses" in step:
            assert PINNED.match(step["uses"]), f"{step['uses']} is not pinned to a commit"
        else:
            assert step["shell"] == "bash"


def test_the_action_installs_itself_from_its_checkout_with_a_pip_cache() -> None:
    steps = {s["name"]: s for s in ACTION["runs"]["steps"]}
    install = steps["Install coder-reconciler"]
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    # The locked dependencies with their hashes, then the checkout with nothing resolved.
    commands = [c.strip() for c in install["run"].replace("\\\n", " ").splitlines() if c.strip()]
    assert [re.sub(r"\s+", " ", c) for c in commands] == [
        "python -m pip install --disable-pip-version-check --quiet --require-hashes "
        '-r "$ACTION_PATH/requirements.lock"',
        "python -m pip install --disable-pip-version-check --quiet --no-deps "
        '--no-build-isolation "$ACTION_PATH"',
    ]
    cache = steps["Pip cache"]
    assert cache["uses"].startswith("actions/cache@")
    assert cache["with"]["path"] == "~/.cache/pip"
    assert (ROOT / "pyproject.toml").is_file()


def test_the_pip_cache_key_follows_the_tools_pyproject_and_lock(tmp_path: Path) -> None:
    [step] = [s for s in ACTION["runs"]["steps"] if s.get("id") == "pip-key"]
    output = tmp_path / "out"
    env = {"PATH": os.environ["PATH"], "ACTION_PATH": str(ROOT), "PYTHON_VERSION": "3.12"}
    env |= {"RUNNER_OS": "Linux", "GITHUB_OUTPUT": str(output)}
    subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], env=env, check=True)
    key = output.read_text().strip()
    assert re.fullmatch(r"key=coder-reconciler-pip-Linux-3\.12-[0-9a-f]{16}", key)


def test_the_recipe_uses_the_action_and_pins_everything() -> None:
    text = RECIPE_PATH.read_text(encoding="utf-8")
    assert "coder-reconciler==" not in text
    for job in RECIPE["jobs"].values():
        for step in job["steps"]:
            assert step["uses"] == ACTION_REF or PINNED.match(step["uses"].split(" ")[0])
    commands = {
        (s.get("with") or {}).get("command")
        for job in RECIPE["jobs"].values()
        for s in job["steps"]
        if s["uses"] == ACTION_REF
    }
    assert commands == {"plan", "apply", "drift"}


def test_the_docs_explain_the_placeholders() -> None:
    readme = page("how-to/github-actions.md")
    for placeholder in ("<owner>/coder-reconciler", "<40-hex-commit-sha>"):
        assert placeholder in readme
    for secret in ("CODER_API_URL", "AGENTUITY_SDK_KEY"):
        assert f"`{secret}`" in readme


# -- linters -----------------------------------------------------------------------------


@pytest.mark.subprocess  # the actionlint launcher is Python
def test_actionlint_accepts_the_recipe_and_the_action(tmp_path: Path) -> None:
    actionlint = require_tool("actionlint")
    repo = tmp_path / "lint"
    (repo / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ROOT / "action.yml", repo / "action.yml")
    recipe = RECIPE_PATH.read_text(encoding="utf-8").replace(ACTION_REF, "./")
    (repo / ".github" / "workflows" / "sessions.yml").write_text(recipe)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    # actionlint runs shellcheck on the recipe's scripts when it finds it on PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [actionlint], cwd=repo, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_shellcheck_accepts_the_actions_scripts(tmp_path: Path) -> None:
    shellcheck = require_tool("shellcheck")
    for index, step in enumerate(ACTION["runs"]["steps"]):
        if "run" not in step:
            continue
        script = tmp_path / f"step-{index}.sh"
        script.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + textwrap.dedent(step["run"]))
        done = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
        assert done.returncode == 0, f"{step['name']}:\n{done.stdout}"


def test_the_key_that_writes_reaches_only_the_apply_job() -> None:
    assert "env" not in RECIPE, "workflow-level env reaches every job, plan included"
    jobs = RECIPE["jobs"]
    for name in ("plan", "drift"):
        assert jobs[name]["env"]["AGENTUITY_SDK_KEY"] == "${{ secrets.AGENTUITY_SDK_KEY_READ }}"
        assert "environment" not in jobs[name]
    assert jobs["apply"]["env"]["AGENTUITY_SDK_KEY"] == "${{ secrets.AGENTUITY_SDK_KEY }}"
    assert jobs["apply"]["environment"] == "coder"
    writes = [
        (job, where)
        for job, spec in jobs.items()
        for where, text in (
            ("job", json.dumps(spec.get("env", {}))),
            ("steps", json.dumps(spec["steps"])),
        )
        if "secrets.AGENTUITY_SDK_KEY }}" in text and job != "apply"
    ]
    assert writes == []


@pytest.mark.subprocess  # bash runs the CLI
def test_force_and_args_reach_the_command(workspace: Path) -> None:
    assert _runner(workspace, "push").run_job("apply").failed_step is None
    # Four of ten sessions removed: above maxDestroyPercent (30), refused without force.
    (workspace / "product.yaml").unlink()
    refused = _runner(workspace, "push").run_job("apply")
    assert refused.outputs["exitcode"] == "3", refused.log
    # Extra arguments: a plan of one target shows only its change, and what it left out.
    env = {"CODER_API_URL": "local", "AGENTUITY_SDK_KEY": ""}
    targeted = _runner(workspace, "pull_request", "7").run_action(
        {"command": "plan", "comment": "false", "args": "--target docs-writer"}, env
    )
    assert targeted.outputs["exitcode"] == "2", targeted.log
    plan = (workspace.parent / "step-summary.md").read_text()
    assert "docs-writer" in plan and "checkout-revamp" not in plan
    # Run by hand with `force` ticked: the recipe passes --force to apply.
    forced = _runner(workspace, "workflow_dispatch").run_job("apply", {"force": "true"})
    assert forced.failed_step is None, forced.log
    summary = (workspace.parent / "step-summary.md").read_text()
    assert "Apply complete: 4 succeeded" in summary, summary


@pytest.mark.subprocess  # bash runs the CLI (and a Python fake gh)
def test_a_plan_saved_on_the_pull_request_is_applied_on_merge(workspace: Path) -> None:
    # `apply --plan` takes no paths: the action passed them always, so a saved plan could
    # not be applied through it (exit 64).
    planned = _runner(workspace, "pull_request", "7").run_job(
        "plan", extra={"plan-out": "plan.json", "comment": "false"}
    )
    assert planned.outputs["exitcode"] == "2", planned.log
    assert (workspace / "plan.json").is_file()
    # The plan job's checksum output ties the apply to the file it saved: a file edited
    # in the artifact store (its own checksum made again) is refused (4).
    checksum = planned.outputs["plan-checksum"]
    assert checksum == json.loads((workspace / "plan.json").read_text())["checksum"]
    pinned = {"plan-file": "plan.json", "plan-checksum": checksum}
    saved = (workspace / "plan.json").read_text()
    edited = json.loads(saved)
    edited["summary"]["create"] = 0  # any edit: the reviewed file is another
    edited["checksum"] = checksum_of(edited)
    (workspace / "plan.json").write_text(json.dumps(edited))
    tampered = _runner(workspace, "push").run_job("apply", extra=pinned)
    assert tampered.outputs["exitcode"] == "4", tampered.log
    assert "it is not the file that was reviewed" in tampered.log
    (workspace / "plan.json").write_text(saved)
    applied = _runner(workspace, "push").run_job("apply", extra=pinned)
    assert applied.failed_step is None, applied.log
    summary = (workspace.parent / "step-summary.md").read_text()
    assert "Apply complete: 10 succeeded" in summary, summary
    # Applied once: applying it again is refused (exit 4), and the job fails.
    again = _runner(workspace, "push").run_job("apply", extra=pinned)
    assert again.outputs["exitcode"] == "4", again.log
    assert again.failed_step == "Result"
    # Without the plan job's checksum nothing ties the file to the review: the step
    # fails closed, before the tool runs.
    unpinned = _runner(workspace, "push").run_job("apply", extra={"plan-file": "plan.json"})
    assert unpinned.failed_step is not None and "exitcode" not in unpinned.outputs
    assert "plan-file needs plan-checksum" in unpinned.log


def test_a_saved_plan_input_given_to_the_wrong_command_fails(workspace: Path) -> None:
    # They were ignored without a word: a workflow meant to apply a reviewed plan
    # planned instead.
    for inputs in (
        {"command": "plan", "plan-file": "plan.json", "comment": "false"},
        {"command": "apply", "plan-out": "plan.json"},
        {"command": "drift", "plan-file": "plan.json"},
    ):
        done = _runner(workspace, "push").run_action(inputs, {"CODER_API_URL": "local"})
        assert done.failed_step == "Reconcile", done.log
        assert "is for command" in done.log
