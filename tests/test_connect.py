"""Endpoint resolution: flags, environment, the local default, CI, tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.connect import DEFAULT_API_URL, open_client, resolve_endpoint
from reconciler.errors import UsageError
from reconciler.hub.local import LOCAL_TOKEN
from reconciler.settings import GlobalOptions

CANARY = "canary-tok-7f3e9a1b"


def opts(environ: dict[str, str] | None = None, **kwargs: Any) -> GlobalOptions:
    return GlobalOptions(environ=environ or {}, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "environ", "expected"),
    [
        ({"api_url": "local"}, {}, ("local", "/hub", None)),
        (
            {"api_url": "LOCAL"},
            {"AGENTUITY_SDK_KEY": CANARY, "CI": "true"},
            ("local", "/hub", None),
        ),
        (
            {"api_url": "http://127.0.0.1:8787/"},
            {"AGENTUITY_SDK_KEY": CANARY},
            ("remote", "/hub", "http://127.0.0.1:8787"),
        ),
        (
            {"coder_url": "https://coder.test/"},
            {"AGENTUITY_SDK_KEY": CANARY},
            ("remote", "/api/hub", "https://coder.test"),
        ),
        (
            {"api_url": "https://api.test", "coder_url": "https://coder.test"},
            {"AGENTUITY_SDK_KEY": CANARY},
            ("remote", "/api/hub", "https://coder.test"),
        ),
        ({}, {"AGENTUITY_SDK_KEY": CANARY}, ("remote", "/hub", DEFAULT_API_URL)),
        ({}, {"AGENTUITY_SDK_KEY": CANARY, "CI": "true"}, ("remote", "/hub", DEFAULT_API_URL)),
        (
            {"api_url": "https://api.test"},
            {"AGENTUITY_CLI_KEY": CANARY},
            ("remote", "/hub", "https://api.test"),
        ),
    ],
)
def test_resolution(
    kwargs: dict[str, Any], environ: dict[str, str], expected: tuple[Any, ...]
) -> None:
    endpoint = resolve_endpoint(opts(environ, **kwargs))
    kind, prefix, base = expected
    assert (endpoint.kind, endpoint.hub_prefix) == (kind, prefix)
    if base is not None:
        assert endpoint.base_url == base
        assert endpoint.token == CANARY
    else:
        assert endpoint.token == LOCAL_TOKEN


def test_sdk_key_wins_over_cli_key() -> None:
    env = {"AGENTUITY_SDK_KEY": "sdk", "AGENTUITY_CLI_KEY": "cli"}
    assert resolve_endpoint(opts(env, api_url="https://a.test")).token == "sdk"


def test_org_from_options() -> None:
    env = {"AGENTUITY_SDK_KEY": CANARY}
    assert resolve_endpoint(opts(env, org="org_1")).org_id == "org_1"
    assert resolve_endpoint(opts(api_url="local", org="org_2")).org_id == "org_2"


def test_implicit_local_is_announced_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    options = opts(local_db="x/hub.sqlite3")
    for _ in range(3):
        assert resolve_endpoint(options).kind == "local"
    err = capsys.readouterr().err
    # The absolute path, and that the database is new (so empty).
    assert err == (
        f"reconciler: using the embedded local hub ({tmp_path}/x/hub.sqlite3, created now: "
        "no sessions yet); set CODER_API_URL or AGENTUITY_SDK_KEY to use the Coder API\n"
    )
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "hub.sqlite3").touch()
    resolve_endpoint(opts(local_db="x/hub.sqlite3"))  # another run announces again
    assert capsys.readouterr().err.startswith(
        f"reconciler: using the embedded local hub ({tmp_path}/x/hub.sqlite3); set"
    )


def test_explicit_local_is_announced_only_when_new(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "hub.sqlite3"
    options = opts(api_url="local", local_db=str(db))
    resolve_endpoint(options)
    resolve_endpoint(options)
    assert capsys.readouterr().err == (
        f"reconciler: using the embedded local hub ({db}, created now: no sessions yet)\n"
    )
    db.touch()
    resolve_endpoint(opts(api_url="local", local_db=str(db)))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_implicit_local_refused_in_ci(ci: str) -> None:
    with pytest.raises(UsageError, match="--api-url local") as info:
        resolve_endpoint(opts({"CI": ci}))
    assert info.value.exit_code == 64


@pytest.mark.parametrize(
    "kwargs", [{"api_url": "https://api.test"}, {"coder_url": "https://coder.test"}]
)
def test_remote_without_token_is_a_usage_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError, match="AGENTUITY_SDK_KEY") as info:
        resolve_endpoint(opts(**kwargs))
    assert info.value.exit_code == 64


@pytest.mark.parametrize(
    "url", ["ftp://x.test", "api.test", "https://user:pw@api.test", "https://api.test/?k=v"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(UsageError) as info:
        resolve_endpoint(opts({"AGENTUITY_SDK_KEY": CANARY}, api_url=url))
    assert "pw" not in str(info.value)


def test_reprs_redact_the_token() -> None:
    endpoint = resolve_endpoint(opts({"AGENTUITY_SDK_KEY": CANARY}, api_url="https://a.test"))
    assert CANARY not in repr(endpoint) and CANARY not in str(endpoint)
    assert "token=***" in repr(endpoint)


async def test_open_client_remote_settings() -> None:
    env = {"AGENTUITY_SDK_KEY": CANARY}
    client = open_client(opts(env, coder_url="https://coder.test", org="org_1"), page_size=7)
    async with client:
        assert (client.base_url, client.hub_prefix, client.org_id) == (
            "https://coder.test",
            "/api/hub",
            "org_1",
        )
        assert client.page_size == 7
        assert CANARY not in repr(client)


async def test_open_client_org_override_is_a_fallback() -> None:
    env = {"AGENTUITY_SDK_KEY": CANARY}
    async with open_client(opts(env, api_url="https://a.test"), org_id="org_p") as client:
        assert client.org_id == "org_p"
    async with open_client(opts(env, api_url="https://a.test", org="org_f"), org_id="org_p") as c:
        assert c.org_id == "org_f"  # --org wins over a Project's orgId


async def test_open_client_local_creates_the_database_directory(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "dir" / "hub.sqlite3"
    async with open_client(opts(api_url="local", local_db=str(db), org="org_team")) as client:
        created = await client.create_session({"task": "t"})
        listed = await client.list_all_sessions()
    assert [s["sessionId"] for s in listed] == [created["sessionId"]]
    assert db.exists()
    # The built-in token may act in any org: the session lives in org_team only.
    async with open_client(opts(api_url="local", local_db=str(db))) as client:
        assert await client.list_all_sessions() == []
