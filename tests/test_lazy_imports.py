"""Commands import what they use: `reconciler --help`, `validate` and `schema` load no
HTTP client, hub, metrics, notifier, template or policy engine; `plan` against a remote
hub loads no hub module; completing a command name loads no command. Each case runs
the CLI in a fresh interpreter and reads its ``sys.modules`` afterwards.

The command group (reconciler.cli.main.LazyGroup, click's lazy-loading pattern) keeps
each command's short help beside its import path; the last tests hold those to the
commands themselves.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from clitree import subcommands
from hubproc import HubProcess, Tenant

import reconciler.cli
from reconciler.cli.main import COMMANDS, cli

ROOT = Path(__file__).resolve().parents[1]

# Top-level packages no command may load unless it needs them: the HTTP client, the hub's
# server, metrics, notifications (watch --notify), templates (SessionSets), the policy
# engine (Policy documents), and the reference schema validator (invalid documents; the
# fast one, jsonschema_rs, answers for valid ones).
HEAVY = (
    "httpx",
    "httpcore",
    "starlette",
    "uvicorn",
    "prometheus_client",
    "apprise",
    "jinja2",
    "cel_expr_python",
    "jsonschema",
)
HUB = "reconciler.hub"

# Runs the CLI like `reconciler ARGS...` (its entry point, main), then prints the exit
# code, its stdout and the sorted sys.modules as one JSON object.
PROBE = """
import contextlib, io, json, sys
from reconciler.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code
# An entry set to None is a module kept from loading (httpx's own command line).
modules = sorted(name for name, module in sys.modules.items() if module is not None)
print(json.dumps({"code": code, "out": out.getvalue(), "modules": modules}))
"""

PROJECT = "apiVersion: reconciler/v1\nkind: Project\nname: lazy\n"
SESSION = "apiVersion: reconciler/v1\nkind: Session\nname: one\nspec: {task: t}\n"
SESSION_SET = """\
apiVersion: reconciler/v1
kind: SessionSet
name: reviews
generator: {items: [api, web]}
template:
  name: "review-{{ item }}"
  spec: {task: "Review {{ item }}"}
"""


def _imports(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    return result["code"], result["out"], set(result["modules"])


def _loaded(modules: set[str], *prefixes: str) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def _commands_loaded(modules: set[str]) -> set[str]:
    """The command modules (reconciler.cli.<command>) that were imported."""
    paths = {path.split(":")[0] for path, _ in COMMANDS.values()}
    return paths & modules


def _manifests(tmp_path: Path, *documents: str) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    for index, text in enumerate(documents):
        (folder / f"m{index}.yaml").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.subprocess
def test_help_imports_no_command(tmp_path: Path) -> None:
    code, out, modules = _imports("--help")
    assert code == 0
    for name in COMMANDS:  # every command is still listed
        assert f"\n  {name} " in out, name
    assert _loaded(modules, *HEAVY, HUB) == []
    assert _commands_loaded(modules) == set()


@pytest.mark.subprocess
def test_validate_imports_only_the_manifest_reader(tmp_path: Path) -> None:
    folder = _manifests(tmp_path, PROJECT, SESSION)
    code, out, modules = _imports("validate", str(folder))
    assert (code, out.splitlines()[0]) == (0, "OK: 1 project, 1 session in 2 files")
    assert _loaded(modules, *HEAVY, HUB) == []
    assert _commands_loaded(modules) == {"reconciler.cli.validate"}


@pytest.mark.subprocess
def test_validate_imports_jinja2_when_a_session_set_is_read(tmp_path: Path) -> None:
    folder = _manifests(tmp_path, PROJECT, SESSION_SET)
    code, out, modules = _imports("validate", str(folder))
    assert code == 0, out
    assert "SessionSet reviews" in out
    assert _loaded(modules, "jinja2") != []  # the probe sees what a run needs
    assert _loaded(modules, *(h for h in HEAVY if h != "jinja2"), HUB) == []


@pytest.mark.subprocess
def test_validate_imports_the_reference_validator_for_an_invalid_document(
    tmp_path: Path,
) -> None:
    folder = _manifests(tmp_path, PROJECT, SESSION.replace("{task: t}", "{task: 3}"))
    code, _out, modules = _imports("validate", str(folder))
    assert code == 65
    assert _loaded(modules, "jsonschema") != []  # its errors locate the problem
    assert _loaded(modules, *(h for h in HEAVY if h != "jsonschema"), HUB) == []


@pytest.mark.subprocess
def test_schema_imports_nothing_heavy() -> None:
    code, out, modules = _imports("schema")
    assert code == 0 and json.loads(out)["title"]
    assert _loaded(modules, *HEAVY, HUB) == []
    assert _commands_loaded(modules) == {"reconciler.cli.schema"}


@pytest.mark.subprocess
def test_plan_against_a_remote_hub_imports_no_hub_module(
    tmp_path: Path, served_hub: HubProcess, tenant: Tenant
) -> None:
    folder = _manifests(tmp_path, PROJECT, SESSION)
    env = {"PATH": "/usr/bin:/bin", "AGENTUITY_SDK_KEY": tenant.token}
    code, out, modules = _imports(
        "--api-url", served_hub.url, "plan", "--detailed-exitcode", str(folder), env=env
    )
    assert code == 2, out  # it planned against the hub: one session to create
    assert "one" in out
    assert _loaded(modules, "httpx") != []
    assert _loaded(modules, HUB, "starlette", "uvicorn", "prometheus_client", "jinja2") == []
    assert _loaded(modules, "jsonschema") == []  # valid manifests, no plan file
    assert _loaded(modules, "deepdiff") == []  # nothing replaced: no change to explain
    assert _commands_loaded(modules) == {"reconciler.cli.plan"}
    # httpx's own command line (rich, pygments), which `import httpx` loads whenever
    # they are installed, as they are beside the tests (import-linter needs rich).
    assert importlib.util.find_spec("rich") is not None
    assert _loaded(modules, "rich", "pygments") == []


@pytest.mark.subprocess
def test_a_program_that_runs_the_cli_in_process_keeps_httpx_whole() -> None:
    # Only the command's own process (main) keeps httpx's CLI out; run() and importing
    # the package leave httpx as the embedding program would have it.
    probe = (
        "from reconciler.cli.main import run\n"
        "assert run(['--version']) == 0\n"
        "import httpx, sys\n"
        "print(sys.modules['httpx._main'] is not None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "True"  # httpx imported its CLI as it does


# Completes `reconciler WORD<TAB>` as bash would ask, then prints the answer and the
# sorted sys.modules as one JSON object.
COMPLETION_PROBE = """
import contextlib, io, json, os, sys
from reconciler.cli.main import cli
os.environ.update(_RECONCILER_COMPLETE="bash_complete", COMP_WORDS="reconciler " + sys.argv[1],
                  COMP_CWORD="1")
out = io.TextIOWrapper(io.BytesIO())  # click writes the answer as bytes
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    cli.main(args=[], prog_name="reconciler")
out.flush()
answer = out.buffer.getvalue().decode()
print(json.dumps({"out": answer, "modules": sorted(sys.modules)}))
"""


@pytest.mark.subprocess
@pytest.mark.parametrize("word", ["", "s"])
def test_completing_a_command_name_imports_no_command(word: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", COMPLETION_PROBE, word],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=True,
    )
    result = json.loads(done.stdout)
    wanted = sorted(name for name in COMMANDS if name.startswith(word))
    assert result["out"].splitlines() == [f"plain,{name}" for name in wanted]
    assert _commands_loaded(set(result["modules"])) == set()
    assert _loaded(set(result["modules"]), *HEAVY, HUB) == []


def test_completion_offers_what_click_offers_from_the_commands() -> None:
    ctx = click.Context(cli, info_name="reconciler")
    for word in ("", "s", "st", "--", "x"):
        lazy = [(c.value, c.help) for c in cli.shell_complete(ctx, word)]
        eager = [(c.value, c.help) for c in click.Group.shell_complete(cli, ctx, word)]
        assert lazy == eager, word


def test_every_command_module_is_in_the_group() -> None:
    package = Path(reconciler.cli.__file__).parent
    declared = {path.split(":")[0] for path, _ in COMMANDS.values()}
    modules = {
        f"reconciler.cli.{p.stem}"
        for p in package.glob("*.py")
        if "\ncommand = " in p.read_text(encoding="utf-8")
        or "\ndef command(" in p.read_text(encoding="utf-8")
    }
    assert modules == declared


def test_the_short_help_kept_beside_each_import_path_is_the_commands_own() -> None:
    loaded = subcommands(cli)
    assert sorted(loaded) == sorted(COMMANDS)
    for name, command in loaded.items():
        assert command.name == name
        assert COMMANDS[name][1] == command.get_short_help_str(limit=10_000), name


def test_the_help_listing_is_what_click_renders_from_the_commands() -> None:
    ctx = click.Context(cli, info_name="reconciler")
    for width in (60, 80, 100):
        lazy, eager = click.HelpFormatter(width=width), click.HelpFormatter(width=width)
        cli.format_commands(ctx, lazy)
        click.Group.format_commands(cli, ctx, eager)  # click's own: loads every command
        assert lazy.getvalue() == eager.getvalue()
        assert lazy.getvalue().count("\n") > len(COMMANDS)
