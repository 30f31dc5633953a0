"""The CI recipes and the pre-commit hook use only commands and flags that exist.

Every `reconciler ...` command line in examples/ci/*.yml is extracted and run against
the local hub, in a copy of the example manifests, in the order the pipelines run them.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.cli.main import run

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted((ROOT / "examples" / "ci").glob("*.yml"))
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
    for line in script.splitlines():
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


@pytest.mark.parametrize("recipe_path", RECIPES, ids=lambda p: p.name)
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


def _apply_jobs(recipe: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        job
        for job in _jobs(recipe)
        if any(_verb(cmd) == "apply" for script in _job_scripts(job) for cmd in _commands(script))
    ]


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
