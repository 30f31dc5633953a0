"""`reconciler users` and `reconciler discover` against the local hub, in-process and
over a socket; endpoint errors at the CLI boundary."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from clihub import CliHub, hub_fixture  # noqa: F401 - fixtures
from clitree import subcommands
from hubproc import HubProcess

from reconciler.cli import watch as watch_cli
from reconciler.cli.main import cli, run


def test_users(hub: CliHub) -> None:
    hub.create("--task", "make the caller a known user")
    code, out, err = hub.run("users")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["USER", "NAME", "EMAIL", "PROVIDER", "LAST", "SEEN"]
    user = hub.user_id
    assert any(line.startswith(user + " ") for line in lines[1:])
    assert err.splitlines()[-1].endswith(" users")
    raw = hub.json("users", "--search", user, "--limit", "1", "--offset", "0")
    assert [u["userId"] for u in raw["users"]] == [user]
    assert hub.json("users", "--search", "nobody-matches-this")["users"] == []
    assert hub.ok("users", "--search", "nobody-matches-this") == "(no users)\n"


def test_discover(hub: CliHub) -> None:
    out = hub.ok("discover")
    url = hub.json("discover")["url"]
    assert out == f"url  {url}\n"
    assert url.startswith("http")
    if hub.kind == "socket":
        assert url == hub.global_args[-1]


# -- endpoint resolution at the CLI boundary (exit codes, one-line messages) ----------


# Every command that talks to a hub, as a user would first type it. `hub serve`,
# `validate`, `schema` and `show` need none.
NEEDS_A_HUB: dict[str, list[str]] = {
    "plan": ["plan", "{m}"],
    "apply": ["apply", "{m}", "--yes"],
    "apply --plan": ["apply", "--plan", "{m}/plan.json", "{m}"],
    "status": ["status", "{m}"],
    "watch": ["watch", "{m}", "--self-heal"],
    "export": ["export", "--project", "p", "--out", "{m}/out"],
    "import": ["import", "alpha", "codesess_1", "{m}"],
    "import --write": ["import", "alpha", "codesess_1", "{m}", "--write"],
    "forget": ["forget", "alpha", "{m}", "--yes"],
    "sessions list": ["sessions", "list"],
    "sessions get": ["sessions", "get", "codesess_1"],
    "sessions create": ["sessions", "create", "--task", "t"],
    "sessions update": ["sessions", "update", "codesess_1", "--label", "x"],
    "sessions archive": ["sessions", "archive", "codesess_1"],
    "sessions resume": ["sessions", "resume", "codesess_1"],
    "sessions delete": ["sessions", "delete", "codesess_1", "--yes"],
    "sessions loop": ["sessions", "loop", "codesess_1"],
    "sessions replay": ["sessions", "replay", "codesess_1"],
    "sessions participants": ["sessions", "participants", "codesess_1"],
    "sessions events": ["sessions", "events", "codesess_1"],
    "users": ["users"],
    "discover": ["discover"],
}
NEEDS_NO_HUB = {"validate", "schema", "show", "hub serve"}


def test_the_table_covers_every_command() -> None:
    def names(group: click.Group, prefix: str = "") -> set[str]:
        found: set[str] = set()
        for name, command in subcommands(group).items():
            if isinstance(command, click.Group):
                found |= names(command, f"{prefix}{name} ")
            else:
                found.add(prefix + name)
        return found

    listed = {name.split(" --")[0] for name in NEEDS_A_HUB} | NEEDS_NO_HUB
    assert names(cli) == listed


NO_HUB = (
    "error: no hub configured: set CODER_API_URL (or --api-url URL) and AGENTUITY_SDK_KEY "
    "to use the Coder API, or pass `--api-url local` (or set CODER_API_URL=local) to use "
    "the embedded hub\n"
)
NO_TOKEN = (
    "error: no API token for https://api.test: set AGENTUITY_SDK_KEY (the token is never a "
    "flag), or pass `--api-url local` (or set CODER_API_URL=local) to use the embedded hub\n"
)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, NO_HUB),
        ({"CI": "true"}, NO_HUB),
        ({"AGENTUITY_ORG_ID": "org_1"}, NO_HUB),
        ({"CODER_API_URL": "https://api.test"}, NO_TOKEN),
    ],
)
@pytest.mark.parametrize("command", NEEDS_A_HUB)
def test_no_hub_configured_exits_64_naming_both_ways_and_creates_nothing(
    command: str,
    environ: dict[str, str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "all.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: p\n---\n"
        "apiVersion: reconciler/v1\nkind: Session\nname: alpha\nspec: {task: t}\n"
    )
    assert run(["--api-url", "local", "--local-db", str(tmp_path / "made.sqlite3"), "plan",
                str(manifests), "--out", str(manifests / "plan.json")]) == 0  # fmt: skip
    (tmp_path / "made.sqlite3").unlink()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    before = sorted(tmp_path.rglob("*"))

    async def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("watch started its loop without a hub")  # it would run forever

    monkeypatch.setattr(watch_cli, "run_watch", never)
    capsys.readouterr()
    argv = [arg.replace("{m}", str(manifests)) for arg in NEEDS_A_HUB[command]]
    assert run(argv) == 64
    out, err = capsys.readouterr()
    assert out == ""
    assert err == message
    assert sorted(tmp_path.rglob("*")) == before  # no .reconciler/, no database, no file


def test_a_new_local_database_is_announced_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["--api-url", "local", "sessions", "list"]) == 0
    out, err = capsys.readouterr()
    assert out == "(no sessions)\n"
    db = tmp_path / ".reconciler" / "hub.sqlite3"
    banner = (
        f"reconciler: using the embedded local hub ({db}, no database there yet: its "
        "first request makes one, empty)"
    )
    assert err.splitlines() == [banner, "0 of 0 sessions"]
    assert db.exists()
    monkeypatch.setenv("CODER_API_URL", "local")
    monkeypatch.setenv("CI", "true")  # explicit local is fine in CI
    assert run(["users"]) == 0
    assert "embedded local hub" not in capsys.readouterr().err  # it exists now: no banner


def test_remote_without_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--api-url", "http://127.0.0.1:9", "discover"]) == 64
    assert "AGENTUITY_SDK_KEY" in capsys.readouterr().err


def test_wrong_token_is_unauthorized(
    served_hub: HubProcess,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = served_hub.url
    canary = "canary-wrong-token-91b2"
    monkeypatch.setenv("AGENTUITY_SDK_KEY", canary)
    assert run(["-vv", "--api-url", url, "sessions", "list"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: GET /hub/sessions HTTP 401")
    assert canary not in out + err


@pytest.mark.parametrize(
    "args",
    [
        ["users", "--help"],
        ["discover", "--help"],
        ["sessions", "--help"],
        *(
            ["sessions", name, "--help"]
            for name in (
                "list",
                "get",
                "create",
                "update",
                "archive",
                "resume",
                "delete",
                "loop",
                "replay",
                "participants",
                "events",
            )
        ),  # fmt: skip
    ],
)
def test_every_command_has_help(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "Usage: reconciler" in out
    summary = out.split("\n\n")[1].strip()
    assert summary and "not available" not in summary.lower()
    assert "--format" in out or args[-2] == "sessions"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sessions", "list", "--all", "--limit", "5"], "--all"),
        (["sessions", "update", "s1"], "nothing to update"),
        (["sessions", "create", "--label", "x"], "--task is required"),
        (["sessions", "list", "--limit", "0"], "--limit"),
        (["sessions", "list", "--format", "yaml"], "--format"),
    ],
)
def test_usage_errors(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "hub.sqlite3")
    assert run(["--api-url", "local", "--local-db", db, *args]) == 64
    assert needle in capsys.readouterr().err


def test_bad_json_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "body.json"
    bad.write_text('{"task": ')
    db = str(tmp_path / "hub.sqlite3")
    code = run(
        ["--api-url", "local", "--local-db", db, "sessions", "create", "--from-json", str(bad)]
    )
    assert code == 64
    assert f"--from-json {bad}:1:10: not JSON" in capsys.readouterr().err
    bad.write_text("[1]")
    assert (
        run(
            [
                "--api-url",
                "local",
                "--local-db",
                db,
                "sessions",
                "update",
                "s",
                "--skills-json",
                str(bad),
            ]
        )
        == 1
    )
    capsys.readouterr()


def test_a_command_that_stops_before_any_request_announces_no_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invalid manifests stop plan and apply before any request: the embedded hub's
    database is neither made nor announced (the banner said a request would make it)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: x\nspec: {task: t, visibility: nope}\n"
    )
    for command in (["plan"], ["apply", "--yes"], ["status"]):
        assert run(["--api-url", "local", *command, "bad.yaml"]) == 65
        err = capsys.readouterr().err
        assert "embedded local hub" not in err and "nope" in err, err
    assert not (tmp_path / ".reconciler" / "hub.sqlite3").exists()


@pytest.mark.subprocess
def test_watch_announces_a_new_database_as_a_record_of_its_log(tmp_path: Path) -> None:
    """The banner is said when the first reconcile opens the database, after the log
    began: in the log's own format, so `--log-format json` stays one JSON object per
    line."""
    import json
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "p.yaml").write_text("apiVersion: reconciler/v1\nkind: Project\nname: p\n")
    log = tmp_path / "watch.log"
    argv = [sys.executable, "-m", "reconciler", "--api-url", "local", "watch", "w"]
    argv += ["--interval", "60", "--log-format", "json"]
    with log.open("w") as stderr:
        process = subprocess.Popen(argv, cwd=tmp_path, stderr=stderr, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while '"event": "reconcile"' not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(r.get("event") == "reconcile" for r in records), records
    [said] = [r for r in records if "no database there yet" in r["message"]]
    assert said["logger"] == "reconciler.watch"
