"""The official Agentuity clients against `reconciler hub serve`: the conformance check.

    python tests/official_clients.py [--prefix DIR]

Installs the pinned npm packages (PACKAGES: `@agentuity/cli`, `@agentuity/core` and the
Bun binary the CLI's entry point needs) into DIR (a temporary directory by default; a DIR
that already holds the pinned versions is reused), starts `reconciler hub serve --admin`
on a free 127.0.0.1 port, then runs

- CLI checks: every `agentuity coder` command the API reference covers, JSON and text
  output, each a separate process (CLI_CHECKS below, in order: later ones use the
  sessions earlier ones create);
- SDK checks: tests/official_clients_sdk.mjs, every `CoderClient` call the reference
  covers (the SDK parses each answer with its own zod schemas).

It prints one line per check and the totals, and exits 0 when every check passed, 1 when
one failed, 3 when the packages cannot be installed. docs/official-clients.md says what
the clients send where the reference is silent, and what the hub decided.
tests/test_official_clients.py runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SDK_SCRIPT = HERE / "official_clients_sdk.mjs"
# The versions checked against: one place (docs/official-clients.md names them).
PACKAGES = {
    "@agentuity/cli": "2.0.21",
    "@agentuity/core": "2.0.21",
    "@oven/bun-linux-x64": "1.4.5",
}
_NPM_TIMEOUT_S = 900.0
_CLI_TIMEOUT_S = 120.0
_SDK_TIMEOUT_S = 300.0

KEY, ORG, USER = "official-key", "org_official", "user_official"
OTHER_KEY, OTHER_ORG = "official-other-key", "org_official_other"


class Unavailable(Exception):
    """The pinned packages cannot be had here (no npm, no registry, another platform)."""


def unavailable_reason() -> str | None:
    """Why the check cannot run on this machine, or None when it can (asks the registry)."""
    if (sys.platform, platform.machine()) != ("linux", "x86_64"):
        return f"the pinned Bun binary is for Linux x86-64, not {sys.platform} {platform.machine()}"
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed"
    name, version = next(iter(PACKAGES.items()))
    try:
        done = subprocess.run(
            [npm, "view", f"{name}@{version}", "version"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        return "the npm registry did not answer within 60 s"
    if done.returncode != 0 or done.stdout.strip() != version:
        return f"the npm registry did not give {name}@{version}: {done.stderr.strip()[-300:]}"
    return None


def installed(prefix: Path) -> bool:
    """Whether ``prefix`` holds the pinned versions of every package."""
    for name, version in PACKAGES.items():
        manifest = prefix / "node_modules" / name / "package.json"
        try:
            if json.loads(manifest.read_text(encoding="utf-8")).get("version") != version:
                return False
        except (OSError, ValueError):
            return False
    return True


def install(prefix: Path) -> None:
    """The pinned packages into ``prefix``, unless they are there already."""
    if installed(prefix):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not installed")
    prefix.mkdir(parents=True, exist_ok=True)
    specs = [f"{name}@{version}" for name, version in PACKAGES.items()]
    argv = [npm, "install", "--prefix", str(prefix), "--ignore-scripts", "--no-audit"]
    argv += ["--no-fund", "--save-exact", *specs]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=_NPM_TIMEOUT_S)
    if done.returncode != 0 or not installed(prefix):
        raise Unavailable(f"npm install failed:\n{done.stderr[-2000:]}")


@dataclass
class Result:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Cli:
    """Runs `agentuity --json coder ...` with Bun, pointed at one hub."""

    prefix: Path
    env: dict[str, str]
    saved: dict[str, str] = field(default_factory=dict)  # session ids by role

    def run(
        self, args: list[str], env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        bun = self.prefix / "node_modules" / "@oven" / "bun-linux-x64" / "bin" / "bun"
        cli = self.prefix / "node_modules" / "@agentuity" / "cli" / "bin" / "cli.ts"
        return subprocess.run(
            [str(bun), str(cli), *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=_CLI_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )


# A check: a name, the arguments (``{role}`` names a saved session id), and what the
# answer must be: ``expect(answer, cli)`` returns None when it is right, else what is wrong;
# ``answer`` is the parsed JSON (``--json``) or the text. ``save`` keeps the created
# session's id under that role. ``fails``: the command must exit non-zero and ``expect``
# gets its standard error.
@dataclass(frozen=True)
class Check:
    name: str
    args: tuple[str, ...]
    expect: Callable[[Any, Cli], str | None]
    json: bool = True
    save: str = ""
    fails: bool = False
    env: tuple[tuple[str, str], ...] = ()


def _is(key: str, value: Any) -> Callable[[Any, Cli], str | None]:
    def expect(answer: Any, _cli: Cli) -> str | None:
        got = answer.get(key) if isinstance(answer, dict) else None
        return None if got == value else f"{key} {value!r}, got {got!r}"

    return expect


def _created(answer: Any, _cli: Cli) -> str | None:
    ok = isinstance(answer, dict) and str(answer.get("sessionId", "")).startswith("codesess_")
    return None if ok else f"a created session, got {answer!r}"


def _lists(role: str, *, present: bool = True) -> Callable[[Any, Cli], str | None]:
    def expect(answer: Any, cli: Cli) -> str | None:
        ids = {item.get("sessionId") for item in answer} if isinstance(answer, list) else set()
        if (cli.saved[role] in ids) == present:
            return None
        return f"{role} session {'in' if present else 'not in'} the list"

    return expect


def _contains(*texts: str) -> Callable[[Any, Cli], str | None]:
    def expect(answer: Any, cli: Cli) -> str | None:
        wanted = [t.format(**cli.saved) for t in texts]
        missing = [t for t in wanted if t not in str(answer)]
        return None if not missing else f"{missing} in the output"

    return expect


def _all(*expects: Callable[[Any, Cli], str | None]) -> Callable[[Any, Cli], str | None]:
    def expect(answer: Any, cli: Cli) -> str | None:
        return next((m for e in expects if (m := e(answer, cli)) is not None), None)

    return expect


def _has(key: str) -> Callable[[Any, Cli], str | None]:
    def expect(answer: Any, _cli: Cli) -> str | None:
        ok = isinstance(answer, dict) and key in answer
        return None if ok else f"a {key!r} in the answer, got {str(answer)[:200]}"

    return expect


def _list_of(key: str) -> Callable[[Any, Cli], str | None]:
    def expect(answer: Any, _cli: Cli) -> str | None:
        ok = isinstance(answer, dict) and isinstance(answer.get(key), list)
        return None if ok else f"a list {key!r}, got {str(answer)[:200]}"

    return expect


def _nonempty(answer: Any, _cli: Cli) -> str | None:
    return None if (answer if not isinstance(answer, str) else answer.strip()) else "output"


def _no_users(answer: Any, _cli: Cli) -> str | None:
    users = answer.get("users") if isinstance(answer, dict) else answer
    return None if users == [] else f"no user, got {answer!r}"


def _create(name: str, save: str, command_line: str) -> Check:
    """``coder create`` with the arguments of a shell command line."""
    args = ("coder", "create", *shlex.split(command_line))
    return Check(f"create {name}", args, _created, save=save)


def _update(command_line: str, key: str, value: Any) -> tuple[Check, Check]:
    """``coder update`` of the ``plain`` session, then ``coder get`` showing the change."""
    update = ("coder", "update", "{plain}", *shlex.split(command_line))
    kept = ("coder", "get", "{plain}")
    return (
        Check(f"update {command_line}", update, _nonempty),
        Check(f"update {command_line}: GET shows {key} {value!r}", kept, _is(key, value)),
    )


CLI_CHECKS: tuple[Check, ...] = (
    Check(
        "list (none yet)", ("coder", "list"), lambda a, _c: None if a == [] else f"[], got {a!r}"
    ),
    _create("with a task", "plain", "'Write the tests'"),
    _create(
        "with label, tags, visibility org",
        "labelled",
        "'Review auth' --label 'Auth review' --tags security,auth --visibility org",
    ),
    _create("with visibility collab", "collab", "'Pair on it' --visibility collab"),
    _create(
        "a loop session",
        "loop",
        "'Keep going' --loop-goal 'Ship it' --loop-max-iterations 5 --loop-auto-continue",
    ),
    _create(
        "with --agent and --default-agent", "agents", "'Lead it' --agent lead --default-agent scout"
    ),
    _create(
        "with --default-agent and --enabled-agents",
        "roster",
        "'Review this change' --default-agent code-review --enabled-agents code-review",
    ),
    _create("with --env", "env", "'With env' --env MODE=strict,LEVEL=2"),
    _create(
        "with saved skills, buckets and a workspace",
        "",
        "'With skills' --saved-skill-ids sk_1,sk_2 --skill-bucket-ids bk_1 --workspace-id ws_1",
    ),
    Check(
        "create refused: the reason is shown",
        ("coder", "create", "   "),
        _contains("task is required"),
        fails=True,
    ),
    Check("list", ("coder", "list"), _all(_lists("plain"), _lists("loop"))),
    Check("ls (alias)", ("coder", "ls"), _lists("plain")),
    Check("get", ("coder", "get", "{plain}"), _is("label", "Write the tests")),
    Check(
        "get: label, tags, visibility",
        ("coder", "get", "{labelled}"),
        _all(
            _is("label", "Auth review"),
            _is("tags", ["security", "auth"]),
            _is("visibility", "organization"),
        ),
    ),
    Check("get: collaborate", ("coder", "get", "{collab}"), _is("visibility", "collaborate")),
    Check("get: loop mode", ("coder", "get", "{loop}"), _is("workflowMode", "loop")),
    Check(
        "get: both agents keep defaultAgent",
        ("coder", "get", "{agents}"),
        _is("defaultAgent", "scout"),
    ),
    Check("get: defaultAgent", ("coder", "get", "{roster}"), _is("defaultAgent", "code-review")),
    Check("get: env", ("coder", "get", "{env}"), _is("env", {"MODE": "strict", "LEVEL": "2"})),
    Check(
        "get (text)",
        ("coder", "get", "{plain}"),
        _contains("Write the tests", "{plain}"),
        json=False,
    ),
    Check("list (text)", ("coder", "list"), _contains("{plain}"), json=False),
    Check(
        "get a missing session",
        ("coder", "get", "codesess_missing"),
        _contains("not found"),
        fails=True,
    ),
    *_update("--label Renamed", "label", "Renamed"),
    *_update("--tags one,two", "tags", ["one", "two"]),
    *_update("--visibility org", "visibility", "organization"),
    *_update("--agent builder", "defaultAgent", "builder"),
    *_update("--default-agent lead --enabled-agents lead,scout", "defaultAgent", "lead"),
    *_update("--agent a --default-agent scout", "defaultAgent", "scout"),
    Check("loop of a standard session", ("coder", "loop", "{plain}"), _is("loop", None)),
    Check("loop of a loop session", ("coder", "loop", "{loop}"), _is("workflowMode", "loop")),
    Check("loop (text)", ("coder", "loop", "{loop}"), _nonempty, json=False),
    Check("replay", ("coder", "replay", "{plain}"), _list_of("entries")),
    Check("participants", ("coder", "participants", "{plain}"), _list_of("participants")),
    Check("events", ("coder", "events", "{plain}"), _list_of("events")),
    Check(
        "events --limit 1",
        ("coder", "events", "{plain}", "--limit", "1"),
        lambda a, _c: None if len(a.get("events", [])) == 1 else f"one event, got {a!r}",
    ),
    Check("events (text)", ("coder", "events", "{plain}"), _nonempty, json=False),
    Check("users", ("coder", "users"), _nonempty),
    Check("users --search", ("coder", "users", "--search", "nobody-at-all"), _no_users),
    Check("archive", ("coder", "archive", "{collab}"), _nonempty),
    Check("archive is kept", ("coder", "get", "{collab}"), _is("status", "archived")),
    Check("delete", ("coder", "delete", "{env}"), _is("deleted", True)),
    Check("delete is kept", ("coder", "get", "{env}"), _contains("not found"), fails=True),
    Check(
        "list through discovery (GET /coder)",
        ("coder", "list"),
        _lists("plain"),
        env=(("AGENTUITY_CODER_URL", ""), ("AGENTUITY_CATALYST_URL", "{hub}")),
    ),
    Check(
        "a wrong key is refused",
        ("coder", "list"),
        _nonempty,
        fails=True,
        env=(("AGENTUITY_API_KEY", "not-a-key"),),
    ),
)


def run_cli_checks(cli: Cli, hub_url: str) -> Iterator[Result]:
    for check in CLI_CHECKS:
        try:
            args = [a.format(**cli.saved) for a in check.args]
        except KeyError as missing:
            yield Result(check.name, False, f"needs the session {missing} an earlier check makes")
            continue
        env = {k: v.format(hub=hub_url) for k, v in check.env}
        done = cli.run(["--json", *args] if check.json else args, env)
        if check.fails:
            if done.returncode == 0:
                yield Result(check.name, False, f"exit 0, expected a failure: {done.stdout[:300]}")
                continue
            problem = check.expect(done.stderr + done.stdout, cli)
        elif done.returncode != 0:
            yield Result(check.name, False, f"exit {done.returncode}: {done.stderr.strip()[-500:]}")
            continue
        else:
            try:
                answer = json.loads(done.stdout) if check.json else done.stdout
            except ValueError:
                yield Result(check.name, False, f"not JSON: {done.stdout[:300]}")
                continue
            problem = check.expect(answer, cli)
            if problem is None and check.save:
                cli.saved[check.save] = answer["sessionId"]
        yield Result(check.name, problem is None, problem or "")


def run_sdk_checks(prefix: Path, env: dict[str, str]) -> list[Result]:
    script = prefix / SDK_SCRIPT.name  # beside node_modules, so its import resolves
    shutil.copyfile(SDK_SCRIPT, script)
    bun = prefix / "node_modules" / "@oven" / "bun-linux-x64" / "bin" / "bun"
    done = subprocess.run(
        [str(bun), str(script)], env=env, capture_output=True, text=True, timeout=_SDK_TIMEOUT_S
    )
    try:
        answers = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        detail = f"exit {done.returncode}: {(done.stdout + done.stderr)[-1500:]}"
        return [Result("the SDK checks ran", False, detail)]
    return [Result(a["name"], bool(a["ok"]), a["detail"]) for a in answers]


def run_all(prefix: Path, workdir: Path) -> tuple[list[Result], list[Result]]:
    """Start a hub, run both sets of checks against it: (CLI results, SDK results)."""
    sys.path.insert(0, str(HERE))
    from hubproc import start_hub

    tokens = {KEY: f"{ORG}:{USER}", OTHER_KEY: f"{OTHER_ORG}:user_other"}
    config_dir = workdir / "agentuity-config"
    config_dir.mkdir(exist_ok=True)
    base = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "NO_COLOR": "1",
        "AGENTUITY_CONFIG_DIR": str(config_dir),
    }
    with start_hub(workdir, extra_args=["--admin"], tokens=tokens) as hub:
        cli_env = {
            **base,
            "AGENTUITY_API_KEY": KEY,
            "AGENTUITY_CLOUD_ORG_ID": ORG,
            "AGENTUITY_CODER_URL": hub.url,
        }
        cli = Cli(prefix, cli_env)
        cli_results = list(run_cli_checks(cli, hub.url))
        sdk_env = {
            **base,
            "HUB_URL": hub.url,
            "HUB_KEY": KEY,
            "HUB_ORG": ORG,
            "OTHER_KEY": OTHER_KEY,
            "OTHER_ORG": OTHER_ORG,
        }
        sdk_results = run_sdk_checks(prefix, sdk_env)
    return cli_results, sdk_results


def report(title: str, results: list[Result]) -> str:
    lines = [
        f"{'ok  ' if r.ok else 'FAIL'} {title}: {r.name}" + (f": {r.detail}" if r.detail else "")
        for r in results
    ]
    passed = sum(r.ok for r in results)
    lines.append(f"{title} {passed}/{len(results)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", type=Path, help="where to install the npm packages (reused)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="official-clients-") as tmp:
        prefix = args.prefix or Path(tmp) / "npm"
        workdir = Path(tmp) / "run"
        workdir.mkdir()
        try:
            install(prefix)
        except Unavailable as why:
            print(f"official clients: cannot install {PACKAGES}: {why}", file=sys.stderr)
            return 3
        cli_results, sdk_results = run_all(prefix, workdir)
    print(report("CLI", cli_results))
    print(report("SDK", sdk_results))
    return 0 if all(r.ok for r in cli_results + sdk_results) else 1


if __name__ == "__main__":
    sys.exit(main())
