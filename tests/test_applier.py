"""The executor against an in-memory fake client: order, parallelism, idempotent create,
dependants, Ctrl-C. The fake records every call so tests assert exact request sequences."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from typing import Any

import pytest

from reconciler.applier import apply_plan
from reconciler.errors import (
    BadRequestError,
    ConflictError,
    ConnectFailedError,
    ManifestError,
    NotFoundError,
    ServerError,
    TokenCopyError,
    TransportError,
    UnsetEnvError,
)
from reconciler.model import Action, ActionResult, Plan, SourceLocation

PROJECT = "team"


def marker(name: str, digest: str = "0123456789ab") -> str:
    return f"reconciler:{PROJECT}/{name}@{digest}"


# Gateways answering for a hub that may have had the request, by fault name.
_GATEWAY_FAULTS = {"gateway": 504, "cloudflare": 524, "bad-gateway": 502, "origin-error": 520}


class FakeClient:
    """Sessions in a dict; scripted faults per operation; in-flight accounting.

    A fault is ``"lost"`` (the effect commits, the caller gets TransportError),
    ``"late"`` (a create times out and commits only when ``commit_late`` is called,
    after the apply's look, as a hub slower than the client's timeout does),
    ``"gateway"``, ``"cloudflare"``, ``"bad-gateway"`` and ``"origin-error"`` (the same
    with a gateway's 504, Cloudflare's 524, a proxy's 502, Cloudflare's 520),
    ``"refused"`` (503 before any effect) or ``"down"`` (no connection: nothing
    sent), consumed one per call of that operation.
    """

    def __init__(self, *, latency: float = 0.0) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.latency = latency
        self.in_flight = 0
        self.max_in_flight = 0
        self._ids = itertools.count(1)
        self.sent_bodies: list[dict[str, Any]] = []
        self.committing: list[dict[str, Any]] = []  # "late" creates, not made yet

    def add(self, *, tags: list[str], status: str = "active", sid: str | None = None) -> str:
        sid = sid or f"codesess_{next(self._ids):04d}"
        self.sessions[sid] = {"sessionId": sid, "status": status, "tags": list(tags)}
        return sid

    async def _enter(self, op: str, arg: str) -> str | None:
        self.calls.append((op, arg))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        fault = self.faults[op].pop(0) if self.faults[op] else None
        if fault == "refused":
            raise ServerError("service unavailable", status=503)
        if fault == "broken":
            raise BadRequestError("bad", status=400)
        if fault == "down":
            raise ConnectFailedError("hub unreachable: cannot connect; nothing was sent")
        return fault

    @staticmethod
    def _lost(fault: str | None) -> None:
        if fault == "lost":
            raise TransportError("connection dropped")

    async def create_session(self, body: dict[str, Any]) -> Any:
        fault = await self._enter("create", str(body.get("label", "")))
        self.sent_bodies.append(body)
        if fault in ("late", *_GATEWAY_FAULTS):
            self.committing.append(body)
            if fault != "late":
                raise ServerError("gateway said so", status=_GATEWAY_FAULTS[fault])
            raise TransportError("timed out waiting for the response")
        sid = self.add(tags=list(body.get("tags", [])))
        self._lost(fault)
        return {"sessionId": sid, "status": "active"}

    async def update_session(self, session_id: str, body: dict[str, Any]) -> Any:
        fault = await self._enter("update", session_id)
        self.sessions[session_id].update(body)
        self._lost(fault)
        return {"sessionId": session_id}

    async def archive_session(self, session_id: str) -> Any:
        fault = await self._enter("archive", session_id)
        if self.sessions[session_id]["status"] == "archived":
            raise ConflictError("archived", status=409, code="CODER_SESSION_ARCHIVED")
        self.sessions[session_id]["status"] = "archived"
        self._lost(fault)
        return {"sessionId": session_id, "status": "archived"}

    async def resume_session(self, session_id: str) -> Any:
        fault = await self._enter("resume", session_id)
        self.sessions[session_id]["status"] = "active"
        self._lost(fault)
        return {"sessionId": session_id, "status": "resuming"}

    async def delete_session(self, session_id: str) -> Any:
        fault = await self._enter("delete", session_id)
        if session_id not in self.sessions:
            raise NotFoundError("gone", status=404)
        del self.sessions[session_id]
        self._lost(fault)
        return {"sessionId": session_id, "status": "deleted"}

    async def get_session(self, session_id: str) -> Any:
        await self._enter("get", session_id)
        if session_id not in self.sessions:
            raise NotFoundError("gone", status=404)
        return dict(self.sessions[session_id])

    async def list_all_sessions(
        self, *, include_archived: bool = False, search: str | None = None
    ) -> list[dict[str, Any]]:
        fault = await self._enter("list", search or "")
        if fault == "lost":
            raise TransportError("connection dropped")
        items = [dict(s) for s in self.sessions.values()]
        if search:
            items = [s for s in items if any(search in t for t in s["tags"])]
        return items

    def commit_late(self) -> None:
        """The hub makes the sessions of the "late" creates, at last."""
        for body in self.committing:
            self.add(tags=list(body.get("tags", [])))
        self.committing.clear()

    def ops(self) -> list[str]:
        return [op for op, _ in self.calls]


def create(name: str, **body: Any) -> Action:
    tag = marker(name)
    return Action(
        "create", name, body={"task": "t", "label": name, "tags": [tag], **body}, marker_tag=tag
    )


def replace(name: str, old: str, *, replace_with: str = "archive") -> Action:
    """As the planner makes it: ``marker_tag`` is the new session's marker."""
    return Action(
        "replace",
        name,
        session_id=old,
        marker_tag=marker(name),
        body={"task": "new", "tags": ["team", marker(name)]},
        replace_with=replace_with,
    )  # type: ignore[arg-type]


def plan_of(*actions: Action) -> Plan:
    return Plan(project=PROJECT, actions=tuple(actions))


def outcomes(report: Any) -> dict[str, str]:
    return {f"{r.action.kind} {r.action.name}": r.outcome for r in report.results}


async def test_phases_run_in_order_creates_updates_archives_deletes() -> None:
    client = FakeClient()
    old = client.add(tags=[marker("r", "aaaaaaaaaaaa")])
    upd = client.add(tags=[marker("u")])
    paused = client.add(tags=[marker("p")], status="paused")
    arc = client.add(tags=[marker("a")])
    dele = client.add(tags=[marker("d")])
    new_tag = marker("r")
    plan = plan_of(
        Action("delete", "d", session_id=dele),
        Action("archive", "a", session_id=arc),
        replace("r", old),
        Action("update", "u", session_id=upd, body={"label": "L"}),
        Action("resume", "p", session_id=paused),
        create("c"),
    )
    report = await apply_plan(plan, client, environ={}, parallelism=1)
    assert client.calls == [
        ("create", ""),
        ("create", "c"),
        ("update", upd),
        ("resume", paused),
        ("archive", arc),
        ("archive", old),
        ("delete", dele),
    ]
    # The report is in plan order, whatever the completion order was.
    assert [r.action.name for r in report.results] == ["d", "a", "r", "u", "p", "c"]
    assert set(outcomes(report).values()) == {"succeeded"}
    replaced = report.results[2]
    assert replaced.session_id != old and client.sessions[replaced.session_id]["tags"] == [
        "team",
        new_tag,
    ]
    assert client.sessions[old]["status"] == "archived"
    assert dele not in client.sessions


@pytest.mark.parametrize("parallelism", [1, 3, 8])
async def test_parallelism_bounds_requests_in_flight(parallelism: int) -> None:
    client = FakeClient(latency=0.01)
    plan = plan_of(*(create(f"s{i}") for i in range(20)))
    report = await apply_plan(plan, client, environ={}, parallelism=parallelism)
    assert client.max_in_flight == parallelism
    assert len(client.sessions) == 20
    assert all(r.outcome == "succeeded" for r in report.results)


async def test_parallelism_must_be_positive() -> None:
    with pytest.raises(ValueError):
        await apply_plan(plan_of(create("a")), FakeClient(), environ={}, parallelism=0)


async def test_lost_create_answer_is_adopted_by_marker_not_repeated() -> None:
    client = FakeClient()
    client.faults["create"] = ["lost"]
    report = await apply_plan(plan_of(create("a")), client, environ={})
    assert client.ops() == ["create", "list"]
    assert client.calls[1] == ("list", marker("a"))
    [result] = report.results
    assert result.outcome == "adopted"
    assert result.session_id in client.sessions
    assert len(client.sessions) == 1


async def test_refused_create_is_settled_then_repeated() -> None:
    client = FakeClient()
    client.faults["create"] = ["refused"]
    report = await apply_plan(plan_of(create("a")), client, environ={})
    # Search, then the full listing, then (absent for sure) one more create.
    assert client.ops() == ["create", "list", "list", "create"]
    assert report.results[0].outcome == "succeeded"
    assert len(client.sessions) == 1


@pytest.mark.parametrize("fault", ["late", *_GATEWAY_FAULTS])
async def test_a_create_the_hub_may_still_be_making_is_never_sent_again(fault: str) -> None:
    """Timed out (or a gateway's 504, 502...) and not in the listing yet: the hub may
    still make it (or its list lag behind it), so sending it again would leave a twin
    (one per attempt against a hub slower than the timeout; three copies from a proxy's
    502 in front of a lagging list). The action fails saying so; the next apply adopts
    the session."""
    client = FakeClient()
    client.faults["create"] = [fault]
    report = await apply_plan(plan_of(create("a")), client, environ={})
    assert client.ops() == ["create", "list", "list"]  # looked, never sent again
    [result] = report.results
    assert result.outcome == "failed"
    assert "the hub may still make it: not sent again" in (result.error or "")
    client.commit_late()
    assert len(client.sessions) == 1  # the one the hub made late: no twin
    [session] = client.sessions.values()
    assert session["tags"] == [marker("a")]  # what the next apply's look finds


async def test_create_is_repeated_at_most_twice() -> None:
    client = FakeClient()
    client.faults["create"] = ["refused"] * 5
    report = await apply_plan(plan_of(create("a")), client, environ={})
    assert client.ops().count("create") == 3
    [result] = report.results
    assert result.outcome == "failed"
    assert "503" in (result.error or "")
    assert client.sessions == {}


async def test_failed_settlement_fails_the_action_without_a_blind_repeat() -> None:
    client = FakeClient()
    client.faults["create"] = ["refused"]
    client.faults["list"] = ["lost"]
    report = await apply_plan(plan_of(create("a")), client, environ={})
    assert client.ops() == ["create", "list"]
    [result] = report.results
    assert result.outcome == "failed"
    assert "not repeated" in (result.error or "")


async def test_settlement_adopts_only_the_exact_live_marker() -> None:
    client = FakeClient()
    # Same name, archived (older lineage), and a tag that merely starts with ours.
    client.add(tags=[marker("a")], status="archived")
    client.add(tags=[marker("a") + "x"])
    client.faults["create"] = ["refused"]
    report = await apply_plan(plan_of(create("a")), client, environ={})
    assert client.ops() == ["create", "list", "list", "create"]
    assert report.results[0].outcome == "succeeded"


async def test_replacement_settles_by_its_new_marker_never_adopting_the_old_session() -> None:
    client = FakeClient()
    old = client.add(tags=[marker("r", "aaaaaaaaaaaa")])
    client.faults["create"] = ["refused", "lost"]
    [result] = (await apply_plan(plan_of(replace("r", old)), client, environ={})).results
    assert client.ops() == ["create", "list", "list", "create", "list", "archive"]
    assert client.calls[1] == ("list", marker("r"))
    assert result.outcome == "adopted" and result.session_id not in (None, old)
    assert client.sessions[old]["status"] == "archived"
    assert client.sessions[result.session_id]["status"] == "active"


async def test_definite_create_error_is_not_settled_or_repeated() -> None:
    client = FakeClient()
    client.faults["create"] = ["broken"]
    report = await apply_plan(plan_of(create("a"), create("b")), client, environ={}, parallelism=1)
    assert client.ops() == ["create", "create"]
    assert outcomes(report) == {"create a": "failed", "create b": "succeeded"}


async def test_failed_replacement_create_skips_the_old_archive_and_others_carry_on() -> None:
    client = FakeClient()
    old = client.add(tags=[marker("r", "aaaaaaaaaaaa")])
    upd = client.add(tags=[marker("u")])
    other = client.add(tags=[marker("o")])
    client.faults["create"] = ["broken"]
    plan = plan_of(
        replace("r", old),
        Action("update", "u", session_id=upd, body={"label": "L"}),
        Action("archive", "o", session_id=other),
    )
    report = await apply_plan(plan, client, environ={})
    assert outcomes(report) == {
        "replace r": "failed",
        "update u": "succeeded",
        "archive o": "succeeded",
    }
    assert client.sessions[old]["status"] == "active"
    assert ("archive", old) not in client.calls


async def test_destroy_of_a_name_whose_create_failed_is_skipped() -> None:
    client = FakeClient()
    dup = client.add(tags=[marker("a", "aaaaaaaaaaaa")])
    client.faults["create"] = ["broken"]
    plan = plan_of(create("a"), Action("archive", "a", session_id=dup, reason="duplicate"))
    report = await apply_plan(plan, client, environ={})
    assert outcomes(report) == {"create a": "failed", "archive a": "skipped"}
    assert client.sessions[dup]["status"] == "active"


async def test_failed_old_side_of_a_replacement_names_the_new_session() -> None:
    client = FakeClient()
    old = client.add(tags=[marker("r", "aaaaaaaaaaaa")])
    client.faults["archive"] = ["broken"]
    plan = plan_of(replace("r", old))
    [result] = (await apply_plan(plan, client, environ={})).results
    assert result.outcome == "failed"
    assert result.session_id is not None and result.session_id != old
    assert f"new session {result.session_id} exists" in (result.error or "")


async def test_replace_with_delete_deletes_in_the_last_phase() -> None:
    client = FakeClient()
    old = client.add(tags=[marker("r", "aaaaaaaaaaaa")])
    arc = client.add(tags=[marker("a")])
    plan = plan_of(
        replace("r", old, replace_with="delete"),
        Action("archive", "a", session_id=arc),
    )
    await apply_plan(plan, client, environ={}, parallelism=1)
    assert client.ops() == ["create", "archive", "delete"]
    assert old not in client.sessions


async def test_lifecycle_answers_meeting_their_own_effect_count_as_done() -> None:
    client = FakeClient()
    archived = client.add(tags=[marker("a")], status="archived")
    plan = plan_of(
        Action("archive", "a", session_id=archived),
        Action("delete", "d", session_id="codesess_gone"),
    )
    report = await apply_plan(plan, client, environ={})
    assert outcomes(report) == {"archive a": "noop", "delete d": "noop"}
    assert report.failed == ()


async def test_lost_lifecycle_answers_are_settled_by_a_get() -> None:
    client = FakeClient()
    a = client.add(tags=[marker("a")])
    d = client.add(tags=[marker("d")])
    p = client.add(tags=[marker("p")], status="paused")
    client.faults.update(archive=["lost"], delete=["lost"], resume=["lost"])
    plan = plan_of(
        Action("archive", "a", session_id=a),
        Action("delete", "d", session_id=d),
        Action("resume", "p", session_id=p),
    )
    report = await apply_plan(plan, client, environ={}, parallelism=1)
    assert outcomes(report) == {
        "archive a": "succeeded",
        "delete d": "succeeded",
        "resume p": "succeeded",
    }
    assert client.ops().count("get") == 3


async def test_lost_update_answer_is_a_failure_the_next_apply_repeats() -> None:
    # The client already repeated the PATCH; when it gives up, so do we.
    client = FakeClient()
    u = client.add(tags=[marker("u")])
    client.faults["update"] = ["refused"]
    report = await apply_plan(
        plan_of(Action("update", "u", session_id=u, body={"label": "x"})), client, environ={}
    )
    assert report.results[0].outcome == "failed"


async def test_env_references_are_resolved_in_sent_bodies() -> None:
    client = FakeClient()
    plan = plan_of(create("a", env={"TOKEN": "${env:TOKEN}", "W": "${env:WHO:-nobody}"}))
    await apply_plan(plan, client, environ={"TOKEN": "s3cret"})
    assert client.sent_bodies[0]["env"] == {"TOKEN": "s3cret", "W": "nobody"}
    # The plan itself still holds the references as written.
    assert plan.actions[0].body is not None and plan.actions[0].body["env"] == {
        "TOKEN": "${env:TOKEN}",
        "W": "${env:WHO:-nobody}",
    }


@pytest.mark.parametrize(
    "action",
    [
        # A tag copied from the hub, a plain variable unset when the plan was made, a
        # forged plan file: outside env a reference is never resolved at apply.
        Action("update", "u", session_id="codesess_1", body={"tags": ["${env:LABEL}"]}),
        create("a", task="run ${env:LABEL}"),
        create("a", metadata={"who": "${env:LABEL}"}),
        # The tool's own credentials: never, not even under env.
        create("a", env={"T": "${env:AGENTUITY_SDK_KEY}"}),
        create("a", env={"T": "x-${env:CODER_HUB_TOKENS}"}),
    ],
)
async def test_references_apply_never_resolves_stop_it_before_any_request(
    action: Action,
) -> None:
    client = FakeClient()
    environ = {
        "LABEL": "canary-label",
        "AGENTUITY_SDK_KEY": "canary-token",
        "CODER_HUB_TOKENS": "k",
    }
    with pytest.raises(ManifestError) as info:
        await apply_plan(plan_of(create("ok"), action), client, environ=environ)
    assert client.calls == []
    assert f"{action.kind} {action.name}:" in str(info.value)
    assert "canary" not in str(info.value)


async def test_a_copy_of_the_token_under_env_is_never_resolved() -> None:
    # Planned where COPY held something else; where apply runs it holds the token.
    client = FakeClient()
    environ = {
        "AGENTUITY_SDK_KEY": "canary-token-0042",
        "COPY": "x canary-token-0042",
        "OTHER": "hello",
    }
    # Only the variable that holds it is named, not its neighbours.
    plan = plan_of(create("ok"), create("b", env={"X": "${env:COPY}", "Z": "${env:OTHER}"}))
    with pytest.raises(TokenCopyError) as info:
        await apply_plan(plan, client, environ=environ)
    assert client.calls == []
    assert info.value.exit_code == 65
    assert info.value.names == ("COPY",) and info.value.where == ("create b",)
    assert "canary" not in str(info.value)
    # Put together by two references: each value alone is no token.
    environ.update(COPY="canary-tok", REST="en-0042")
    # Each value judged alone, and within it only what makes up the token: the token
    # written in a default never used, here or in another value, excuses nothing, and
    # a neighbour (OTHER) is not named.
    env = {
        "X": "${env:COPY}${env:REST}@${env:OTHER} ${env:OTHER:-canary-token-0042}",
        "Y": "${env:OTHER:-canary-token-0042}",
    }
    split = plan_of(create("c", env=env))
    with pytest.raises(TokenCopyError) as info:
        await apply_plan(split, client, environ=environ)
    assert info.value.names == ("COPY", "REST") and client.calls == []
    # Written as text beside a reference it is the manifest's own (as for plain fields);
    # a variable holding something else is resolved as before.
    environ["COPY"] = "other"
    written = create("d", env={"X": "canary-token-0042 ${env:COPY}"})
    report = await apply_plan(plan_of(*plan.actions, written), client, environ=environ)
    assert report.failed == () and client.ops().count("create") == 3


async def test_unset_env_stops_before_any_request_and_names_every_action() -> None:
    client = FakeClient()
    plan = plan_of(
        create("a"),
        create("b", env={"X": "${env:X_TOKEN}"}),
        # A plain variable unset when the plan was made, and still unset.
        # Where it is declared, when the plan knows: the error says where to look.
        Action(
            "update",
            "u",
            session_id="codesess_1",
            body={"label": "${env:LBL}"},
            source=SourceLocation("m/u.yaml", 7),
        ),
    )
    with pytest.raises(UnsetEnvError) as info:
        await apply_plan(plan, client, environ={"OTHER": "v"})
    assert client.calls == []
    assert info.value.names == ("LBL", "X_TOKEN")
    assert info.value.where == ("create b", "update u at m/u.yaml:7")


async def test_stop_event_lets_running_actions_finish_and_starts_no_new_one() -> None:
    client = FakeClient(latency=0.01)
    stop = asyncio.Event()
    seen: list[ActionResult] = []

    def on_result(result: ActionResult) -> None:
        seen.append(result)
        if len(seen) == 3:
            stop.set()

    plan = plan_of(*(create(f"s{i}") for i in range(10)), Action("delete", "z", session_id="x"))
    report = await apply_plan(
        plan, client, environ={}, parallelism=2, on_result=on_result, stop_event=stop
    )
    assert report.interrupted
    started = client.ops().count("create")
    # The third result set the stop; the step running beside it still finished.
    assert started == 4
    assert len(client.sessions) == 4
    counts = [r.outcome for r in report.results]
    assert counts.count("succeeded") == 4 and counts.count("skipped") == 7
    assert ("delete", "x") not in client.calls
    assert {r.error for r in report.results if r.outcome == "skipped"} == {
        "not started: interrupted"
    }
    # Every action reported exactly once through on_result as well.
    assert len(seen) == len(plan.actions)


async def test_interrupt_between_the_two_sides_of_a_replacement_is_reported() -> None:
    client = FakeClient()
    old = client.add(tags=[marker("r", "aaaaaaaaaaaa")])
    stop = asyncio.Event()
    plan = plan_of(
        replace("r", old),
        Action("update", "u", session_id=old, body={"label": "x"}),
    )
    client_create = client.create_session

    async def create_then_stop(body: dict[str, Any]) -> Any:
        answer = await client_create(body)
        stop.set()
        return answer

    client.create_session = create_then_stop  # type: ignore[method-assign]
    report = await apply_plan(plan, client, environ={}, stop_event=stop)
    [replaced, update] = report.results
    assert replaced.outcome == "skipped" and "not yet archived" in (replaced.error or "")
    assert replaced.session_id != old and replaced.session_id in client.sessions
    assert update.outcome == "skipped"
    assert client.sessions[old]["status"] == "active"


async def test_on_result_sees_each_action_once_with_durations() -> None:
    ticks = itertools.count()
    client = FakeClient()
    seen: list[ActionResult] = []
    report = await apply_plan(
        plan_of(create("a"), create("b")),
        client,
        environ={},
        on_result=seen.append,
        clock=lambda: float(next(ticks)),
    )
    assert sorted(r.action.name for r in seen) == ["a", "b"]
    assert all(r.duration_s > 0 for r in report.results)


async def test_empty_plan_makes_no_request() -> None:
    client = FakeClient()
    report = await apply_plan(plan_of(), client, environ={})
    assert report.results == () and not report.interrupted and client.calls == []


async def test_a_create_that_could_not_connect_failed_and_is_not_settled() -> None:
    client = FakeClient()
    client.faults["create"] = ["down"]
    report = await apply_plan(plan_of(create("a"), create("b")), client, environ={}, parallelism=1)
    # Nothing was sent: no marker listing, no "outcome unknown", the next create goes on.
    assert client.ops() == ["create", "create"]
    assert outcomes(report) == {"create a": "failed", "create b": "succeeded"}
    assert "nothing was sent" in (report.results[0].error or "")
    assert not report.unreachable


@pytest.mark.parametrize("operation", ["archive", "delete", "resume"])
async def test_a_lifecycle_step_that_could_not_connect_is_not_settled_by_a_get(
    operation: str,
) -> None:
    client = FakeClient()
    sid = client.add(tags=[marker("a")], status="paused")
    client.faults[operation] = ["down"]
    report = await apply_plan(plan_of(Action(operation, "a", session_id=sid)), client, environ={})  # type: ignore[arg-type]
    assert client.ops() == [operation]
    assert report.results[0].outcome == "failed"


async def test_consecutive_connect_failures_stop_the_run_as_unreachable() -> None:
    client = FakeClient()
    client.faults["create"] = ["down"] * 100
    upd = client.add(tags=[marker("u")])
    plan = plan_of(
        *(create(f"s{i:02d}") for i in range(30)),
        Action("update", "u", session_id=upd, body={"label": "L"}),
    )
    report = await apply_plan(plan, client, environ={}, parallelism=2)
    assert report.unreachable and not report.interrupted
    # Five in a row decide; the one running beside the fifth still ends.
    assert client.ops().count("create") in (5, 6)
    assert "update" not in client.ops()
    failed = [r for r in report.results if r.outcome == "failed"]
    skipped = [r for r in report.results if r.outcome == "skipped"]
    assert len(failed) == client.ops().count("create")
    assert len(failed) + len(skipped) == len(plan.actions)
    assert {r.error for r in skipped} == {"not started: hub unreachable"}
    assert all("unknown" not in (r.error or "") for r in report.results)


async def test_an_answer_resets_the_count_of_connect_failures() -> None:
    client = FakeClient()
    client.faults["create"] = ["down", "down", "down", "down", None, "down", "down"]
    plan = plan_of(*(create(f"s{i}") for i in range(8)))
    report = await apply_plan(plan, client, environ={}, parallelism=1)
    assert not report.unreachable
    assert [r.outcome for r in report.results].count("succeeded") == 2


async def test_a_change_whose_check_cannot_reach_the_hub_stays_unknown_not_unsent() -> None:
    # The archive's answer was lost; the status check could not connect. Its "nothing
    # was sent" became the action's failure, and apply counted the hub unreachable.
    from reconciler.applier import lifecycle

    for op, run in (
        ("archive", lifecycle.archive),
        ("delete", lifecycle.delete),
        ("resume", lifecycle.resume),
    ):
        client = FakeClient()
        sid = client.add(tags=[], status="paused" if op == "resume" else "active")
        client.faults[op].append("lost")
        client.faults["get"].append("down")
        with pytest.raises(TransportError) as raised:
            await run(client, sid)  # type: ignore[arg-type]
        assert not isinstance(raised.value, ConnectFailedError), op
        assert raised.value.__notes__ == [
            "its status could not be read to tell whether it was made"
        ], op
