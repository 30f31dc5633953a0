"""Run `reconciler hub serve` as a subprocess on a free port, for contract tests and benchmarks.

    with start_hub(tmp_path) as hub:
        httpx.get(f"{hub.url}/hub/sessions", headers={"Authorization": f"Bearer {hub.token}"})

``tokens`` maps KEY to ``"ORG:USER"`` (or an ``(org, user)`` pair); the first one is the
``HubProcess`` token. The database is ``tmp_path / "hub.sqlite3"`` unless ``extra_args``
names ``--db``, so starting twice on the same ``tmp_path`` reuses the data (restarts).

For contract suites that run one test body against both an in-process and a served
hub: ``Tenant`` (an org with two users' tokens and a token of another org),
``all_tokens()`` (every tenant's tokens, to pass as ``tokens=``), ``TenantPool`` (a fresh
tenant per test, so tests sharing one served hub do not see each other's sessions; the
conftest's ``served_hub`` and ``tenant`` fixtures use them),
``Hub`` (clients on demand, through ``LocalHubTransport`` or a socket), and
``find_nulls`` (optional fields must be absent, never null).

``until(what, probe)`` polls ``probe`` until it returns something true, failing after
a deadline (wait for a positive signal, never a fixed sleep). An ASGI app of a test's
own (the hub wrapped in a fixture layer) is served by ``asgiserve.serve_app``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from reconciler.connect import LocalHubTransport
from reconciler.hub.app import create_app
from reconciler.hub.config import HubConfig, TokenGrant
from reconciler.model import RemoteSession

__all__ = [
    "DEFAULT_TOKEN",
    "Hub",
    "HubProcess",
    "Tenant",
    "TenantPool",
    "all_tokens",
    "find_nulls",
    "free_port",
    "inprocess_hub",
    "limit_fds",
    "start_hub",
    "stop_process",
    "until",
]

DEFAULT_TOKEN = "hubproc-token"
DEFAULT_ORG = "org_hubproc"
DEFAULT_USER = "user_hubproc"
_STARTUP_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class HubProcess:
    url: str
    token: str
    org_id: str
    user_id: str
    db_path: Path
    process: subprocess.Popen[bytes]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


# What no test may inherit from the machine: real tokens and endpoints, CI mode, colour
# and summary settings (conftest.py scrubs them from every test; children of a test get
# the same through child_environ).
SCRUBBED_PREFIXES = ("AGENTUITY_", "CODER_", "RECONCILER_")
SCRUBBED = ("CI", "NO_COLOR", "GITHUB_STEP_SUMMARY")


def is_scrubbed(name: str) -> bool:
    return name.startswith(SCRUBBED_PREFIXES) or name in SCRUBBED


def child_environ(**extra: str) -> dict[str, str]:
    """The environment for a process a test starts: this one's, scrubbed, plus ``extra``."""
    return {k: v for k, v in os.environ.items() if not is_scrubbed(k)} | extra


def listed_items(hub: HubProcess, *, include_archived: bool = True) -> list[dict[str, Any]]:
    """Every session the hub lists to ``hub``'s token, all pages, as the API sends them."""
    items: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": 100, "offset": len(items)}
        if include_archived:
            params["includeArchived"] = "true"
        page = httpx.get(
            f"{hub.url}/hub/sessions", params=params, headers=hub.headers, timeout=30
        ).json()["sessions"]["websocket"]
        items += page
        if len(page) < 100:
            return items


def marker_counts(hub: HubProcess, *, include_archived: bool = False) -> Counter[str]:
    """How many sessions carry each marker tag (parsed as the planner does: record tags
    such as ``reconciler:applied:...`` are not markers)."""
    return Counter(
        marker.tag
        for item in listed_items(hub, include_archived=include_archived)
        for marker in RemoteSession.from_api(item).markers()
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def until(what: str, probe: Callable[[], Any], *, timeout_s: float = 40.0) -> Any:
    """``probe()``'s first true value, polled every 0.1 s; AssertionError after the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _token_args(tokens: Mapping[str, str | tuple[str, str]]) -> tuple[list[str], str, str, str]:
    args: list[str] = []
    first: tuple[str, str, str] | None = None
    for key, grant in tokens.items():
        org, user = grant.split(":", 1) if isinstance(grant, str) else grant
        args += ["--token", f"{key}={org}:{user}"]
        if first is None:
            first = (key, org, user)
    if first is None:
        raise ValueError("tokens must name at least one token")
    return args, *first


def _db_path(tmp_path: Path, extra_args: Sequence[str]) -> tuple[Path, list[str]]:
    args = list(extra_args)
    if "--db" in args:
        return Path(args[args.index("--db") + 1]), []
    return tmp_path / "hub.sqlite3", ["--db", str(tmp_path / "hub.sqlite3")]


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill if it does not go within the timeout."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=_STOP_TIMEOUT_S)


def limit_fds(fd_limit: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` lowering the child's ``RLIMIT_NOFILE`` to ``fd_limit`` (None: as is)."""
    if fd_limit is None:
        return None

    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    return limit


def _preexec(fd_limit: int | None, background: bool) -> Callable[[], None] | None:
    """What the child does before exec: ``limit_fds``, then SIGINT ignored (inherited
    across exec) for a background job."""
    limit = limit_fds(fd_limit)
    if not background:
        return limit

    def start() -> None:
        if limit is not None:
            limit()
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    return start


def _wait_until_ready(url: str, token: str, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            answer = httpx.get(
                f"{url}/coder", headers={"Authorization": f"Bearer {token}"}, timeout=2.0
            )
            if answer.status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def start_hub(
    tmp_path: Path,
    *,
    extra_args: Sequence[str] = (),
    tokens: Mapping[str, str | tuple[str, str]] | None = None,
    fd_limit: int | None = None,
    background: bool = False,
) -> Iterator[HubProcess]:
    """Start a hub on a free 127.0.0.1 port, wait until it answers, stop it on exit.

    ``fd_limit`` lowers the hub's ``RLIMIT_NOFILE`` (POSIX only), for flood tests.
    ``background``: started as a shell starts a background job (`cmd &` in a script),
    with SIGINT ignored.
    """
    tmp_path = Path(tmp_path)
    token_args, token, org_id, user_id = _token_args(
        tokens if tokens is not None else {DEFAULT_TOKEN: (DEFAULT_ORG, DEFAULT_USER)}
    )
    db_path, db_args = _db_path(tmp_path, extra_args)
    log_path = tmp_path / "hub-serve.log"
    # A free port can be taken between probing and binding: try a few times.
    for _attempt in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [
            sys.executable,
            "-m",
            "reconciler",
            "hub",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *db_args,
            *token_args,
            *extra_args,
        ]
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_preexec(fd_limit, background),
            )
        try:
            if _wait_until_ready(url, token, process):
                yield HubProcess(url, token, org_id, user_id, db_path, process)
                return
        finally:
            stop_process(process)
    output = log_path.read_text(errors="replace")[-4000:]
    raise RuntimeError(f"`reconciler hub serve` did not start; its output:\n{output}")


# -- contract-suite helpers ----------------------------------------------------------

# Enough for every test of one process: the shared served hub (conftest's `served_hub`)
# lives for the whole session, and each test takes a tenant of its own.
TENANTS = 300


@dataclass(frozen=True)
class Tenant:
    """An org with two users, and a token of a second org (for isolation checks)."""

    org_id: str
    token: str
    user_id: str
    token2: str
    user2_id: str
    other_token: str
    other_org_id: str


def tenant(index: int) -> Tenant:
    return Tenant(
        org_id=f"org_t{index}",
        token=f"tok-{index}-a",
        user_id=f"user_t{index}_a",
        token2=f"tok-{index}-b",
        user2_id=f"user_t{index}_b",
        other_token=f"tok-{index}-x",
        other_org_id=f"org_t{index}_x",
    )


def all_tokens() -> dict[str, tuple[str, str]]:
    tokens: dict[str, tuple[str, str]] = {}
    for index in range(TENANTS):
        t = tenant(index)
        tokens[t.token] = (t.org_id, t.user_id)
        tokens[t.token2] = (t.org_id, t.user2_id)
        tokens[t.other_token] = (t.other_org_id, f"user_t{index}_x")
    return tokens


def inprocess_config(**knobs: Any) -> HubConfig:
    grants = {key: TokenGrant(org, user) for key, (org, user) in all_tokens().items()}
    return HubConfig(tokens=grants, admin=True, **knobs)


@dataclass
class Hub:
    """One hub as the tests see it: a tenant of their own and clients on demand."""

    kind: str
    base_url: str
    tenant: Tenant
    app: Any = None  # the Starlette app, in-process only
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, token: str | None = "", **headers: str) -> httpx.AsyncClient:
        """A client with ``token`` (default: the tenant's first; None: no auth header)."""
        all_headers = dict(headers)
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token or self.tenant.token}"
        transport = LocalHubTransport(self.app) if self.app is not None else None
        client = httpx.AsyncClient(
            base_url=self.base_url, headers=all_headers, transport=transport, timeout=30.0
        )
        self.clients.append(client)
        return client

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


class TenantPool:
    def __init__(self) -> None:
        self._next: Iterator[int] = itertools.count()

    def take(self) -> Tenant:
        index = next(self._next)
        if index >= TENANTS:
            raise RuntimeError("tenant pool exhausted: raise TENANTS in tests/hubproc.py")
        return tenant(index)


def find_nulls(value: Any, path: str = "$") -> list[str]:
    """Paths of every null in a JSON value (optional fields must be absent instead)."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in find_nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in find_nulls(v, f"{path}[{i}]")]
    return []


def inprocess_hub(tenant_: Tenant, **knobs: Any) -> Hub:
    return Hub("inprocess", "http://hub.test", tenant_, app=create_app(inprocess_config(**knobs)))
