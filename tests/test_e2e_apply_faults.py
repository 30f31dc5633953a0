"""Convergence under faults, over a real socket: `reconciler hub serve` as a subprocess
with refused requests (503, no effect) and lost responses (effect committed, connection
dropped). 200 sessions must converge in at most 3 applies with zero duplicates, and the
sessions the project does not own must come through untouched."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from clihub import numbered_manifests
from hubproc import start_hub

from reconciler.applier import apply_plan
from reconciler.client import CoderClient, RetryPolicy
from reconciler.manifest import load_manifests
from reconciler.model import RemoteSession
from reconciler.planner import needs_detail, plan

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

N = 200
FAST_RETRY = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.1, total_seconds=10)
UNMANAGED_FIELDS = ("status", "label", "visibility", "tags", "skills", "defaultAgent")


def write_manifests(root: Path) -> Path:
    return numbered_manifests(
        root,
        "bulk",
        N,
        spec="task: task {i}, label: S{i}, tags: [bulk]",
        project_extra="policy: {prune: archive, maxDestroyPercent: 100, protectLive: false}\n",
    )


def snapshot(items: list[dict[str, Any]], ids: set[str]) -> dict[str, tuple[Any, ...]]:
    return {
        i["sessionId"]: tuple(repr(i.get(f)) for f in UNMANAGED_FIELDS)
        for i in items
        if i["sessionId"] in ids
    }


def test_two_hundred_sessions_converge_under_faults_without_duplicates(tmp_path: Path) -> None:
    import asyncio

    manifests = write_manifests(tmp_path)
    # Unmanaged sessions first, on a hub without faults; the same database is then served
    # with faults (starting twice on one tmp_path reuses the data).
    with start_hub(tmp_path) as hub:
        for i in range(3):
            r = httpx.post(
                f"{hub.url}/hub/session",
                headers=hub.headers,
                json={
                    "task": f"hand made {i}",
                    "label": f"mine {i}",
                    "tags": ["bulk", f"reconciler:other/s{i:03d}@0123456789ab"],
                },
            )
            assert r.status_code == 201, r.text
        listed = httpx.get(f"{hub.url}/hub/sessions?includeArchived=true", headers=hub.headers)
        unmanaged_ids = {i["sessionId"] for i in listed.json()["sessions"]["websocket"]}
        before = snapshot(listed.json()["sessions"]["websocket"], unmanaged_ids)

    faults = ["--fail-rate", "0.2", "--lost-response-rate", "0.05", "--seed", "11"]
    with start_hub(tmp_path, extra_args=faults) as hub:

        async def plan_now(client: CoderClient) -> Any:
            loaded = load_manifests([str(manifests)], environ={})
            observed = [
                RemoteSession.from_api(i)
                for i in await client.list_all_sessions(include_archived=True)
            ]
            ids = needs_detail(loaded.project, loaded.sessions, observed)
            details = {i: await client.get_session(i) for i in ids}
            return plan(loaded.project, loaded.sessions, observed, details=details)

        async def converge() -> tuple[int, list[dict[str, Any]], list[Counter[str]]]:
            async with CoderClient(
                hub.url, token=hub.token, org_id=hub.org_id, retry=FAST_RETRY
            ) as client:
                rounds = 0
                outcomes: list[Counter[str]] = []
                while (p := await plan_now(client)).actions:
                    assert rounds < 3, f"not converged after 3 applies: {p.summary()}"
                    rounds += 1
                    report = await apply_plan(p, client, environ={}, parallelism=8)
                    outcomes.append(Counter(r.outcome for r in report.results))
                return rounds, await client.list_all_sessions(include_archived=True), outcomes

        rounds, items, outcomes = asyncio.run(converge())

    assert 1 <= rounds <= 3
    per_marker: Counter[str] = Counter(
        t for i in items for t in i["tags"] if t.startswith("reconciler:bulk/")
    )
    # Zero duplicates: every marker on exactly one session, archived ones included.
    assert len(per_marker) == N and set(per_marker.values()) == {1}, outcomes
    assert all(
        i["status"] not in ("archived", "shutdown", "stopped")
        for i in items
        if any(t.startswith("reconciler:bulk/") for t in i["tags"])
    )
    assert snapshot(items, unmanaged_ids) == before
    print(f"converged in {rounds} applies; outcomes per apply: {outcomes}")
