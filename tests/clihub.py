"""The two hubs the CLI contract suite runs against: in-process and over a real socket
(the shared served hub of conftest, with a tenant of the test's own)."""

from __future__ import annotations

import asyncio
import json
import shlex
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubproc import HubProcess, Tenant

from reconciler.cli.main import run
from reconciler.hub.app import create_app
from reconciler.hub.config import HubConfig
from reconciler.hub.local import LOCAL_GRANT, LOCAL_TOKEN


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``reconciler ARGS`` in-process: its exit code and what it wrote to stdout and
    stderr (and nothing captured before it)."""
    capsys.readouterr()
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@dataclass
class CliHub:
    """Runs `reconciler` against one hub; ``admin`` reaches the test-only admin route."""

    kind: str
    global_args: list[str]
    admin: Callable[[str, dict[str, Any]], dict[str, Any]]
    capsys: pytest.CaptureFixture[str]
    token: str
    user_id: str
    outputs: list[str] = field(default_factory=list)

    @property
    def invocation(self) -> str:
        """How a command the tool suggests starts: ``reconciler`` and these runs' global
        options (all of them hub flags), quoted for a shell."""
        return " ".join(["reconciler", *map(shlex.quote, self.global_args)])

    def run(self, *args: str) -> tuple[int, str, str]:
        code, out, err = invoke(self.capsys, *self.global_args, *args)
        self.outputs += [out, err]
        return code, out, err

    def ok(self, *args: str) -> str:
        code, out, err = self.run(*args)
        assert code == 0, err
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--format", "json"))

    def create(self, *args: str) -> str:
        created = self.json("sessions", "create", *args)
        session_id: str = created["sessionId"]
        return session_id


def local_hub(db: Path | str) -> list[str]:
    """The global options that run a command against the embedded hub in ``db``."""
    return ["--api-url", "local", "--local-db", str(db)]


def unique(prefix: str = "w") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def inprocess_admin(db_path: str) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    def admin(session_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        # An admin-enabled app over the same SQLite file as the embedded hub.
        app = create_app(HubConfig(db_path=db_path, tokens={LOCAL_TOKEN: LOCAL_GRANT}, admin=True))

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
                return await client.post(
                    f"/hub/session/{session_id}/_admin",
                    json=changes,
                    headers={"Authorization": f"Bearer {LOCAL_TOKEN}"},
                )

        try:
            response = asyncio.run(call())
        finally:
            app.state.store.close()
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    return admin


# The kinds a CLI contract test runs against; "socket" uses conftest's shared served hub.
HUB_KINDS = ["inprocess", pytest.param("socket", marks=pytest.mark.subprocess)]


def make_cli_hub(
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> CliHub:
    if kind == "inprocess":
        db = str(tmp_path / "state" / "hub.sqlite3")
        # There from the start, as on a machine in use: a new one is announced on stderr.
        (tmp_path / "state").mkdir(exist_ok=True)
        Path(db).touch()
        return CliHub(
            kind,
            local_hub(db),
            inprocess_admin(db),
            capsys,
            LOCAL_TOKEN,
            LOCAL_GRANT.user_id,
        )
    hub: HubProcess = request.getfixturevalue("served_hub")
    tenant: Tenant = request.getfixturevalue("tenant")
    monkeypatch.setenv("AGENTUITY_SDK_KEY", tenant.token)
    headers = {"Authorization": f"Bearer {tenant.token}"}

    def admin(session_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(
            f"{hub.url}/hub/session/{session_id}/_admin", json=changes, headers=headers
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    return CliHub(kind, ["--api-url", hub.url], admin, capsys, tenant.token, tenant.user_id)


@pytest.fixture(name="hub", params=HUB_KINDS)
def hub_fixture(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[CliHub]:
    """Each test once in-process and once over a socket (import it as a fixture)."""
    cli_hub = make_cli_hub(request.param, tmp_path, monkeypatch, capsys, request)
    yield cli_hub
    # Whatever a test ran, the token never reached stdout or stderr.
    assert all(cli_hub.token not in text for text in cli_hub.outputs)


def write_manifests(root: Path, project: str, *docs: str, file_name: str = "sessions.yaml") -> Path:
    """``root`` holding only a Project named ``project`` and ``docs`` in one file."""
    root.mkdir(exist_ok=True)
    for old in root.glob("*.yaml"):
        old.unlink()
    (root / "project.yaml").write_text(
        f"apiVersion: reconciler/v1\nkind: Project\nname: {project}\n"
    )
    (root / file_name).write_text("---\n".join(docs))
    return root


def numbered_manifests(
    root: Path,
    project: str,
    count: int,
    *,
    width: int = 3,
    spec: str = "task: task {i}",
    project_extra: str = "",
) -> Path:
    """``root/manifests/all.yaml``: Project ``project`` (plus ``project_extra`` YAML lines)
    and sessions ``s000``... (``width`` digits), each ``spec`` (YAML flow, ``{i}`` its
    number)."""
    docs = [f"apiVersion: reconciler/v1\nkind: Project\nname: {project}\n{project_extra}"]
    docs += [
        f"apiVersion: reconciler/v1\nkind: Session\nname: s{i:0{width}d}\n"
        f"spec: {{{spec.format(i=i)}}}\n"
        for i in range(count)
    ]
    path = root / "manifests"
    path.mkdir(parents=True)
    (path / "all.yaml").write_text("---\n".join(docs), encoding="utf-8")
    return path
