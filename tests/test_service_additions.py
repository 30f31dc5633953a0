"""Plan converges on what the real service sends, end to end through the CLI.

The fixture server is the local hub wrapped in an ASGI layer that answers in the
reference's shapes plus what the real service adds (docs/reference/service-notes.md): unknown
fields, extra keys inside ``skills[]`` items (as the official SDK's schema has), a name
the service fills in, unknown enum values, null optional values, tags repeated and
reordered. It is served by uvicorn on 127.0.0.1, and `apply` then `plan` must show no
changes and `status` must say in-sync, every time.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiserve import serve_app
from clihub import invoke

from reconciler.hub.app import create_app
from reconciler.hub.config import HubConfig, TokenGrant

TOKEN = "additions-token"
SDK_SKILL_KEYS = {"content": "# How to triage", "origin": {"type": "github"}, "version": 2}
ODD_TAG = "service-odd"  # sessions with this tag get unknown enum values


def decorate_session(item: dict[str, Any]) -> None:
    """What the real service adds to a session it reports."""
    item["futureField"] = {"nested": [1, 2]}
    item["workspace"] = {"workspaceId": "ws_1", "scope": "org"}
    item.setdefault("label", None)
    item.setdefault("defaultAgent", None)
    for skill in item.get("skills") or []:
        skill.update(SDK_SKILL_KEYS)
        if skill.get("skillId") == "filled":
            skill["name"] = "Filled in by the service"
        skill.setdefault("name", None)
        skill.setdefault("url", None)
    tags = list(item.get("tags") or [])
    if ODD_TAG in tags:
        item["visibility"] = "team"
        item["status"] = "provisioning"
        item["loopStatus"] = "thinking"
    item["tags"] = [*reversed(tags), *tags[:1]]


def decorate(document: Any) -> None:
    if isinstance(document, dict):
        if "sessionId" in document and "tags" in document:
            decorate_session(document)
        for value in document.values():
            decorate(value)
    elif isinstance(document, list):
        for value in document:
            decorate(value)


class ServiceAdditions:
    """ASGI wrapper: the hub's answers, decorated; PATCH bodies recorded."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.patches: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        start: dict[str, Any] = {}
        body: list[bytes] = []

        async def buffering_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                body.append(message.get("body", b""))

        await self.app(scope, recording_receive, buffering_send)
        if scope["method"] == "PATCH":
            self.patches.append(json.loads(b"".join(chunks)))
        payload = b"".join(body)
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        if payload and any(v.startswith(b"application/json") for _, v in headers):
            document = json.loads(payload)
            decorate(document)
            payload = json.dumps(document).encode()
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


@contextlib.contextmanager
def serve_additions(tmp_path: Path) -> Iterator[tuple[str, ServiceAdditions]]:
    config = HubConfig(
        db_path=str(tmp_path / "hub.sqlite3"), tokens={TOKEN: TokenGrant("org_add", "user_add")}
    )
    app = ServiceAdditions(create_app(config))
    with serve_app(app) as url:
        yield url, app


PROJECT = """\
apiVersion: reconciler/v1
kind: Project
name: additions
policy: {prune: archive, maxDestroyPercent: 100, protectLive: false}
"""

SESSIONS = """\
---
apiVersion: reconciler/v1
kind: Session
name: skilled
spec:
  task: Triage the queue
  label: Skilled
  agent: claude-code
  visibility: org
  tags: [triage, nightly]
  skills:
    - {skillId: triage, repo: acme/skills, name: Triage, url: https://skills.example/t}
    - {skillId: filled, repo: acme/skills}
---
apiVersion: reconciler/v1
kind: Session
name: bare
spec:
  task: Nothing declared but the task
---
apiVersion: reconciler/v1
kind: Session
name: odd
spec:
  task: The service reports enums we do not know
  tags: [service-odd]
"""

EXTRA_SKILL = "    - {skillId: review, repo: acme/skills}\n"


def cli(url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code, out, err = invoke(capsys, "--api-url", url, *args)
    return code, out + err


def test_apply_then_plan_shows_no_changes_against_the_service_shapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTUITY_SDK_KEY", TOKEN)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "project.yaml").write_text(PROJECT)
    (manifests / "sessions.yaml").write_text(SESSIONS)
    with serve_additions(tmp_path) as (url, app):
        code, output = cli(url, capsys, "apply", "--yes", str(manifests))
        assert code == 0, output
        assert "3 to create" in output
        for _ in range(2):  # converged, and it stays so
            code, output = cli(url, capsys, "plan", "--detailed-exitcode", str(manifests))
            assert code == 0, output
            assert "No changes" in output
            code, output = cli(url, capsys, "status", "--format", "json", str(manifests))
            assert code == 0, output
            rows = json.loads(output)["sessions"]
            assert {(r["name"], r["sync"]) for r in rows} == {
                ("skilled", "in-sync"),
                ("bare", "in-sync"),
                ("odd", "in-sync"),
            }
        assert app.patches == []

        # A skill added: the PATCH keeps what the service added to the skills kept.
        text = SESSIONS.replace("    - {skillId: filled", EXTRA_SKILL + "    - {skillId: filled")
        (manifests / "sessions.yaml").write_text(text)
        code, output = cli(url, capsys, "plan", str(manifests))
        assert "manifest: skills" in output and "content" not in output
        code, output = cli(url, capsys, "apply", "--yes", str(manifests))
        assert code == 0, output
        [patch] = app.patches
        by_id = {s["skillId"]: s for s in patch["skills"]}
        assert by_id["review"] == {"skillId": "review", "repo": "acme/skills"}
        assert by_id["triage"]["content"] == SDK_SKILL_KEYS["content"]
        assert by_id["filled"]["name"] == "Filled in by the service"
        code, output = cli(url, capsys, "plan", "--detailed-exitcode", str(manifests))
        assert code == 0, output
