"""Secrets never leak: every command, run with a canary token and canary env values.

The API token (AGENTUITY_SDK_KEY) and the values of the variables referenced under
`env` are canaries. Every command is run against a served hub that knows the canary
token, at -vv so every request is logged, and stdout, stderr, captured log records,
saved plan files, exported manifests and the watcher's log are scanned: no canary may
appear, nor in any field the hub stores but `env`. A hub that echoes the refused
request in its error text (some services do) is masked the same way. A reference that
would put a secret into a field the whole organisation reads is refused by validate.
"""

from __future__ import annotations

import html
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from asgiserve import serve_app
from hubproc import start_hub, stop_process, until

from reconciler.cli.main import run
from reconciler.hub.app import create_app
from reconciler.hub.config import HubConfig, TokenGrant
from reconciler.masking import SENSITIVE

CANARY_TOKEN = "canaryTOKEN-4f1d9b7e2a"
CANARY_ENV = "canaryENV-8c2e61d0ab"
CANARY_ENV_2 = "canaryENV2-3b9f70c1de"
CANARIES = (CANARY_TOKEN, CANARY_ENV, CANARY_ENV_2)
ORG, USER = "org_secrets", "user_secrets"

PROJECT = """\
apiVersion: reconciler/v1
kind: Project
name: secrets
policy: {prune: archive, maxDestroyPercent: 100, protectLive: false}
"""
SESSION = """\
---
apiVersion: reconciler/v1
kind: Session
name: {name}
spec:
  task: {task}
  label: {name}
  tags: [secret-test]
  env:
    GITHUB_TOKEN: "${{env:CANARY_GITHUB_TOKEN}}"
    NPM_TOKEN: "${{env:CANARY_NPM_TOKEN}}"
"""


def write(root: Path, task: str = "Do the work") -> None:
    root.mkdir(exist_ok=True)
    docs = [PROJECT] + [SESSION.format(name=n, task=task) for n in ("alpha", "beta")]
    (root / "sessions.yaml").write_text("".join(docs))


def _canary_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Path:
    """Manifests written, their env variables set to canaries, every log captured: the
    manifests' folder."""
    caplog.set_level(logging.DEBUG)
    manifests = tmp_path / "manifests"
    write(manifests)
    monkeypatch.setenv("CANARY_GITHUB_TOKEN", CANARY_ENV)
    monkeypatch.setenv("CANARY_NPM_TOKEN", CANARY_ENV_2)
    monkeypatch.setenv("AGENTUITY_ORG_ID", ORG)
    return manifests


def _stored(url: str) -> list[dict[str, Any]]:
    """Every session the hub keeps, each as its GET detail (env included)."""
    headers = {"Authorization": f"Bearer {CANARY_TOKEN}"}
    listed = httpx.get(
        f"{url}/hub/sessions", params={"includeArchived": "true"}, headers=headers, timeout=30
    ).json()["sessions"]["websocket"]
    return [
        httpx.get(f"{url}/hub/session/{s['sessionId']}", headers=headers, timeout=30).json()
        for s in listed
    ]


def _without_env(session: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in session.items() if k != "env"})


def _watch_once(tmp_path: Path, url: str, manifests: str, *flags: str) -> str:
    """`watch --self-heal -vv` until its first reconcile is logged; its whole log."""
    log_path = tmp_path / f"watch-{len(list(tmp_path.glob('watch-*')))}.log"
    argv = [sys.executable, "-m", "reconciler", "-vv", "--api-url", url, "watch", manifests]
    argv += ["--self-heal", "--interval", "1s", "--log-format", "json", *flags]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=log, env=dict(os.environ))
    try:
        until("a reconcile in the watcher's log", lambda: '"reconcile"' in log_path.read_text())
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=40)
    finally:
        stop_process(process)
    return log_path.read_text(errors="replace")


class Scanner:
    """Runs commands and remembers everything they printed or logged."""

    def __init__(self, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture):
        self.capsys = capsys
        self.caplog = caplog
        self.seen: list[tuple[str, str]] = []

    def run(self, *args: str, expect: set[int] | None = None) -> int:
        self.capsys.readouterr()
        code = run(["-vv", *args])
        out, err = self.capsys.readouterr()
        self.seen += [(f"stdout of {args}", out), (f"stderr of {args}", err)]
        self.seen.append((f"logs of {args}", self.caplog.text))
        self.caplog.clear()
        if expect is not None:
            assert code in expect, (args, code, out, err)
        return code

    def files(self, *paths: Path) -> None:
        for path in paths:
            for file in [path] if path.is_file() else sorted(path.rglob("*")):
                if file.is_file():
                    self.seen.append((str(file), file.read_text(errors="replace")))

    def assert_clean(self) -> None:
        for where, text in self.seen:
            for canary in CANARIES:
                assert canary not in text, f"{canary} leaked in {where}:\n{text[:2000]}"


@pytest.mark.subprocess
def test_no_command_ever_shows_a_canary(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    manifests = _canary_run(tmp_path, monkeypatch, caplog)
    m = str(manifests)
    scan = Scanner(capsys, caplog)

    with start_hub(tmp_path, tokens={CANARY_TOKEN: (ORG, USER)}) as hub:
        monkeypatch.setenv("AGENTUITY_SDK_KEY", CANARY_TOKEN)
        api = ["--api-url", hub.url]
        scan.run("validate", m, expect={0})
        for fmt in ("text", "json", "markdown"):
            scan.run(*api, "plan", m, "--format", fmt, expect={0})
        saved = tmp_path / "plan.json"
        scan.run(*api, "plan", m, "--out", str(saved), expect={0})
        for fmt in ("text", "json", "markdown"):
            scan.run("show", str(saved), "--format", fmt, expect={0})
        scan.run(*api, "apply", "--plan", str(saved), m, "--yes", expect={0})
        scan.run(*api, "status", m, expect={0})
        scan.run(*api, "status", m, "--format", "json", expect={0})
        # Stop managing a session, then adopt it again.
        alpha = next(
            s["sessionId"]
            for s in _stored(hub.url)
            if any(t.startswith("reconciler:secrets/alpha@") for t in s["tags"])
        )
        scan.run(*api, "forget", "alpha", m, "--force", "--yes", expect={0})
        scan.run(*api, "import", "delta", alpha, m, "--write", expect={0})  # no one's now
        scan.run(*api, "import", "alpha", alpha, m, "--yes", expect={0})
        scan.seen.append(("the watcher's log", _watch_once(tmp_path, hub.url, m)))
        # Controls: the values really reached the hub, and -vv really logs requests.
        headers = {"Authorization": f"Bearer {CANARY_TOKEN}"}
        listed = httpx.get(f"{hub.url}/hub/sessions", headers=headers, timeout=30).json()
        first = listed["sessions"]["websocket"][0]["sessionId"]
        detail = httpx.get(f"{hub.url}/hub/session/{first}", headers=headers, timeout=30).json()
        assert detail["env"]["GITHUB_TOKEN"] == CANARY_ENV
        assert detail["env"]["NPM_TOKEN"] == CANARY_ENV_2
        assert any("/hub/sessions" in text for where, text in scan.seen if "logs" in where)
        # A create-only change: a replacement whose env values differ on the hub.
        write(manifests, task="Do the work differently")
        for fmt in ("text", "json", "markdown"):
            scan.run(*api, "plan", m, "--format", fmt, expect={0})
        replaced = tmp_path / "replace.json"
        scan.run(*api, "plan", m, "--out", str(replaced), expect={0})
        scan.run(*api, "apply", m, "--yes", "--format", "json", expect={0})
        scan.run(*api, "apply", m, "--yes", expect={0})
        exported = tmp_path / "exported"
        scan.run(*api, "export", "--project", "exported", expect={0})
        scan.run(*api, "export", "--project", "exported", "--out", str(exported), expect={0})
        scan.run(*api, "sessions", "list", expect={0})
        scan.run(*api, "users", expect={0})
        # Client errors, at -vv: not found, refused by the hub, unreachable.
        scan.run(*api, "sessions", "get", "codesess_missing", expect={1})
        scan.run(*api, "--org", "org_other", "plan", m, expect={1, 64})
        monkeypatch.setenv("AGENTUITY_SDK_KEY", CANARY_TOKEN + "-wrong")
        scan.run(*api, "plan", m, expect={1})
        monkeypatch.setenv("AGENTUITY_SDK_KEY", CANARY_TOKEN)
        dead = f"http://127.0.0.1:{hub.url.rsplit(':', 1)[1]}"
        # What the hub keeps: the canaries only ever as env values.
        for session in _stored(hub.url):
            scan.seen.append((f"hub-stored {session['sessionId']}", _without_env(session)))
    # The hub is gone now: connection refused, with the token in hand.
    scan.run("--api-url", dead, "plan", m, expect={1})
    scan.run("--api-url", dead, "apply", m, "--yes", expect={1})
    # Validation errors, with the canaries set and referenced.
    (manifests / "broken.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: Bad_Name\nspec:\n"
        "  task: 3\n  unknown: x\n  env: {A: '${env:CANARY_GITHUB_TOKEN}'}\n"
        "  label: '${env:CANARY_NPM_TOKEN'\n"
    )
    scan.run("validate", m, expect={65})
    scan.run("--api-url", "local", "--local-db", str(tmp_path / "l.db"), "plan", m, expect={65})
    scan.files(saved, replaced, exported, tmp_path / "hub-serve.log")
    assert scan.seen
    scan.assert_clean()


def test_a_literal_env_value_is_never_saved_in_a_plan_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "s.yaml").write_text(
        PROJECT + "---\napiVersion: reconciler/v1\nkind: Session\nname: literal\nspec:\n"
        f"  task: t\n  env: {{TOKEN: {CANARY_ENV}, OK: '${{env:CANARY_NPM_TOKEN}}',\n"
        "    DSN: 'postgres://app:pw@${env:CANARY_NPM_TOKEN}/db'}\n"
    )
    saved = tmp_path / "plan.json"
    scan = Scanner(capsys, caplog)
    local = ["--api-url", "local", "--local-db", str(tmp_path / "hub.db")]
    scan.run(*local, "plan", str(manifests), expect={0})  # shown as (sensitive): fine
    scan.run(*local, "plan", str(manifests), "--out", str(saved), expect={65})
    assert not saved.exists()
    _, err = scan.seen[-2]
    assert f"{manifests / 's.yaml'}:6: session literal: spec.env.TOKEN is written literally" in err
    assert "spec.env.OK" not in err  # one bare reference: no value written down
    # Text beside a reference is written down (a password in a URL, say): refused too.
    assert "spec.env.DSN holds a value written literally beside its reference" in err
    assert 'use "${env:DSN}" alone' in err  # one variable for the whole value
    scan.assert_clean()


def test_validate_and_plan_warn_of_each_env_value_written_literally_never_showing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A secret written into a manifest is in git before any plan file could refuse it:
    validate and plan say so where it is written (the Project's defaults once, not per
    session inheriting them), by key, never by value; a bare reference, an empty
    default and the default of a plainEnv variable are no literal."""
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "s.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: literal\nplainEnv: [CHANNEL]\n"
        f"defaults:\n  env:\n    SHARED: {CANARY_ENV_2}\n"
        "    CHANNEL: '${env:CHANNEL:-stable}'\n"
        "---\napiVersion: reconciler/v1\nkind: Session\nname: one\nspec:\n  task: t\n"
        f"  env:\n    TOKEN: {CANARY_ENV}\n    OK: '${{env:CANARY_NPM_TOKEN}}'\n"
        "    EMPTY: '${env:EMPTY_DEFAULT:-}'\n"
        f"    DSN: 'postgres://app:{CANARY_ENV}@${{env:DB_HOST}}/db'\n"
        "---\napiVersion: reconciler/v1\nkind: Session\nname: two\nspec:\n  task: t\n"
        f"  env: {{TOKEN: {CANARY_ENV_2}}}\n"
        "---\napiVersion: reconciler/v1\nkind: SessionSet\nname: reviews\n"
        f"generator:\n  items: [{{name: a, v: {CANARY_ENV}}}, {{name: b, v: '${{env:B}}'}}]\n"
        "template:\n  name: 'review-{{ item.name }}'\n"
        "  spec: {task: t, env: {FROM_ITEM: '{{ item.v }}'}}\n"
    )
    file = manifests / "s.yaml"
    scan = Scanner(capsys, caplog)
    scan.run("validate", str(manifests), expect={0})
    local = ["--api-url", "local", "--local-db", str(tmp_path / "hub.db")]
    scan.run(*local, "plan", str(manifests), expect={0})
    validated, planned = scan.seen[1][1], scan.seen[4][1]  # each run's stderr
    for err in (validated, planned):
        # At the key itself, the file read again for it.
        assert f"{file}:7:5: defaults.env.SHARED is written literally:" in err
        assert err.count("defaults.env.SHARED") == 1  # two sessions inherit it
        # One line for a key however many sessions write it, at the first.
        assert f"{file}:16:5: spec.env.TOKEN is written literally (and in 1 more session)" in err
        assert err.count("spec.env.TOKEN") == 1
        assert 'write "${env:TOKEN}" alone' in err
        assert f"{file}:19:5: spec.env.DSN holds a value written literally beside" in err
        # A SessionSet's item: at the set, naming the item (its reference in b is fine).
        assert "spec.env.FROM_ITEM is written literally (SessionSet 'reviews', item 1)" in err
        for fine in ("env.CHANNEL", "env.OK", "env.EMPTY"):
            assert fine not in err
    scan.assert_clean()


def test_a_literal_env_value_is_warned_of_beside_the_errors_of_an_invalid_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Errors do not hide a secret written into the manifests: the warnings (a literal
    `env` value, in a session the schema refused as in a valid one; an unset variable)
    come beside the errors, in the text and in each JSON form, the value never shown."""
    manifests = tmp_path / "m"
    manifests.mkdir()
    file = manifests / "s.yaml"
    file.write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: broken\n"
        "---\napiVersion: reconciler/v1\nkind: Session\nname: refused\nspec:\n  task: t\n"
        f"  tags: 5\n  env:\n    TOKEN: {CANARY_ENV}\n"
        "---\napiVersion: reconciler/v1\nkind: Session\nname: valid\nspec:\n"
        f"  task: '${{env:UNSET_IN_TEST}}'\n  env: {{KEY: {CANARY_ENV_2}}}\n"
    )
    scan = Scanner(capsys, caplog)
    local = ["--api-url", "local", "--local-db", str(tmp_path / "hub.db")]
    scan.run("validate", str(manifests), expect={65})
    scan.run(*local, "plan", str(manifests), expect={65})
    for err in (scan.seen[1][1], scan.seen[4][1]):  # each run's stderr
        lines = err.splitlines()
        assert f"error: {file}:10:9: spec.tags: must be a list, not a number" in lines
        assert f"warning: {file}:12:5: spec.env.TOKEN is written literally:" in err
        assert f"warning: {file}:19:9: spec.env.KEY is written literally:" in err
        assert f"warning: {file}:18:9: ${{env:UNSET_IN_TEST}} is not set" in err
    scan.run("validate", "--format", "json", str(manifests), expect={65})
    scan.run(*local, "plan", "--format", "json", str(manifests), expect={65})
    validated = json.loads(scan.seen[6][1])
    planned = json.loads(scan.seen[9][1])["error"]
    for doc in (validated, planned):
        assert [e["line"] for e in doc["errors"]] == [10, 18]  # the task's reference too
        found = {(w["line"], w["message"].split(" ")[0]) for w in doc["warnings"]}
        assert found == {(12, "spec.env.TOKEN"), (19, "spec.env.KEY"), (18, "${env:UNSET_IN_TEST}")}
    scan.assert_clean()


class EchoingHub:
    """ASGI wrapper: a create is refused with 400 and the request echoed in ``error`` and
    ``message`` (the offending env values first, then the whole body and the
    Authorization header), as some services do; every other request goes to the hub."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.echoed: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        creating = scope["type"] == "http" and scope["method"] == "POST"
        if not (creating and scope["path"].endswith("/session")):
            await self.app(scope, receive, send)
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = json.loads(raw)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        offending = "; ".join(f"env.{k}: {v!r} is not allowed" for k, v in body["env"].items())
        answer = {
            "error": f"{offending} (sent with {headers.get('authorization')})",
            "message": f"refused {raw.decode()}",
            "code": "CODER_INVALID_REQUEST",
        }
        payload = json.dumps(answer).encode()
        self.echoed.append(payload.decode())
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@pytest.mark.subprocess
def test_a_hub_that_echoes_the_refused_request_shows_no_secret(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    m = str(_canary_run(tmp_path, monkeypatch, caplog))
    monkeypatch.setenv("AGENTUITY_SDK_KEY", CANARY_TOKEN)
    config = HubConfig(
        db_path=str(tmp_path / "hub.sqlite3"), tokens={CANARY_TOKEN: TokenGrant(ORG, USER)}
    )
    app = EchoingHub(create_app(config))
    scan = Scanner(capsys, caplog)
    with serve_app(app) as url:
        scan.run("--api-url", url, "apply", m, "--yes", expect={1})
        scan.run("--api-url", url, "apply", m, "--yes", "--format", "json", expect={1})
        scan.seen.append(("the watcher's log", _watch_once(tmp_path, url, m)))
    # Controls: the hub echoed every canary, and the reason still reaches the reader.
    for canary in CANARIES:
        assert any(canary in text for text in app.echoed), canary
    reason = f"env.GITHUB_TOKEN: '{SENSITIVE}' is not allowed; env.NPM_TOKEN: '{SENSITIVE}'"
    shown = {where.split(" of ")[0]: text for where, text in scan.seen}  # the last of each
    assert reason in scan.seen[1][1]  # apply's progress lines (stderr)
    assert reason in json.loads(shown["stdout"])["results"][0]["error"]  # apply --format json
    assert reason in shown["the watcher's log"]
    assert f"Bearer {SENSITIVE}" in shown["the watcher's log"]
    scan.assert_clean()


SECRET_URL = "postgres://u:CANARY-ENV-456@db/x?sslmode=require&pw=CANARY<s>/9"


@pytest.mark.parametrize(
    "echoed",
    [
        SECRET_URL,
        json.dumps(SECRET_URL)[1:-1],
        # Go's and JavaScript's JSON: &, < and > as \u escapes; PHP's: / escaped.
        json.dumps(SECRET_URL)[1:-1]
        .replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e"),
        json.dumps(SECRET_URL)[1:-1].replace("/", "\\/"),
        quote(SECRET_URL, safe=""),
        quote_plus(SECRET_URL),
        # Cut short by the server, at the end of the text or marked as cut.
        SECRET_URL[:24],
        SECRET_URL[:30] + "...",
        SECRET_URL[:30] + '"}',
        SECRET_URL[:30] + "[...]",
        SECRET_URL[:30] + " (truncated, 4,096 more bytes)",
        SECRET_URL[:30] + "\u2026",
        SECRET_URL[:30] + "\n",
    ],
    ids=[
        "raw",
        "json",
        "go-json",
        "escaped-slash",
        "url",
        "url-plus",
        "cut",
        "cut-dots",
        "cut-json",
        "cut-brackets",
        "cut-words",
        "cut-ellipsis",
        "cut-line",
    ],
)
def test_a_secret_echoed_in_any_usual_form_is_masked(echoed: str) -> None:
    from reconciler.masking import mask_values

    shown = mask_values(f'{{"error": "refused", "env": "{echoed}', [SECRET_URL])
    assert "CANARY" not in shown and SENSITIVE in shown
    # Text that only shares a short beginning with a secret stays as it is, also where
    # the text ends: `postgres://` and `sk_live_` are everyone's.
    assert mask_values("postgres://db and more", [SECRET_URL]) == "postgres://db and more"
    assert mask_values('invalid value "postgres://"', [SECRET_URL]).endswith('"postgres://"')
    assert mask_values("must start with sk_live_", ["sk_live_51Habcdefgh"]).endswith("sk_live_")
    # A longer shared beginning that goes on as another word is another word.
    hook = "https://hooks.example.com/services/T0/B0/CANARYhook"
    shown = mask_values("see https://hooks.example.com/docs for hooks", [hook])
    assert shown == "see https://hooks.example.com/docs for hooks"


def test_a_secret_echoed_in_another_case_is_masked() -> None:
    """A server that upper- or lower-cases what it echoes (a normalised value, an error
    code made from it) echoes the secret all the same; a short one (under
    ``ECHO_MIN_LENGTH``) is masked only as written: in another case it is met by chance."""
    from reconciler.masking import mask_values

    secret = "Secret_Canary_77x"
    for echoed in (secret.lower(), secret.upper(), secret.swapcase()):
        shown = mask_values(f"error: invalid env value {echoed} (code {echoed.upper()})", [secret])
        assert shown == f"error: invalid env value {SENSITIVE} (code {SENSITIVE})", echoed
    assert mask_values("status MAIN and Main", ["main"]) == "status MAIN and Main"
    assert mask_values("status main", ["main"]) == f"status {SENSITIVE}"
    # Escaped, then upper-cased with the JSON around it; upper-cased to other letters.
    for value in ('hunter"2hunter2', "pa/ss&wörd-99x", "straße-secret-1"):
        for echoed in (json.dumps({"env": {"PW": value}}).upper(), value.upper()):
            shown = mask_values(f"error: {echoed}", [value])
            assert SENSITIVE in shown, (value, shown)
            for piece in ("HUNTER", "WÖRD", "W\\U00F6RD", "STRASSE"):
                assert piece not in shown, (value, shown)


@pytest.mark.parametrize(
    "echoed",
    [
        "CANARY-ENV-it&#039;s a~b*c",  # PHP's htmlspecialchars
        "CANARY-ENV-it&apos;s a~b*c",  # XML's escape
        "CANARY-ENV-it%27s+a%7Eb*c",  # Java's URLEncoder
    ],
    ids=["php-html", "xml", "java-url"],
)
def test_a_secret_escaped_by_php_xml_or_java_is_masked(echoed: str) -> None:
    from reconciler.masking import mask_values

    shown = mask_values(f"<p>bad value: {echoed}</p>", ["CANARY-ENV-it's a~b*c"])
    assert "CANARY" not in shown and SENSITIVE in shown


@pytest.mark.parametrize("cut", [30, 50, 58, len(SECRET_URL) - 1])
def test_a_secret_cut_anywhere_is_masked_whole_up_to_the_cut(cut: int) -> None:
    from reconciler.masking import mask_values

    # Past its first `&`, `/` or `<` the JSON, URL and HTML forms part from the secret as
    # sent; the longest run of any form decides, so no piece after such a character shows.
    assert mask_values(f"error: {SECRET_URL[:cut]}...", [SECRET_URL]) == "error: (sensitive)..."


@pytest.mark.parametrize(
    ("secrets", "echoed", "shown"),
    [
        (
            ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYzCANARYKEY"],
            "invalid value 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzCA...'",
            "invalid value '(sensitive)...'",
        ),
        (
            ["c2VjcmV0LXRva2Vu+Zm9vYmFy/CANARY+c2VjcmV0=="],
            "bad key c2VjcmV0LXRva2Vu+Zm9vYmFy/CANARY+c... (truncated)",
            "bad key (sensitive)... (truncated)",
        ),
        # Cut in the middle (pydantic's input_value): the beginning and the end go.
        (
            ["postgres://app:Hunter2-CANARY@db:5432/app?sslmode=require&sslpassword=KEY-CANARY"],
            "input_value='postgres://app:Hunter2-C...sslpassword=KEY-CANARY'",
            "input_value='(sensitive)...(sensitive)'",
        ),
        # One secret inside another: the longer one's cut is judged on the text as it came.
        (
            ["Hunter2-CANARY", "postgres://app:Hunter2-CANARY@db.internal:5432/app?ssl=1"],
            "cannot parse postgres://app:Hunter2-CANARY@db.internal:5432/a...",
            "cannot parse (sensitive)...",
        ),
        # An error page: HTML-escaped.
        (
            ["postgres://app:pw@db/app?sslmode=require&sslpassword=KEY-CANARY"],
            "<p>bad url postgres://app:pw@db/app?sslmode=require&amp;sslpassword=KEY-CANARY</p>",
            "<p>bad url (sensitive)</p>",
        ),
        # escape-html (Express) and Go's html.EscapeString write ' as &#39;.
        (
            ["Tr0ub4dor'&3-horse-battery"],
            "<pre>invalid env value Tr0ub4dor&#39;&amp;3-horse-battery</pre>",
            "<pre>invalid env value (sensitive)</pre>",
        ),
        (
            ["sk_live_51HxQ2eKz9Yb7TqP0aVdLmN3"],
            "<pre>API_KEY=&quot;sk_live_51HxQ2eKz9Yb7Tq&quot; rejected</pre>",
            "<pre>API_KEY=&quot;(sensitive)&quot; rejected</pre>",
        ),
        (["P@ss(word)!-abcdefghijklmnop"], "q=P%40ss(word)!-abcdefghijklmnop", "q=(sensitive)"),
        (["abc/def+ghijklmnopqrst"], "q=abc%2fdef%2bghijklmnopqrst", "q=(sensitive)"),
        (
            ["postgres://app:Hunter2-CANARY@db/app?sslpassword=KEY0123456789"],
            "dsn postgres://app:Hunter2-C[truncated]ord=KEY0123456789",
            "dsn (sensitive)[truncated](sensitive)",
        ),
        (
            ["sk_live_51HxQ2eKz9Yb7TqP0aVdLmN3"],
            "Key (value)=(sk_live_51HxQ2eKz9Yb7T) already exists",
            "Key (value)=((sensitive)) already exists",
        ),
        # A `.` of the secret right at the cut joins the run: `...` then reads `..`.
        (
            ["sk.live.51HxQ2eZvKYlo2.C0aBcDeFgHiJkLmNoP"],
            "value 'sk.live.51HxQ2eZvKYlo2...' rejected",
            "value '(sensitive)...' rejected",
        ),
        (
            ["https://hooks.example.com/services/T0AB/xxxZq8Kd.W3nP5sH8jL2vB7cX4mR9tY6"],
            "input_value='https://hooks.example.com/...W3nP5sH8jL2vB7cX4mR9tY6'",
            "input_value='(sensitive)...(sensitive)'",
        ),
        (
            ["sk_live_51HxQ2eZvKYlo2C0aBcDeFgHiJkLmNoP"],
            "'sk_live_51HxQ2eZvKYl ... cDeFgHiJkLmNoP'",
            "'(sensitive) ... (sensitive)'",
        ),
        (
            ["pa'ss\"0123456789abcdef"],
            "input_value='pa\\'ss\"0123456789abcdef'",
            "input_value='(sensitive)'",
        ),
        (
            ["postgres://app:Hunter2Secret@db.internal:5432/app"],
            "GET /x/postgres:%2F%2Fapp:Hunter2Secret@db.internal:5432%2Fapp",
            "GET /x/(sensitive)",
        ),
        (
            ["caf\u00e9-secret-0123456789"],
            '{"v":"caf\\u00E9-secret-0123456789"}',
            '{"v":"(sensitive)"}',
        ),
        (
            ["AbC+dEf/GhIjK+LmNoPqRsTuVwXyZ0123=="],
            "<p>invalid token AbC&#43;dEf/GhIjK&#43;LmNoPqRsTuVwXyZ0123==</p>",
            "<p>invalid token (sensitive)</p>",
        ),
    ],
    ids=[
        "aws-style",
        "base64",
        "middle-cut",
        "nested",
        "html",
        "html-js-go",
        "html-quoted-cut",
        "encodeURIComponent",
        "lower-case-percent",
        "middle-cut-truncated",
        "cut-in-parentheses",
        "cut-at-a-dot",
        "middle-cut-at-a-dot",
        "middle-cut-spaced",
        "python-repr",
        "go-path-escape",
        "upper-case-unicode-escape",
        "go-html-template",
    ],
)
def test_cut_and_escaped_echoes_of_real_secrets_are_masked(
    secrets: list[str], echoed: str, shown: str
) -> None:
    from reconciler.masking import mask_values

    assert mask_values(echoed, secrets) == shown


_PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQ+C7canary+Zx/9k\n-----END PRIVATE KEY-----"


def _go_json(text: str) -> str:
    """``text`` as Go's json.Marshal writes a string: ``&<>`` escaped, quotes around."""
    quoted = json.dumps(text)
    return quoted.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


@pytest.mark.parametrize(
    "secret",
    [
        _PEM,
        'canaryPW"quoted-tail',
        "canaryPW'x\ntail-SECRET",
        "db?x=1&password=canary<SECRET>",
        # A quote past the first 12 characters: the beginning written once must not be
        # taken for a cut of the form escaped twice.
        'canaryTr0ub4dor"correct-horse-SECRET',
    ],
)
@pytest.mark.parametrize(
    "echo",
    [
        # The request's JSON inside a JSON string body, or a list of them.
        lambda request: json.dumps("POST /hub/session body=" + request),
        lambda request: json.dumps([{"message": "bad body " + request}]),
        # ...inside an HTML error page (Python's html.escape; Go's html/template).
        lambda request: html.escape(request),
        lambda request: request.replace("+", "&#43;").replace('"', "&#34;"),
        # ...quoted as bytes by an HTTP parser: a malformed status line echoing it.
        lambda request: repr(bytearray(b"garbage " + request.encode())),
        # A JSON string body as Go writes it (&<> escaped); a list of bytes reprs; HTML of one.
        lambda request: _go_json(request),
        lambda request: json.dumps(["bad body: " + repr(request.encode())]),
        lambda request: html.escape(repr(request.encode())),
        # A proxy wrapping the upstream's JSON error in its own.
        lambda request: json.dumps({"error": "upstream: " + request}),
    ],
    ids=[
        "json-string",
        "json-list",
        "html",
        "go-html-template",
        "bytes",
        "go-json-string",
        "list-of-bytes",
        "html-of-bytes",
        "json-in-json-error",
    ],
)
def test_a_secret_echoed_escaped_twice_is_masked(secret: str, echo: Any) -> None:
    from reconciler.masking import mask_values

    shown = mask_values(echo(json.dumps({"env": {"REF": secret}, "auth": secret})), [secret])
    assert not any(part in shown for part in ("canary", "SECRET", "Zx/9k", "quoted-tail")), shown
    assert "(sensitive)" in shown


@pytest.mark.parametrize(
    ("secret", "text"),
    [
        (
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg",
            "tls: expected -----BEGIN PRIVATE KEY----- block",
        ),
        (
            "https://hooks.slack.com/services/T0/B0/CANARY",
            "webhook host must be one of https://hooks.slack.com, https://example.org",
        ),
        (
            "https://github.com/acme/service-deploy-key-CANARY",
            "repository https://github.com/acme/service not found",
        ),
        ('{"region":"us-east-1","apiKey":"CANARY"}', 'config {"region":"us-east-1"} lacks apiKey'),
    ],
    ids=["pem", "webhook-host", "public-repo", "json-config"],
)
def test_text_that_only_shares_a_beginning_with_a_secret_stays_readable(
    secret: str, text: str
) -> None:
    from reconciler.masking import mask_values

    assert mask_values(text, [secret]) == text


def test_an_error_body_that_is_a_json_string_or_list_is_read_decoded_and_masked() -> None:
    # Decoded, one escaping less is left for the masking to see through: a list of
    # HTML-escaped request JSON (three escapings deep as sent) is masked.
    from reconciler.client.errors import error_from_response

    secret = "canaryPW\"q'r<&>"
    request = json.dumps({"env": {"A": secret}})
    for body, readable in (
        (json.dumps("POST /hub/session " + request), "POST /hub/session {"),
        (json.dumps([html.escape(request), {"message": "second"}]), "; second"),
    ):
        response = httpx.Response(400, content=body.encode())
        error = error_from_response("POST", "/hub/session", response, secrets=[secret])
        assert "canary" not in str(error) and readable in str(error), str(error)


def test_a_secret_as_dotnets_json_encoder_escapes_it_is_masked() -> None:
    # System.Text.Json: <>&'+` and non-ASCII as upper-case \u escapes, " as \u0022
    # (a base64 token's + shows as \u002B).
    from reconciler.masking import mask_values

    secret = 'canaryPW&q+Z9xyz/AB=="é<tail'
    echoed = (
        '{"error":"invalid","message":"got canaryPW\\u0026q\\u002BZ9xyz/AB==\\u0022'
        '\\u00E9\\u003Ctail"}'
    )
    assert mask_values(echoed, [secret]) == '{"error":"invalid","message":"got (sensitive)"}'
