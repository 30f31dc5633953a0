"""Endpoint resolution: flags, environment, the local default, CI, tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.connect import DEFAULT_API_URL, endpoint_banner, open_client, resolve_endpoint
from reconciler.errors import UsageError
from reconciler.hub.local import LOCAL_GRANT, LOCAL_TOKEN
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
        ({}, {"AGENTUITY_CLI_KEY": CANARY}, ("remote", "/hub", DEFAULT_API_URL)),
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


@pytest.mark.parametrize("environ", [{}, {"CI": "true"}, {"AGENTUITY_ORG_ID": "org_1"}])
def test_no_hub_configured_is_a_usage_error_naming_both_ways(
    environ: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as info:
        resolve_endpoint(opts(environ))
    assert info.value.exit_code == 64
    message = str(info.value)
    assert "--api-url local" in message and "CODER_API_URL=local" in message
    assert "CODER_API_URL (or --api-url URL) and AGENTUITY_SDK_KEY" in message
    assert list(tmp_path.iterdir()) == []


def test_resolving_draws_nothing_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "state" / "hub.sqlite3"
    options = opts(api_url="local", local_db=str(db))
    assert resolve_endpoint(options) == resolve_endpoint(options)
    assert capsys.readouterr() == ("", "")
    assert list(tmp_path.iterdir()) == []


def test_banner_only_for_a_new_local_database(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    endpoint = resolve_endpoint(opts(api_url="local", local_db=str(db)))
    assert endpoint_banner(endpoint) == (
        f"reconciler: using the embedded local hub ({db}, no database there yet: its "
        "first request makes one, empty)"
    )
    db.touch()
    assert endpoint_banner(endpoint) is None
    remote = resolve_endpoint(opts({"AGENTUITY_SDK_KEY": CANARY}, api_url="https://a.test"))
    assert endpoint_banner(remote) is None


def test_org_for_prefers_the_run_then_the_project_then_the_token() -> None:
    local = resolve_endpoint(opts(api_url="local"))
    assert (local.org_for(None), local.org_for("org_p")) == (LOCAL_GRANT.org_id, "org_p")
    named = resolve_endpoint(opts(api_url="local", org="org_run"))
    assert named.org_for("org_p") == "org_run"
    remote = resolve_endpoint(opts({"AGENTUITY_SDK_KEY": CANARY}, api_url="https://a.test"))
    assert (remote.org_for(None), remote.org_for("org_p")) == (None, "org_p")


@pytest.mark.parametrize(
    "kwargs", [{"api_url": "https://api.test"}, {"coder_url": "https://coder.test"}]
)
def test_remote_without_token_is_a_usage_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError, match="AGENTUITY_SDK_KEY") as info:
        resolve_endpoint(opts(**kwargs))
    assert info.value.exit_code == 64


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x.test",
        "api.test",
        "https://user:pw@api.test",
        "https://api.test/?k=v",
        # Each was a traceback (urlsplit's ValueError).
        "http://[::1",
        "http://api.test:99999",
        "http://api.test:pw",
        # urlsplit reads these; httpx refuses them when sending (a traceback).
        "http://[::1]pw/",
        "http://[::1]x:80",
        "http://[v1.x]/",
        "https://xn--a.example",  # IDNA cannot read it (decoded only when sending)
    ],
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
    endpoint = resolve_endpoint(opts(env, coder_url="https://coder.test", org="org_1"))
    client = open_client(endpoint, page_size=7)
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
    plain = resolve_endpoint(opts(env, api_url="https://a.test"))
    async with open_client(plain, org_id="org_p") as client:
        assert client.org_id == "org_p"
    named = resolve_endpoint(opts(env, api_url="https://a.test", org="org_f"))
    async with open_client(named, org_id="org_p") as c:
        assert c.org_id == "org_f"  # --org wins over a Project's orgId


async def test_open_client_local_creates_the_database_directory(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "dir" / "hub.sqlite3"
    team = resolve_endpoint(opts(api_url="local", local_db=str(db), org="org_team"))
    async with open_client(team) as client:
        created = await client.create_session({"task": "t"})
        listed = await client.list_all_sessions()
    assert [s["sessionId"] for s in listed] == [created["sessionId"]]
    assert db.exists()
    # The built-in token may act in any org: the session lives in org_team only.
    async with open_client(resolve_endpoint(opts(api_url="local", local_db=str(db)))) as client:
        assert await client.list_all_sessions() == []


async def test_the_endpoints_retry_policy_reaches_the_client_it_opens() -> None:
    """The one client builder passes an injected policy on; without one, the default."""
    import dataclasses

    from reconciler.client import RetryPolicy

    endpoint = resolve_endpoint(
        GlobalOptions(api_url="http://127.0.0.1:9", environ={"AGENTUITY_SDK_KEY": "k"})
    )
    policy = RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0)
    async with open_client(dataclasses.replace(endpoint, retry=policy)) as client:
        assert client.retry is policy
    async with open_client(endpoint) as client:
        assert client.retry == RetryPolicy()
    assert dataclasses.replace(endpoint, retry=policy) == endpoint  # not part of identity


def test_timeout_reaches_the_client_connecting_at_most_the_default() -> None:
    """``--timeout`` (``CODER_TIMEOUT``) is each answer's wait; connecting keeps its
    shorter default unless the timeout is shorter still."""
    environ = {"AGENTUITY_SDK_KEY": CANARY}
    for seconds, connect in ((0.25, 0.25), (120.0, 5.0)):
        endpoint = resolve_endpoint(opts(environ, api_url="http://127.0.0.1:9", timeout=seconds))
        client = open_client(endpoint)
        timeout = client._http.timeout
        assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (
            connect,
            seconds,
            seconds,
            seconds,
        )
    default = open_client(resolve_endpoint(opts(environ, api_url="http://127.0.0.1:9")))
    assert (default._http.timeout.connect, default._http.timeout.read) == (5.0, 30.0)


@pytest.mark.subprocess
def test_a_hub_slower_than_the_timeout_fails_the_request_in_that_time(tmp_path: Path) -> None:
    """A real socket: a hub that answers after 3 s (well within the default 30), a create
    with ``--timeout 0.5`` (a create is never repeated: one wait) fails, exit 1, saying
    it timed out; ``CODER_TIMEOUT`` does the same; 0 is a usage error."""
    import os
    import subprocess
    import sys

    from hubproc import start_hub

    with start_hub(tmp_path, extra_args=("--latency-ms", "3000")) as hub:
        base = {**os.environ, "AGENTUITY_SDK_KEY": hub.token, "AGENTUITY_ORG_ID": hub.org_id}
        create = ["sessions", "create", "--task", "t"]
        for flags, extra in (
            (["--timeout", "0.5"], {}),
            ([], {"CODER_TIMEOUT": "0.5"}),
        ):
            done = subprocess.run(
                [sys.executable, "-m", "reconciler", "--api-url", hub.url, *flags, *create],
                capture_output=True,
                text=True,
                env={**base, **extra},
                timeout=60,
                check=False,
            )
            assert done.returncode == 1, done.stderr
            assert "timed out waiting for the response" in done.stderr
            assert "hint: each request waits 0.5 s for its answer: --timeout" in done.stderr
            assert hub.token not in done.stdout + done.stderr
        for bad in ("0", "nan", "inf"):  # NaN passes a range check: every compare is false
            refused = subprocess.run(
                [sys.executable, "-m", "reconciler", "--api-url", hub.url, "--timeout", bad]
                + create,
                capture_output=True,
                text=True,
                env=base,
                timeout=60,
                check=False,
            )
            assert refused.returncode == 64, refused.stderr
            assert "--timeout" in refused.stderr and "Traceback" not in refused.stderr


_UNSHOWN = "not a number of seconds from 0.1 to 3600 (its value is not shown)"


@pytest.mark.parametrize(
    ("flags", "environ", "named", "said"),
    [
        (["--timeout", "abc"], {}, "'--timeout'", "'abc' is not a number of seconds"),
        (["--timeout", "nan"], {}, "'--timeout'", "'nan' is not a number of seconds"),
        ([], {"CODER_TIMEOUT": "abc"}, "CODER_TIMEOUT (from the environment)", _UNSHOWN),
        ([], {"CODER_TIMEOUT": "nan"}, "CODER_TIMEOUT (from the environment)", _UNSHOWN),
        ([], {"CODER_TIMEOUT": "0"}, "CODER_TIMEOUT (from the environment)", _UNSHOWN),
        ([], {"CODER_TIMEOUT": "1e-300"}, "CODER_TIMEOUT (from the environment)", _UNSHOWN),
        ([], {"CODER_TIMEOUT": "inf"}, "CODER_TIMEOUT (from the environment)", _UNSHOWN),
        # A token pasted into the variable by mistake is not echoed.
        (
            [],
            {"CODER_TIMEOUT": "tok_canary_5e1f"},
            "CODER_TIMEOUT (from the environment)",
            _UNSHOWN,
        ),
        # The flag wins over the variable, and its error names the flag.
        (["--timeout", "0"], {"CODER_TIMEOUT": "5"}, "'--timeout'", "0.1<=x<=3600"),
    ],
)
def test_a_bad_timeout_is_refused_naming_where_it_came_from(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    environ: dict[str, str],
    named: str,
    said: str,
) -> None:
    """A bad ``CODER_TIMEOUT`` is the variable's fault, not a flag the user never typed:
    the usage error (64, before anything is read) names the one that gave it."""
    from reconciler.cli.main import run

    monkeypatch.delenv("CODER_TIMEOUT", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert run([*flags, "validate", str(tmp_path)]) == 64
    err = capsys.readouterr().err
    assert f"Invalid value for {named}: " in err
    assert said in err
    wrong = "CODER_TIMEOUT" if named.startswith("'--") else "'--timeout'"
    assert wrong not in err
    assert "tok_canary_5e1f" not in err


def test_a_good_timeout_from_the_environment_is_used(tmp_path: Path) -> None:
    """The variable's value reaches the options as a number of seconds."""
    import click
    from click.testing import CliRunner

    from reconciler.cli.main import cli

    seen: list[float | None] = []

    @cli.command("probe-timeout", hidden=True)
    @click.pass_obj
    def probe(opts: GlobalOptions) -> None:
        seen.append(opts.timeout)

    try:
        done = CliRunner().invoke(cli, ["probe-timeout"], env={"CODER_TIMEOUT": " 2.5"})
    finally:
        cli.commands.pop("probe-timeout", None)
    assert done.exit_code == 0, done.output
    assert seen == [2.5]
