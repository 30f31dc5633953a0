"""Fault knobs: 503 before any effect, lost responses after the effect, latency, seeds;
in-process (through LocalHubTransport) and over a real socket (`hub serve`)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from hubproc import TenantPool, inprocess_hub, start_hub

from reconciler.hub.faults import FaultDecider, faults_apply_to


def test_faults_apply_to_api_routes_only() -> None:
    assert faults_apply_to("/hub/sessions")
    assert faults_apply_to("/api/hub/session/codesess_1/archive")
    assert not faults_apply_to("/coder")
    assert not faults_apply_to("/hub/session/codesess_1/_admin")
    assert not faults_apply_to("/api/hub/session/codesess_1/_admin")


def test_a_seed_replays_the_same_decisions() -> None:
    def run(seed: int) -> list[tuple[bool, bool]]:
        decider = FaultDecider(0.3, 0.3, seed=seed)
        return [decider.decide() for _ in range(200)]

    decisions = run(42)
    assert run(42) == decisions
    assert any(fail for fail, _ in decisions) and any(lose for _, lose in decisions)
    assert not any(fail and lose for fail, lose in decisions)
    assert run(43) != decisions


def test_rates_outside_zero_to_one_are_refused() -> None:
    from reconciler.hub.config import HubConfig

    for knobs in ({"fail_rate": 1.5}, {"lost_response_rate": -0.1}, {"latency_ms": -1}):
        with pytest.raises(ValueError):
            HubConfig(**knobs)  # type: ignore[arg-type]


async def test_fail_rate_answers_503_before_any_effect() -> None:
    hub = inprocess_hub(TenantPool().take(), fail_rate=1.0)
    store = hub.app.state.store
    try:
        api = hub.client()
        answer = await api.post("/hub/session", json={"task": "t"})
        assert answer.status_code == 503
        assert answer.json()["code"] == "CODER_UNAVAILABLE"
        assert store.list_sessions(hub.tenant.org_id)[1] == 0
        # Discovery is not subject to the knobs.
        assert (await api.get("/coder")).status_code == 200
    finally:
        await hub.aclose()
        store.close()


async def test_lost_response_commits_then_raises_remote_protocol_error() -> None:
    hub = inprocess_hub(TenantPool().take(), lost_response_rate=1.0)
    store = hub.app.state.store
    try:
        api = hub.client()
        with pytest.raises(httpx.RemoteProtocolError):
            await api.post("/hub/session", json={"task": "lost but made"})
        records, total = store.list_sessions(hub.tenant.org_id)
        assert total == 1
        # A list page carries no task: read the whole record to see what was made.
        made = store.get_session(hub.tenant.org_id, records[0].session_id)
        assert made.task == "lost but made"
        # The admin route is exempt, so a test can still arrange state.
        admin = f"/hub/session/{records[0].session_id}/_admin"
        answer = await api.post(admin, json={"status": "paused"})
        assert answer.status_code == 200 and answer.json()["status"] == "paused"
    finally:
        await hub.aclose()
        store.close()


async def test_seeded_app_gives_the_same_sequence_of_outcomes() -> None:
    async def outcomes() -> list[str]:
        hub = inprocess_hub(TenantPool().take(), fail_rate=0.3, lost_response_rate=0.3, seed=7)
        try:
            api = hub.client()
            seen = []
            for _ in range(30):
                try:
                    seen.append(str((await api.get("/hub/sessions")).status_code))
                except httpx.RemoteProtocolError:
                    seen.append("lost")
            return seen
        finally:
            await hub.aclose()
            hub.app.state.store.close()

    first, second = await outcomes(), await outcomes()
    assert first == second
    assert {"200", "503", "lost"} <= set(first)


async def test_latency_is_added_to_api_requests() -> None:
    hub = inprocess_hub(TenantPool().take(), latency_ms=80)
    try:
        api = hub.client()
        started = time.monotonic()
        await asyncio.gather(*(api.get("/hub/sessions") for _ in range(3)))
        elapsed = time.monotonic() - started
        assert 0.08 <= elapsed < 2.0
    finally:
        await hub.aclose()
        hub.app.state.store.close()


@pytest.mark.subprocess
def test_over_a_socket_fail_rate_has_no_effect_and_lost_responses_commit(
    tmp_path: Path,
) -> None:
    def count(url: str, headers: dict[str, str]) -> int:
        return int(httpx.get(f"{url}/hub/sessions", headers=headers).json()["total"])

    with start_hub(tmp_path, extra_args=("--fail-rate", "1")) as hub:
        answer = httpx.post(f"{hub.url}/hub/session", json={"task": "t"}, headers=hub.headers)
        assert answer.status_code == 503 and answer.json()["code"] == "CODER_UNAVAILABLE"
        assert httpx.get(f"{hub.url}/coder", headers=hub.headers).status_code == 200
    with start_hub(tmp_path, extra_args=("--lost-response-rate", "1", "--admin")) as hub:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(f"{hub.url}/hub/session", json={"task": "kept"}, headers=hub.headers)
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"{hub.url}/api/hub/sessions", headers=hub.headers)
        assert hub.process.poll() is None  # the server itself is fine
    with start_hub(tmp_path) as hub:
        listing = httpx.get(f"{hub.url}/hub/sessions", headers=hub.headers).json()
        assert listing["total"] == 1
        assert count(hub.url, hub.headers) == 1
        [item] = listing["sessions"]["websocket"]
        detail = httpx.get(f"{hub.url}/hub/session/{item['sessionId']}", headers=hub.headers)
        assert detail.json()["task"] == "kept"
    log = (tmp_path / "hub-serve.log").read_text()
    # A lost response is on purpose: no traceback, no "bug" line in the server's output.
    assert "Traceback" not in log and "hub bug" not in log
