"""Contract suite: every `reconciler sessions` command against the local hub, in-process
(`--api-url local`) and over a real socket (`reconciler hub serve` as a subprocess)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clihub import CliHub, hub_fixture, unique  # noqa: F401 - fixtures

from reconciler.cli import sessions as sessions_cli
from reconciler.cli.main import run
from reconciler.masking import SENSITIVE


def test_create_get_list(hub: CliHub) -> None:
    word = unique()
    code, out, err = hub.run(
        "sessions", "create", "--task", f"Triage {word}", "--label", f"L {word}",
        "--agent", "claude-code", "--visibility", "org", "--tag", "t1", "--tag", "t2",
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("sessionId   codesess_")
    session_id = lines[0].split()[1]
    assert "visibility  organization" in lines

    listed = hub.ok("sessions", "list", "--search", word)
    assert listed.splitlines() == [
        f"SESSION{' ' * (len(session_id) - 5)}STATUS  WORKFLOW  VISIBILITY    AGENT        LABEL"
        f"{' ' * (len(word) - 1)}TAGS",
        f"{session_id}  active  standard  organization  claude-code  L {word}  t1, t2",
    ]

    shown = hub.ok("sessions", "get", session_id)
    assert f"task            Triage {word}" in shown.splitlines()
    assert "owner           " in shown

    raw = hub.json("sessions", "get", session_id)
    assert raw["sessionId"] == session_id
    assert raw["defaultAgent"] == "claude-code"
    assert "runtimeAvailable" in raw or "task" in raw  # the response as is


def test_list_paging_and_all(hub: CliHub) -> None:
    word = unique()
    ids = [hub.create("--task", f"{word} {i}") for i in range(3)]
    page = hub.json("sessions", "list", "--search", word, "--limit", "2", "--offset", "1")
    assert page["total"] == 3
    assert [s["sessionId"] for s in page["sessions"]["websocket"]] == ids[::-1][1:]
    every = hub.json("sessions", "list", "--search", word, "--all")
    assert {s["sessionId"] for s in every["sessions"]["websocket"]} == set(ids)
    code, _out, err = hub.run("sessions", "list", "--search", word, "--limit", "1")
    assert code == 0 and err.splitlines()[-1] == "1-1 of 3 sessions"


def test_archived_only_with_include_archived(hub: CliHub) -> None:
    word = unique()
    session_id = hub.create("--task", word)
    assert hub.ok("sessions", "archive", session_id).splitlines() == [
        f"sessionId  {session_id}",
        "status     archived",
    ]
    assert hub.json("sessions", "list", "--search", word)["sessions"]["websocket"] == []
    page = hub.json("sessions", "list", "--search", word, "--include-archived")
    assert [s["status"] for s in page["sessions"]["websocket"]] == ["archived"]
    assert hub.ok("sessions", "list", "--search", word) == "(no sessions)\n"


def test_update(hub: CliHub, tmp_path: Path) -> None:
    session_id = hub.create("--task", unique(), "--tag", "old")
    skills = tmp_path / "skills.json"
    skills.write_text(json.dumps([{"skillId": "gh-triage", "repo": "acme/skills"}]))
    out = hub.ok(
        "sessions", "update", session_id, "--label", "New", "--visibility", "collab",
        "--tags", "a, b,", "--skills-json", str(skills), "--agent", "codex",
    )  # fmt: skip
    assert out.splitlines() == [
        f"sessionId     {session_id}",
        "label         New",
        "visibility    collaborate",
        "defaultAgent  codex",
        "tags          a, b",
        "skills        gh-triage",
    ]
    assert hub.json("sessions", "update", session_id, "--tags", "")["tags"] == []


def test_update_tags_keeps_marker_tags_unless_dropped(hub: CliHub) -> None:
    marker, foreign = "reconciler:team/api@0123456789ab", "reconciler:other/x@ffffffffffff"
    session_id = hub.create("--task", unique(), "--tag", "old", "--tag", marker, "--tag", foreign)
    code, out, err = hub.run("sessions", "update", session_id, "--tags", "a,b", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["tags"] == ["a", "b", marker, foreign]
    assert "removing" not in err
    assert hub.json("sessions", "update", session_id, "--tags", "")["tags"] == [marker, foreign]
    code, out, err = hub.run("sessions", "update", session_id, "--drop-marker", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["tags"] == []
    assert err.splitlines() == [f"removing marker tag {marker}", f"removing marker tag {foreign}"]


def test_update_tags_refuses_the_tools_own_tags_before_any_request(hub: CliHub) -> None:
    # The full list as `sessions get` shows it, plus one: the applied record holds commas,
    # which --tags splits on; its pieces must never become tags of their own.
    marker = "reconciler:team/api@0123456789ab"
    record = "reconciler:applied:team=label.8463f5,tags.0eb5b8,preventDestroy.0"
    session_id = hub.create("--task", unique(), "--tag", "a", "--tag", marker, "--tag", record)
    code, _, err = hub.run("sessions", "update", session_id, "--tags", f"a,{marker},{record},b")
    assert code == 64, err
    assert "leave out the reconciler: tags" in err
    assert hub.json("sessions", "get", session_id)["tags"] == ["a", marker, record]


def test_a_managed_session_retagged_by_hand_is_updated_not_duplicated(
    hub: CliHub, tmp_path: Path
) -> None:
    project = unique("p")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "s.yaml").write_text(
        f"apiVersion: reconciler/v1\nkind: Project\nname: {project}\n---\n"
        "apiVersion: reconciler/v1\nkind: Session\nname: api\n"
        f"lifecycle: {{preventDestroy: true}}\nspec: {{task: Keep {project}, tags: [mine]}}\n"
    )
    assert "1 to create" in hub.ok("apply", "--yes", str(tmp_path / "m"))
    [session] = hub.json("sessions", "list", "--search", project, "--all")["sessions"]["websocket"]
    hub.ok("sessions", "update", session["sessionId"], "--tags", "by-hand")
    plan = hub.ok("plan", str(tmp_path / "m"))
    assert "0 to create, 1 to update" in plan and "drift: tags" in plan


def test_resume_a_paused_session(hub: CliHub) -> None:
    session_id = hub.create("--task", unique())
    hub.admin(session_id, {"status": "paused"})
    result = hub.json("sessions", "resume", session_id)
    assert result["sessionId"] == session_id
    assert result.get("status") in {"active", "resuming"}


def test_resume_an_archived_session_is_a_conflict(hub: CliHub) -> None:
    session_id = hub.create("--task", unique())
    hub.ok("sessions", "archive", session_id)
    code, out, err = hub.run("sessions", "resume", session_id)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: POST /hub/session/{session_id}/resume HTTP 409 ")
    assert "CODER_SESSION_ARCHIVED" in err


def test_delete(hub: CliHub) -> None:
    session_id = hub.create("--task", unique())
    code, _out, err = hub.run("sessions", "delete", session_id)
    assert code == 64 and "--yes" in err  # no terminal to ask on
    out = hub.ok("sessions", "delete", session_id, "--yes")
    assert out.splitlines()[0] == f"sessionId  {session_id}"
    code, out, err = hub.run("sessions", "get", session_id)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: GET /hub/session/{session_id} HTTP 404 CODER_SESSION_NOT_FOUND")


def test_delete_asks_on_a_terminal(hub: CliHub, monkeypatch: pytest.MonkeyPatch) -> None:
    session_id = hub.create("--task", unique())
    monkeypatch.setattr(sessions_cli, "_interactive", lambda: True)
    monkeypatch.setattr("sys.stdin", _Input("n\n"))
    code, out, err = hub.run("sessions", "delete", session_id)
    assert (code, out) == (0, "")  # declining is not an error (apply does the same)
    assert "Not deleted; nothing changed." in err
    hub.ok("sessions", "get", session_id)  # still there
    monkeypatch.setattr("sys.stdin", _Input("y\n"))
    assert hub.run("sessions", "delete", session_id)[0] == 0


def test_delete_says_which_project_manages_the_session(
    hub: CliHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker, guard = "reconciler:team/web@0123456789ab", "reconciler:protected:team"
    managed = hub.create("--task", unique(), "--tag", marker, "--tag", guard)
    plain_ = hub.create("--task", unique())
    monkeypatch.setattr(sessions_cli, "_interactive", lambda: True)
    monkeypatch.setattr("sys.stdin", _Input("n\n"))
    _code, _out, err = hub.run("sessions", "delete", managed)
    assert (
        f"Delete session {managed} permanently? It is managed by team as web, which "
        "protects it (preventDestroy): the next apply of manifests that still declare it "
        "creates it again."
    ) in err
    monkeypatch.setattr("sys.stdin", _Input("n\n"))
    _code, _out, err = hub.run("sessions", "delete", plain_)
    assert f"Delete session {plain_} permanently? [y/N]" in err
    # Archived, it is not live either way: no plan makes it again for its deletion.
    hub.ok("sessions", "archive", managed)
    monkeypatch.setattr("sys.stdin", _Input("n\n"))
    _code, _out, err = hub.run("sessions", "delete", managed)
    assert "protects it (preventDestroy). [y/N]" in err
    # No such session: refused before any question, as the delete would be.
    monkeypatch.setattr("sys.stdin", _Input("y\n"))
    code, _out, err = hub.run("sessions", "delete", "codesess_nope")
    assert code == 1 and "HTTP 404" in err and "permanently?" not in err
    # --yes asks nothing: the same is said once it is done.
    again = hub.create("--task", unique(), "--tag", marker, "--tag", guard)
    code, _out, err = hub.run("sessions", "delete", again, "--yes")
    assert code == 0
    assert err == (
        f"note: deleted {again}. It was managed by team as web, which protected it "
        "(preventDestroy): the next apply of manifests that still declare it creates it "
        "again.\n"
    )
    code, _out, err = hub.run("sessions", "delete", "codesess_nope", "--yes")
    assert code == 1 and err.count("HTTP 404") == 1 and "note:" not in err
    # Another project's protection tag is not its owner's protection.
    other = hub.create("--task", unique(), "--tag", marker, "--tag", "reconciler:protected:ops")
    code, _out, err = hub.run("sessions", "delete", other, "--yes")
    assert code == 0
    assert err == (
        f"note: deleted {other}. It was managed by team as web: the next apply of manifests "
        "that still declare it creates it again.\n"
    )


def test_loop_replay_events_participants(hub: CliHub, tmp_path: Path) -> None:
    word = unique()
    body = {"workflowMode": "loop", "loop": {"goal": "g"}}
    session_id = hub.create("--task", word, "--from-json", _write(tmp_path, body))
    loop = hub.ok("sessions", "loop", session_id).splitlines()
    assert loop[:4] == [
        f"sessionId      {session_id}",
        "workflowMode   loop",
        "status         running",
        "iteration      0",
    ]
    assert "goal           g" in loop
    assert hub.json("sessions", "loop", session_id)["loop"]["status"] == "running"

    events = hub.ok("sessions", "events", session_id).splitlines()
    assert events[0].split() == ["ID", "OCCURRED", "CATEGORY", "EVENT", "AGENT", "TASK"]
    assert any("session_created" in line for line in events[1:])
    newest = hub.json("sessions", "events", session_id, "--limit", "1")["events"]
    assert len(newest) == 1
    older = hub.json("sessions", "events", session_id, "--before-id", str(newest[0]["id"]))
    assert all(e["id"] < newest[0]["id"] for e in older["events"])

    replay = hub.ok("sessions", "replay", session_id).splitlines()
    assert replay[0].startswith("entriesSource  ")
    assert any(word in line for line in replay)
    assert "entries" in hub.json("sessions", "replay", session_id)

    assert hub.ok("sessions", "participants", session_id) == "(no participants)\n"
    everyone = hub.ok("sessions", "participants", session_id, "--include-disconnected")
    assert everyone.splitlines()[1].split()[1:3] == ["lead", "ws"]
    hub.admin(session_id, {"connectParticipant": "user_x"})
    live = hub.json("sessions", "participants", session_id, "--limit", "5")
    assert [p["id"] for p in live["participants"]] == ["user_x"]


def test_loop_of_a_standard_session(hub: CliHub) -> None:
    session_id = hub.create("--task", unique())
    assert "loop          (not a loop session)" in hub.ok("sessions", "loop", session_id)


@pytest.mark.parametrize(
    "command",
    ["get", "archive", "resume", "loop", "replay", "participants", "events", "update"],
)
def test_unknown_session_exits_1(hub: CliHub, command: str) -> None:
    extra = ("--label", "x") if command == "update" else ()
    code, out, err = hub.run("sessions", command, "codesess_nope", *extra)
    assert (code, out) == (1, "")
    assert err.startswith("error: ") and "HTTP 404" in err
    assert len(err.splitlines()) == 1


def test_short_env_values_leave_the_answer_readable(hub: CliHub, tmp_path: Path) -> None:
    # Values too short to look for in other text ("1", "a") must not mask ids, keys
    # or the (sensitive) marker itself: a script reads the new session's id.
    env = {"DEBUG": "1", "MODE": "a", "LEVEL": "debug", "STATE": "active", "T": "sandbox"}
    body = {"task": unique(), "env": env}
    created = hub.json("sessions", "create", "--from-json", _write(tmp_path, body))
    assert created["sessionId"].startswith("codesess_") and SENSITIVE not in created["sessionId"]
    assert created["status"] == "active" and created["mode"] == "sandbox"
    assert SENSITIVE not in json.dumps(created)  # the local hub echoes nothing of env


def test_env_values_are_never_shown(hub: CliHub, tmp_path: Path) -> None:
    secret = unique("s3cr3t")
    body = {"env": {"K": secret}}
    session_id = hub.create("--task", unique(), "--from-json", _write(tmp_path, body))
    shown = hub.ok("sessions", "get", session_id)
    raw = hub.ok("sessions", "get", session_id, "--format", "json")
    assert secret not in shown + raw
    assert json.loads(raw)["env"] == {"K": "(sensitive)"}


def test_env_values_a_hub_echoes_are_masked_in_create_list_and_update(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hub that answers with the whole session, env included (or env as text).
    from asgiserve import serve_app
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    secret = "canaryECHO-51bd"
    item = {"sessionId": "codesess_1", "task": "t", "status": "active", "tags": []}

    async def create(request: Request) -> JSONResponse:
        sent = await request.json()
        # Echoed beyond env too: in the task, in metadata (a key and a value), escaped.
        echo = json.dumps(sent["env"])
        metadata = {"note": f"created with {echo}", secret: "as a key"}
        return JSONResponse({**item, **sent, "task": f"t {echo}", "metadata": metadata})

    async def patch(request: Request) -> JSONResponse:
        return JSONResponse({**item, "env": secret})

    async def listing(request: Request) -> JSONResponse:
        page = {"websocket": [{**item, "env": {"K": secret}}], "sandbox": []}
        return JSONResponse({"sessions": page, "total": 1})

    routes = [
        Route("/hub/session", create, methods=["POST"]),
        Route("/hub/session/codesess_1", patch, methods=["PATCH"]),
        Route("/hub/sessions", listing, methods=["GET"]),
    ]
    with serve_app(Starlette(routes=routes)) as url:
        argv = ["--api-url", url]
        monkeypatch.setenv("AGENTUITY_SDK_KEY", "k")
        body = _write(tmp_path, {"task": "t", "env": {"K": secret}})
        for command in (
            ["sessions", "create", "--from-json", body, "--format", "json"],
            ["sessions", "list", "--format", "json"],
            ["sessions", "list"],
            ["sessions", "update", "codesess_1", "--label", "x", "--format", "json"],
        ):
            assert run([*argv, *command]) == 0, command
            captured = capsys.readouterr()
            assert secret not in captured.out + captured.err, command
            assert "(sensitive)" in captured.out or command == ["sessions", "list"]
    # A number is no env value: refused before any request.
    assert (
        run(
            [
                "--api-url",
                "local",
                "--local-db",
                str(tmp_path / "h.db"),
                "sessions",
                "create",
                "--from-json",
                _write(tmp_path, {"task": "t", "env": {"PIN": 987654321}}),
            ]
        )
        == 64
    )
    assert "--from-json: `env` must be an object of strings" in capsys.readouterr().err


def _write(directory: Path, body: dict[str, Any]) -> str:
    target = directory / f"{unique('body')}.json"
    target.write_text(json.dumps(body))
    return str(target)


class _Input:
    """A stdin with an answer in it (click.confirm reads a line)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines(keepends=True)

    def readline(self) -> str:
        return self.lines.pop(0) if self.lines else ""

    def isatty(self) -> bool:
        return True


def test_create_from_json_flags_override(hub: CliHub, tmp_path: Path) -> None:
    body = {"task": "from file", "label": "file label", "tags": ["f"], "metadata": {"k": 1}}
    session_id = hub.create("--from-json", _write(tmp_path, body), "--label", "flag label")
    got = hub.json("sessions", "get", session_id)
    assert (got["task"], got["label"], got["tags"]) == ("from file", "flag label", ["f"])
    assert got["metadata"]["k"] == 1


def test_every_call_is_logged_without_the_token(
    hub: CliHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    session_id = hub.create("--task", unique())
    hub.run("-vv", "sessions", "get", session_id)
    hub.run("-vv", "sessions", "get", "codesess_missing")
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("reconciler")]
    assert f"GET /hub/session/{session_id} -> 200" in " ".join(messages)
    token = hub.token
    assert all(token not in m for m in messages)


@pytest.mark.parametrize(
    "argv",
    [
        ["sessions", "get", "sessions/"],
        ["sessions", "archive", "../x"],
        ["import", "alpha", "a b"],
        # re.match's `$` matches before a trailing newline: the id would go out as %0A.
        ["sessions", "get", "codesess_abc\n"],
        ["sessions", "delete", "_x"],
        ["sessions", "get", "x" * 129],
    ],
)
def test_what_is_not_a_session_id_is_refused_before_any_request(
    argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "hub.sqlite3"
    assert run(["--api-url", "local", "--local-db", str(db), *argv]) == 64
    assert "is not a session id" in capsys.readouterr().err
    assert not db.exists()


def test_a_lone_surrogate_is_refused_in_a_payload_and_escaped_in_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from reconciler.render.values import json_text

    payload = tmp_path / "body.json"
    payload.write_text('{"task": "x\\ud800y"}')  # valid JSON, no UTF-8 can carry it
    db = tmp_path / "hub.sqlite3"
    argv = ["--api-url", "local", "--local-db", str(db), "sessions", "create"]
    assert run([*argv, "--from-json", str(payload)]) == 64
    assert "holds a lone surrogate" in capsys.readouterr().err
    # A hub that sends one: shown as an escape, never a crash on the way out.
    shown = json_text({"label": "x\ud800y"})
    assert json.loads(shown)["label"] == "x\ud800y" and shown.encode("utf-8")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"task": "x", "loop": {"maxIterations": NaN}}', "NaN is not a JSON number"),
        ('{"task": "x", "n": -Infinity}', "-Infinity is not a JSON number"),
        ('{"task": "x", "n": 1e400}', "a number too large for JSON"),
        ('{"task": "x", "n": ' + "9" * 5000 + "}", "an integer of 5000 digits"),
        ('{"task": "x", "m": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        # Past what the hub takes (at about 975 levels httpx's encoder failed: a traceback).
        ('{"task": "x", "m": ' + "[" * 200 + "]" * 200 + "}", "nested more than"),
    ],
)
def test_a_payload_no_json_request_can_carry_is_a_usage_error(
    text: str, said: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Python's json reads each of these; httpx then could not send it (a traceback), or
    # reading it raised an error no handler expected.
    payload = tmp_path / "body.json"
    payload.write_text(text)
    db = tmp_path / "hub.sqlite3"
    argv = ["--api-url", "local", "--local-db", str(db), "sessions", "create"]
    assert run([*argv, "--from-json", str(payload)]) == 64
    assert said in capsys.readouterr().err
    assert not db.exists()  # refused before any request
    skills = tmp_path / "skills.json"
    skills.write_text(f'[{{"skillId": "s", "repo": "r", "n": {text}}}]')
    assert run([*argv[:-1], "update", "codesess_x", "--skills-json", str(skills)]) == 64
    assert said in capsys.readouterr().err


def test_a_payload_may_start_with_a_byte_order_mark(tmp_path: Path) -> None:
    payload = tmp_path / "body.json"
    payload.write_text('\ufeff{"task": "from an editor that writes a BOM"}', encoding="utf-8")
    db = tmp_path / "hub.sqlite3"
    argv = ["--api-url", "local", "--local-db", str(db), "sessions", "create"]
    assert run([*argv, "--from-json", str(payload)]) == 0


def test_an_argument_or_file_that_is_not_utf8_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Bytes that are not UTF-8 reach Python as lone surrogates (an argument) or fail to
    # decode (a file): a usage error, where each was a traceback.
    payload = tmp_path / "bad.json"
    payload.write_bytes(b'{"task": "a\xffb"}')
    argv = ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3"), "sessions"]
    for args in (["create", "--from-json", str(payload)], ["create", "--task", "a\udcffb"]):
        assert run([*argv, *args]) == 64
        assert "is not valid UTF-8 text" in capsys.readouterr().err
    from reconciler.textsafe import escape_controls

    # Runs of supplementary variation selectors hide bytes after a character.
    assert escape_controls("😀\U000e0101\U000e0102 x") == "😀\\U000e0101\\U000e0102 x"


def test_a_search_no_url_can_carry_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # httpx refuses a query past 65,536 characters with InvalidURL, no HTTPError: it was a
    # traceback.
    argv = ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3")]
    assert run([*argv, "sessions", "list", "--search", "x" * 70_000]) == 64
    assert "GET /hub/sessions: cannot be sent: URL component 'query' too long" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(("lost", "hinted"), [(True, True), (False, False)])
def test_a_create_whose_outcome_is_unknown_says_to_look_before_creating_again(
    lost: bool,
    hinted: bool,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from reconciler.client import CoderClient
    from reconciler.errors import ConnectFailedError, TransportError

    kind = TransportError if lost else ConnectFailedError

    async def fails(self: CoderClient, body: Any) -> dict[str, Any]:
        error = kind("connection dropped", method="POST", path="/hub/session")
        error.may_have_taken_effect = lost  # as the client decides it (test_client_retry)
        raise error

    monkeypatch.setattr(CoderClient, "create_session", fails)
    argv = ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3")]
    assert run([*argv, "sessions", "create", "--task", "t"]) == 1
    err = capsys.readouterr().err
    assert "error: POST /hub/session: connection dropped" in err
    # A connection never made sent nothing: no hint to look for what cannot exist.
    hint = "hint: the hub may have done it all the same: `reconciler sessions list` (a create)"
    assert (hint in err) is hinted


def test_flag_values_the_api_refuses_are_usage_errors_before_any_request(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Each went to the hub and came back a 400 (exit 1); bad flags are exit 64.
    db = tmp_path / "hub.sqlite3"
    argv = ["--api-url", "local", "--local-db", str(db), "sessions"]
    for args in (
        ["create", "--task", "x", "--visibility", "team"],
        ["update", "codesess_x", "--visibility", "bogus"],
        ["events", "codesess_x", "--before-id", "-5"],
    ):
        assert run([*argv, *args]) == 64, args
        assert "Invalid value for" in capsys.readouterr().err
    assert not db.exists()
    # Any case of a value or an alias is the value (ORG was a 400 where org worked).
    assert run([*argv, "create", "--task", "x", "--visibility", "ORG"]) == 0
    assert "visibility  organization" in capsys.readouterr().out


def test_a_task_that_is_no_string_is_said_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    payload = tmp_path / "body.json"
    payload.write_text('{"task": 5}')
    argv = ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3")]
    assert run([*argv, "sessions", "create", "--from-json", str(payload)]) == 64
    assert "--from-json: `task` must be a string" in capsys.readouterr().err


def test_a_change_whose_outcome_is_unknown_says_how_to_look_and_a_read_does_not(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from reconciler.client import CoderClient
    from reconciler.errors import TransportError

    async def lost_archive(self: CoderClient, session_id: str) -> dict[str, Any]:
        error = TransportError("connection dropped", method="POST", path="/hub/session/x/a")
        error.may_have_taken_effect = True  # as the client decides it (test_client_retry)
        raise error

    async def lost_get(self: CoderClient, session_id: str) -> dict[str, Any]:
        error = TransportError("connection dropped", method="GET", path="/hub/session/x")
        error.may_have_taken_effect = True
        raise error

    monkeypatch.setattr(CoderClient, "archive_session", lost_archive)
    monkeypatch.setattr(CoderClient, "get_session", lost_get)
    argv = ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3"), "sessions"]
    assert run([*argv, "archive", "codesess_x"]) == 1
    assert "hint: the hub may have done it all the same" in capsys.readouterr().err
    assert run([*argv, "get", "codesess_x"]) == 1
    assert "hint:" not in capsys.readouterr().err


def test_a_hub_echoing_env_values_anywhere_in_create_shows_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long values wherever echoed (nested under another env, as a number, as keys: no
    # entry lost); short ones wherever they stand alone in text; and what the hub fills
    # itself (an id, a status, a count), or the request sent in the open (a branch),
    # left as it is when a short value happens to equal it.
    from asgiserve import serve_app
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    env = {"PW": "hunter2", "PIN": "4711", "X": "abcdefgh", "Y": "zyxwvuts", "D": "1"}
    env |= {"STATE": "active", "BRANCH": "main", "SEP": "-", "K": "status"}

    async def create(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "sessionId": "codesess_ab-1",
                "status": "active",
                "participantCount": 1,
                "repo": {"fullName": "o/r", "branch": "main"},
                "task": "refused: DEBUG=1 and PW=hunter2 on main - re-deploy",
                "error": "env PW=hunter2 PIN=4711",
                "sandbox": {"env": {"PW": "hunter2"}, "command": "run PW=hunter2"},
                "metadata": {"echo": ["abcdefgh"], "pin": 4711, "abcdefgh": 1, "zyxwvuts": 2},
                "workspace": {"id": "ws-1", "name": "ws-1"},
                "loop": {"iteration": 1, "maxIterations": 1},
                "notes": {"PW=hunter2": True},
                "pinAsFloat": 4711.0,
            }
        )

    with serve_app(Starlette(routes=[Route("/hub/session", create, methods=["POST"])])) as url:
        monkeypatch.setenv("AGENTUITY_SDK_KEY", "k")
        request = {"task": "t", "repo": {"fullName": "o/r", "branch": "main"}, "env": env}
        body = _write(tmp_path, request)
        argv = ["--api-url", url, "sessions", "create", "--from-json", body, "--format", "json"]
        assert run(argv) == 0
        out = capsys.readouterr().out
    shown = json.loads(out)
    for secret in ("hunter2", "4711", "abcdefgh", "zyxwvuts"):
        assert secret not in out
    assert shown["sessionId"] == "codesess_ab-1" and shown["status"] == "active"
    assert shown["participantCount"] == 1 and shown["repo"]["branch"] == "main"
    assert shown["task"] == (
        f"refused: DEBUG={SENSITIVE} and PW={SENSITIVE} on main {SENSITIVE} re-deploy"
    )
    assert shown["error"] == f"env PW={SENSITIVE} PIN={SENSITIVE}"
    assert shown["sandbox"] == {"env": {"PW": SENSITIVE}, "command": f"run PW={SENSITIVE}"}
    metadata = shown["metadata"]
    assert metadata["pin"] == SENSITIVE and metadata["echo"] == [SENSITIVE]
    assert len(metadata) == 4
    assert shown["workspace"] == {"id": "ws-1", "name": "ws-1"}
    assert shown["loop"] == {"iteration": 1, "maxIterations": 1}
    assert shown["notes"] == {f"PW={SENSITIVE}": True}
    assert shown["pinAsFloat"] == SENSITIVE  # 4711 turned into a float by the hub
    assert "status" in shown  # a field's name is no echo of K=status


def test_delete_yes_reads_once_for_its_note_then_deletes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read before ``delete --yes`` is only for the note: a hub failing it is not
    asked again (the delete, with its own retries, is what was asked), and no note."""
    from asgiserve import serve_app
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    seen: list[str] = []

    async def session(request: Request) -> Response:
        seen.append(request.method)
        if request.method == "GET":
            return JSONResponse({"error": "busy"}, status_code=503)
        return JSONResponse({"sessionId": "codesess_1", "status": "deleted"})

    route = Route("/hub/session/codesess_1", session, methods=["GET", "DELETE"])
    with serve_app(Starlette(routes=[route])) as url:
        monkeypatch.setenv("AGENTUITY_SDK_KEY", "k")
        assert run(["--api-url", url, "sessions", "delete", "codesess_1", "--yes"]) == 0
    assert seen == ["GET", "DELETE"]
    assert "note:" not in capsys.readouterr().err


def test_delete_asks_the_plain_question_when_the_hub_fails_to_answer_the_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from asgiserve import serve_app
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    answers: list[Response] = [
        JSONResponse({"error": "boom"}, status_code=500),
        HTMLResponse("<html>maintenance</html>"),  # 200, but no session
    ]

    async def session(request: Request) -> Response:
        if request.method == "GET":
            return answers.pop(0)
        return JSONResponse({"sessionId": "codesess_1", "status": "deleted"})

    route = Route("/hub/session/codesess_1", session, methods=["GET", "DELETE"])
    with serve_app(Starlette(routes=[route])) as url:
        monkeypatch.setenv("AGENTUITY_SDK_KEY", "k")
        monkeypatch.setattr(sessions_cli, "_interactive", lambda: True)
        for _ in range(2):
            monkeypatch.setattr("sys.stdin", _Input("n\n"))
            assert run(["--api-url", url, "sessions", "delete", "codesess_1"]) == 0
            err = capsys.readouterr().err
            assert "warning: could not read the session first (GET /hub/session/codesess_1" in err
            assert "Delete session codesess_1 permanently? [y/N]" in err
