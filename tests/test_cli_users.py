"""`reconciler users` and `reconciler discover` against the local hub, in-process and
over a socket; endpoint errors at the CLI boundary."""

from __future__ import annotations

from pathlib import Path

import pytest
from clihub import CliHub, hub_fixture  # noqa: F401 - fixtures
from hubproc import HubProcess

from reconciler.cli.main import run


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


def test_implicit_local_is_announced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["sessions", "list"]) == 0
    out, err = capsys.readouterr()
    assert out == "(no sessions)\n"
    db = tmp_path / ".reconciler" / "hub.sqlite3"
    assert err.count(f"using the embedded local hub ({db}, created now: no sessions yet)") == 1
    assert (tmp_path / ".reconciler" / "hub.sqlite3").exists()


def test_implicit_local_refused_in_ci(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "true")
    assert run(["users"]) == 64
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: no endpoint configured and CI=true")
    assert "--api-url local" in err
    assert not (tmp_path / ".reconciler").exists()
    assert run(["--api-url", "local", "users"]) == 0  # explicit local is fine in CI


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
