"""apply_plan end to end against the local hub (in-process): the scenarios of issue 6.

Planning here is the planner over a fresh listing (what ``reconciler plan`` does);
each scenario edits manifests, plans, applies, and checks the hub with GETs.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.applier import apply_plan
from reconciler.client import CoderClient, RetryPolicy
from reconciler.connect import LocalHubTransport
from reconciler.hub.app import create_app
from reconciler.hub.config import HubConfig, TokenGrant
from reconciler.manifest import load_manifests
from reconciler.model import ActionResult, ApplyReport, Marker, Plan, RemoteSession
from reconciler.planner import needs_detail, plan

TOKEN = "e2e-token"
ORG = "org_e2e"
FAST_RETRY = RetryPolicy(attempts=5, base_delay=0.005, max_delay=0.02, total_seconds=5)


def project_doc(prune: str = "archive") -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: reconciler/v1
        kind: Project
        name: team
        policy: {{prune: {prune}, maxDestroyPercent: 100, protectLive: false}}
        """
    )


def session_doc(
    name: str,
    *,
    task: str = "do it",
    label: str | None = None,
    tags: str = "[a]",
    state: str = "active",
    loop: bool = False,
) -> str:
    extra = "  workflowMode: loop\n  loop: {goal: g, maxIterations: 3}\n" if loop else ""
    return (
        f"---\napiVersion: reconciler/v1\nkind: Session\nname: {name}\nspec:\n"
        f"  task: {task}\n  label: {label or name}\n  tags: {tags}\n  state: {state}\n{extra}"
    )


class Workspace:
    """The hub app in-process; clients over it; manifests in a directory."""

    def __init__(self, root: Path, config: HubConfig) -> None:
        self.root = root
        self.app = create_app(config)
        self.dir = root / "manifests"
        self.dir.mkdir()

    def client(self, **kw: Any) -> CoderClient:
        return CoderClient(
            "http://hub.test",
            token=TOKEN,
            org_id=ORG,
            transport=LocalHubTransport(self.app),
            retry=FAST_RETRY,
            **kw,
        )

    def write(self, text: str, name: str = "sessions.yaml") -> None:
        (self.dir / name).write_text(text)

    async def plan(self, client: CoderClient) -> Plan:
        loaded = load_manifests([str(self.dir)], environ={})
        observed = [
            RemoteSession.from_api(i) for i in await client.list_all_sessions(include_archived=True)
        ]
        ids = needs_detail(loaded.project, loaded.sessions, observed)
        details = {i: await client.get_session(i) for i in ids}
        return plan(loaded.project, loaded.sessions, observed, details=details)

    async def apply(self, client: CoderClient, **kw: Any) -> tuple[Plan, ApplyReport]:
        p = await self.plan(client)
        return p, await apply_plan(p, client, environ={}, **kw)

    async def admin(self, session_id: str, body: dict[str, Any]) -> None:
        async with httpx.AsyncClient(
            transport=LocalHubTransport(self.app), base_url="http://hub.test"
        ) as http:
            r = await http.post(
                f"/hub/session/{session_id}/_admin",
                json=body,
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert r.status_code == 200, r.text


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Workspace]:
    config = HubConfig(
        db_path=str(tmp_path / "hub.sqlite3"),
        tokens={TOKEN: TokenGrant(ORG, "user_e2e")},
        admin=True,
    )
    h = Workspace(tmp_path, config)
    h.write(project_doc(), "project.yaml")
    yield h


def kinds(p: Plan) -> list[tuple[str, str]]:
    return [(a.kind, a.name) for a in p.actions]


def live_by_name(items: list[dict[str, Any]]) -> Counter[str]:
    names: Counter[str] = Counter()
    for item in items:
        remote = RemoteSession.from_api(item)
        if not remote.archived_like:
            for m in remote.markers():
                names[m.name] += 1
    return names


async def test_lifecycle_scenarios(hub: Workspace) -> None:
    hub.write(session_doc("alpha") + session_doc("beta") + session_doc("gamma"))
    async with hub.client() as client:
        p, report = await hub.apply(client)
        assert kinds(p) == [("create", "alpha"), ("create", "beta"), ("create", "gamma")]
        assert report.failed == ()
        assert (await hub.plan(client)).actions == ()
        ids = {r.action.name: r.session_id for r in report.results}

        # A label or tags edit: an update and nothing else.
        hub.write(
            session_doc("alpha", label="Alpha!", tags="[a, b]")
            + session_doc("beta")
            + session_doc("gamma")
        )
        p, report = await hub.apply(client)
        assert kinds(p) == [("update", "alpha")]
        got = await client.get_session(ids["alpha"])
        assert got["label"] == "Alpha!" and "b" in got["tags"]

        # A task edit: a replacement; the new session records what it replaces.
        hub.write(
            session_doc("alpha", label="Alpha!", tags="[a, b]", task="do it better")
            + session_doc("beta")
            + session_doc("gamma")
        )
        p, report = await hub.apply(client)
        assert kinds(p) == [("replace", "alpha")]
        new_id = report.results[0].session_id
        assert new_id and new_id != ids["alpha"]
        new = await client.get_session(new_id)
        assert new["metadata"]["reconciler"]["replaces"] == ids["alpha"]
        assert (await client.get_session(ids["alpha"]))["status"] == "archived"

        # state: archived archives; a paused session declared active is resumed.
        await hub.admin(ids["gamma"], {"status": "paused"})
        hub.write(
            session_doc("alpha", label="Alpha!", tags="[a, b]", task="do it better")
            + session_doc("beta", state="archived")
            + session_doc("gamma")
        )
        p, report = await hub.apply(client)
        assert kinds(p) == [("archive", "beta"), ("resume", "gamma")]
        assert report.failed == ()
        assert (await client.get_session(ids["beta"]))["status"] == "archived"
        assert (await client.get_session(ids["gamma"]))["status"] != "paused"

        # Removing a manifest archives it (prune archive) ...
        hub.write(session_doc("alpha", label="Alpha!", tags="[a, b]", task="do it better"))
        p, report = await hub.apply(client)
        assert kinds(p) == [("archive", "gamma")]
        assert (await client.get_session(ids["gamma"]))["status"] == "archived"
        assert (await hub.plan(client)).actions == ()

        # ... or deletes it (prune delete).
        hub.write(project_doc("delete"), "project.yaml")
        (hub.dir / "sessions.yaml").unlink()
        p, report = await hub.apply(client)
        assert kinds(p) == [("delete", "alpha")]
        assert report.failed == ()
        listed = await client.list_all_sessions(include_archived=True)
        assert new_id not in {i["sessionId"] for i in listed}


async def test_two_concurrent_applies_then_one_more_leave_one_session_per_name(
    hub: Workspace,
) -> None:
    names = [f"s{i:02d}" for i in range(12)]
    hub.write("".join(session_doc(n) for n in names))
    async with hub.client() as one, hub.client() as two:
        (_, r1), (_, r2) = await asyncio.gather(hub.apply(one), hub.apply(two))
        assert r1.failed == () and r2.failed == ()
        _, r3 = await hub.apply(one)
        assert r3.failed == ()
        assert (await hub.plan(one)).actions == ()
        counts = live_by_name(await one.list_all_sessions(include_archived=True))
        assert counts == Counter({n: 1 for n in names})


async def test_interrupted_apply_is_finished_by_the_next(hub: Workspace) -> None:
    names = [f"s{i:02d}" for i in range(20)]
    hub.write("".join(session_doc(n, task="v1") for n in names[:10]))
    async with hub.client() as client:
        await hub.apply(client)
        # Ten replacements and ten creates, stopped after six results.
        hub.write("".join(session_doc(n, task="v2") for n in names))
        stop = asyncio.Event()
        seen: list[ActionResult] = []

        def on_result(result: ActionResult) -> None:
            seen.append(result)
            if len(seen) == 6:
                stop.set()

        p, report = await hub.apply(client, parallelism=4, on_result=on_result, stop_event=stop)
        assert report.interrupted
        done = [r for r in report.results if r.outcome == "succeeded"]
        assert 6 <= len(done) < len(p.actions)
        p2, report2 = await hub.apply(client)
        assert not report2.interrupted and report2.failed == ()
        assert (await hub.plan(client)).actions == ()
        listed = await client.list_all_sessions(include_archived=True)
        assert live_by_name(listed) == Counter({n: 1 for n in names})
        # Every live session is of the v2 manifests.
        loaded = load_manifests([str(hub.dir)], environ={})
        wanted = {d.marker_tag("team") for d in loaded.sessions}
        live_tags = {
            t
            for i in listed
            if i["status"] not in ("archived",)
            for t in i["tags"]
            if Marker.parse(t) is not None
        }
        assert live_tags == wanted


async def test_one_apply_never_makes_two_sessions_for_one_marker_when_answers_are_lost(
    tmp_path: Path,
) -> None:
    # Half of all answers lost (the effect commits): every create is settled by marker.
    config = HubConfig(
        db_path=str(tmp_path / "lossy.sqlite3"),
        tokens={TOKEN: TokenGrant(ORG, "user_e2e")},
        lost_response_rate=0.5,
        seed=3,
    )
    hub = Workspace(tmp_path, config)
    hub.write(project_doc(), "project.yaml")
    hub.write("".join(session_doc(f"s{i:02d}") for i in range(30)))
    async with hub.client() as client:
        p = await hub.plan(client)
        report = await apply_plan(p, client, environ={})
        outcomes = Counter(r.outcome for r in report.results)
        assert outcomes["adopted"] > 0  # the faults did bite
        items = await client.list_all_sessions(include_archived=True)
    per_marker = Counter(t for i in items for t in i["tags"] if Marker.parse(t) is not None)
    assert set(per_marker.values()) == {1}
    assert len(per_marker) == outcomes["succeeded"] + outcomes["adopted"]
