"""`reconciler.watch`: the interval syntax, the backoff, one reconcile (drift, heal,
refusal, failures), the metrics it records, and the loop's sleep and stop."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from clihub import inprocess_admin
from docs_pages import page
from hubproc import free_port
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from reconciler.applyrun import ApplyRequest, run_apply
from reconciler.cli.main import run
from reconciler.client import RetryPolicy
from reconciler.connect import open_client, resolve_endpoint
from reconciler.errors import (
    EnvNotTextError,
    ManifestError,
    ReconcilerError,
    SafetyViolation,
    TokenCopyError,
    UnsetEnvError,
    UsageError,
)
from reconciler.model import Action, ActionResult, FieldChange, Plan, RemoteSession
from reconciler.runlock import exclusive_run
from reconciler.settings import GlobalOptions
from reconciler.watch import (
    Reconcile,
    WatchMetrics,
    WatchRequest,
    cycle,
    failure_delay,
    parse_interval,
    reconcile_once,
    run_watch,
    watch_handler,
)
from reconciler.watch import loop as loop_module
from reconciler.watch.loop import describe, heal_line
from reconciler.watch.server import metrics_app, serving_metrics

# -- the interval syntax ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("90", 90), ("1", 1), ("2.5", 2.5), (" 1S ", 1)],
)
def test_parse_interval_reads_units_and_plain_seconds(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "1d", "-5s", "5ms", "m", "1h30m", "0.5s", "0"])
def test_parse_interval_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="interval|minimum"):
        parse_interval(text)


def test_the_cli_turns_a_bad_interval_into_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["watch", "--interval", "0.2s"]) == 64
    assert "shorter than the minimum of 1 s" in capsys.readouterr().err


# -- the backoff -----------------------------------------------------------------------


def test_backoff_doubles_from_the_interval_up_to_the_cap() -> None:
    caps = [
        failure_delay(n, interval_s=10, max_backoff_s=60, rand=lambda: 1.0)
        for n in (1, 2, 3, 4, 50)
    ]
    assert caps == [10, 20, 40, 60, 60]


def test_backoff_jitter_stays_in_the_upper_half_of_the_cap() -> None:
    assert failure_delay(3, interval_s=10, max_backoff_s=60, rand=lambda: 0.0) == 20
    delays = {failure_delay(2, interval_s=10, max_backoff_s=60) for _ in range(200)}
    assert all(10 <= d <= 20 for d in delays)
    assert len(delays) > 100  # jittered, not one fixed value


def test_backoff_never_falls_below_half_an_interval_longer_than_the_cap() -> None:
    assert failure_delay(5, interval_s=3600, max_backoff_s=900, rand=lambda: 1.0) == 3600
    with pytest.raises(ValueError):
        failure_delay(0, interval_s=10)


# -- one reconcile against the embedded hub --------------------------------------------


def _manifests(root: Path, names: list[str], *, label: str = "L") -> Path:
    docs = ["apiVersion: reconciler/v1\nkind: Project\nname: watched\n"]
    docs += [
        "apiVersion: reconciler/v1\nkind: Session\n"
        f"name: {n}\nspec: {{task: t {n}, label: {label}}}\n"
        for n in names
    ]
    path = root / "manifests"
    path.mkdir(exist_ok=True)
    (path / "all.yaml").write_text("---\n".join(docs), encoding="utf-8")
    return path


def _opts(tmp_path: Path) -> GlobalOptions:
    return GlobalOptions(api_url="local", local_db=str(tmp_path / "hub.sqlite3"), environ={})


# Retries as the client makes them, without the waits: a hub that never answers costs
# the fast tier no real backoff.
NO_WAIT = RetryPolicy(base_delay=0.0, max_delay=0.0)


async def _reconcile(opts: GlobalOptions, request: WatchRequest, **kwargs: Any) -> Reconcile:
    """One reconcile on the endpoint the options name, resolved once as the command does
    (retrying without waiting)."""
    endpoint = dataclasses.replace(resolve_endpoint(opts), retry=NO_WAIT)
    return await reconcile_once(opts, request, endpoint=endpoint, **kwargs)


async def _sessions(opts: GlobalOptions) -> list[RemoteSession]:
    async with open_client(resolve_endpoint(opts)) as client:
        items = await client.list_all_sessions(include_archived=True)
    return [RemoteSession.from_api(item) for item in items]


async def test_without_self_heal_drift_is_reported_and_nothing_written(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    paths = (str(_manifests(tmp_path, ["a", "b"])),)
    found = await _reconcile(opts, WatchRequest(paths=paths), stop=asyncio.Event())
    assert found.result == "drift"
    assert found.project == "watched"
    assert found.sync["missing"] == 2
    assert found.plan is not None and found.plan.count("create") == 2
    assert await _sessions(opts) == []
    assert "2 to create" in describe(found) and "Not applied" in describe(found)


async def test_an_internal_error_fails_the_reconcile_not_the_watcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A bug in one reconcile (here the planner raising what nothing expects) is that
    # reconcile's error, its traceback logged: a long-running watcher lives on.
    import reconciler.planner as planner

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(planner, "plan", broken)
    opts = _opts(tmp_path)
    paths = (str(_manifests(tmp_path, ["a"])),)
    with caplog.at_level("ERROR", logger="reconciler.watch"):
        found = await _reconcile(opts, WatchRequest(paths=paths), stop=asyncio.Event())
    assert (found.result, found.error_kind) == ("error", "other")
    assert found.error == "internal error (a bug in coder-reconciler): RuntimeError: unexpected"
    assert caplog.records[0].exc_info is not None


async def test_a_drift_log_line_reads_as_one_sentence(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    opts = _opts(tmp_path)
    paths = (str(_manifests(tmp_path, ["a"])),)
    found = await _reconcile(opts, WatchRequest(paths=paths), stop=asyncio.Event())
    with caplog.at_level("INFO", logger="reconciler.watch"):
        loop_module._log_reconcile(1, found, 5.0)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.endswith("Not applied (watch without --self-heal); next in 5.0 s"), line


async def test_self_heal_applies_then_finds_the_hub_in_sync(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    request = WatchRequest(paths=(str(_manifests(tmp_path, ["a", "b"])),), self_heal=True)
    seen: list[str] = []
    first = await _reconcile(
        opts, request, stop=asyncio.Event(), on_result=lambda r: seen.append(r.action.name)
    )
    assert first.result == "applied"
    assert sorted(seen) == ["a", "b"]
    assert first.report is not None and len(first.report.results) == 2
    second = await _reconcile(opts, request, stop=asyncio.Event())
    assert second.result == "in-sync"
    assert second.sync["in-sync"] == 2


async def test_a_deny_policy_refuses_the_reconcile_in_sync_or_not(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    manifests = _manifests(tmp_path, ["a", "b"])
    request = WatchRequest(paths=(str(manifests),), self_heal=True)
    assert (await _reconcile(opts, request, stop=asyncio.Event())).result == "applied"
    (manifests / "policy.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Policy\nname: no-b\nspec:\n"
        "  rules: [{expression: 'session.name != \"b\"', message: b is not allowed}]\n"
    )
    for heal in (False, True):  # the hub is in sync: the policy still refuses
        found = await _reconcile(
            opts, WatchRequest(paths=(str(manifests),), self_heal=heal), stop=asyncio.Event()
        )
        assert found.result == "refused", heal
        [violation] = found.refusal
        assert violation.rule.startswith("policy no-b (")
        assert violation.message == "b is not allowed"


async def test_self_heal_leaves_a_session_paused_when_status_is_ignored(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    path = _manifests(tmp_path, ["a", "b"])
    text = (path / "all.yaml").read_text(encoding="utf-8")
    (path / "all.yaml").write_text(text + "lifecycle: {ignoreChanges: [status]}\n")
    request = WatchRequest(paths=(str(path),), self_heal=True)
    assert (await _reconcile(opts, request, stop=asyncio.Event())).result == "applied"
    ids = {s.tags[0].split("/")[1].split("@")[0]: s.session_id for s in await _sessions(opts)}
    assert opts.local_db is not None
    for session_id in ids.values():
        await asyncio.to_thread(inprocess_admin(opts.local_db), session_id, {"status": "paused"})
    # b declares ignoreChanges: [status] and stays paused; a is resumed.
    healed = await _reconcile(opts, request, stop=asyncio.Event())
    assert healed.report is not None
    assert [(r.action.kind, r.action.name) for r in healed.report.results] == [("resume", "a")]
    status = {s.session_id: s.status for s in await _sessions(opts)}
    assert (status[ids["a"]], status[ids["b"]]) == ("active", "paused")
    assert (await _reconcile(opts, request, stop=asyncio.Event())).result == "in-sync"


async def test_a_heal_asked_to_stop_starts_no_action(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    request = WatchRequest(paths=(str(_manifests(tmp_path, ["a", "b"])),), self_heal=True)
    stop = asyncio.Event()
    stop.set()  # SIGTERM arrived while planning
    found = await _reconcile(opts, request, stop=stop)
    assert found.result == "drift" and found.report is None
    assert await _sessions(opts) == []


async def test_a_plan_refused_by_safety_is_reported_and_never_forced(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    names = [f"s{i:02d}" for i in range(10)]
    request = ApplyRequest(paths=(str(_manifests(tmp_path, names)),))
    await run_apply(opts, request, endpoint=resolve_endpoint(opts))
    # Nine of ten sessions dropped from the manifests: archives above maxDestroyPercent.
    paths = (str(_manifests(tmp_path, names[:1])),)
    for self_heal in (False, True):
        request = WatchRequest(paths=paths, self_heal=self_heal)
        found = await _reconcile(opts, request, stop=asyncio.Event())
        assert found.result == "refused"
        assert [v.rule for v in found.refusal] == ["maxDestroyPercent"]
        assert found.sync["orphan"] == 9
        assert "Refused (safety rules and policies), never forced: maxDestroyPercent" in describe(
            found
        )
        assert "--force" not in describe(found)
    assert not any(s.archived_like for s in await _sessions(opts))


def test_a_refused_plan_with_no_changes_is_not_called_out_of_sync() -> None:
    # A deny over the declarations refuses a plan that changes nothing.
    deny = SafetyViolation("owner-tag", "every session names its owner", ("a",), False)
    quiet = Reconcile("refused", plan=Plan("p", (), org_id=None, endpoint="x"), refusal=(deny,))
    line = describe(quiet)
    assert line.startswith("no changes. Refused (safety rules and policies), never forced")
    assert "out of sync" not in line and "owner-tag: every session names its owner: a" in line


async def test_invalid_manifests_are_an_outcome_not_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.mkdir()
    (path / "x.yaml").write_text("apiVersion: reconciler/v1\nkind: Sesion\nname: x\n")
    found = await _reconcile(
        _opts(tmp_path), WatchRequest(paths=(str(path),)), stop=asyncio.Event()
    )
    assert (found.result, found.error_kind) == ("error", "manifest")
    assert "x.yaml:2" in (found.error or "")
    assert not found.hub_failed


@pytest.mark.parametrize(
    "error",
    [
        ManifestError("x"),
        UnsetEnvError(["A"]),
        EnvNotTextError(["A"]),
        TokenCopyError(["A"], sources="AGENTUITY_SDK_KEY"),
    ],
    ids=type,
)
def test_every_error_in_the_manifests_or_their_variables_is_a_manifest_error(
    error: ReconcilerError,
) -> None:
    # The kind labels the log line, the metrics, the status page and notifications.
    assert error.exit_code == 65 and cycle._kind_of(error) == "manifest"


async def test_a_hub_that_does_not_answer_is_a_hub_failure(tmp_path: Path) -> None:
    opts = GlobalOptions(
        api_url=f"http://127.0.0.1:{free_port()}", environ={"AGENTUITY_SDK_KEY": "k"}
    )
    paths = (str(_manifests(tmp_path, ["a"])),)
    found = await _reconcile(opts, WatchRequest(paths=paths), stop=asyncio.Event())
    assert (found.result, found.error_kind) == ("error", "hub")
    assert found.hub_failed


async def test_self_heal_waits_for_the_lock_apply_holds(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    request = WatchRequest(
        paths=(str(_manifests(tmp_path, ["a"])),), self_heal=True, lock_timeout_s=0.2
    )
    notices: list[str] = []
    with exclusive_run(opts.local_db, timeout_s=0, on_wait=lambda m: None):
        found = await _reconcile(opts, request, stop=asyncio.Event(), notice=notices.append)
    assert (found.result, found.error_kind) == ("error", "locked")
    assert any("waiting for another apply" in n for n in notices)
    assert await _sessions(opts) == []


# -- metrics ---------------------------------------------------------------------------


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_runs_sessions_actions_and_success(tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    opts = _opts(tmp_path)
    request = WatchRequest(paths=(str(_manifests(tmp_path, ["a", "b"])),), self_heal=True)
    metrics = WatchMetrics()
    found = await _reconcile(opts, request, stop=asyncio.Event(), on_result=metrics.action_done)
    metrics.record(found, now=1_700_000_000.0)
    samples = _samples(generate_latest(metrics.registry).decode())
    assert samples[("reconciler_reconcile_runs_total", (("result", "applied"),))] == 1
    assert samples[("reconciler_reconcile_runs_total", (("result", "error"),))] == 0
    assert (
        samples[("reconciler_actions_total", (("kind", "create"), ("outcome", "succeeded")))] == 2
    )
    assert samples[("reconciler_sessions", (("project", "watched"), ("sync", "missing")))] == 2
    assert samples[("reconciler_last_successful_reconcile_timestamp_seconds", ())] == 1.7e9
    assert samples[("reconciler_reconcile_duration_seconds_count", ())] == 1

    bad = await _reconcile(
        GlobalOptions(
            api_url=f"http://127.0.0.1:{free_port()}", environ={"AGENTUITY_SDK_KEY": "k"}
        ),
        request,
        stop=asyncio.Event(),
    )
    metrics.record(bad, now=1_800_000_000.0)
    samples = _samples(generate_latest(metrics.registry).decode())
    assert samples[("reconciler_reconcile_errors_total", (("kind", "hub"),))] == 1
    # An error is not a success, and the last plan's session counts stay.
    assert samples[("reconciler_last_successful_reconcile_timestamp_seconds", ())] == 1.7e9
    assert samples[("reconciler_sessions", (("project", "watched"), ("sync", "missing")))] == 2


async def _served_gets(app: Any, *paths: str) -> list[httpx.Response]:
    """GET each path, in order, from ``app`` served by ``serving_metrics`` on 127.0.0.1."""
    async with (
        serving_metrics(app, host="127.0.0.1", port=0) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        return [await client.get(path) for path in paths]


async def test_the_metrics_server_serves_metrics_and_health(tmp_path: Path) -> None:
    metrics = WatchMetrics()
    app = metrics_app(metrics.registry, lambda: {"reconciles": 3})
    health, scraped, missing = await _served_gets(app, "/healthz", "/metrics", "/nothing")
    assert health.status_code == 200 and health.json() == {"status": "ok", "reconciles": 3}
    assert scraped.headers["content-type"].startswith("text/plain")
    assert ("reconciler_reconcile_runs_total", (("result", "drift"),)) in _samples(scraped.text)
    assert missing.status_code == 404


async def test_on_loopback_only_requests_naming_this_machine_are_answered() -> None:
    # DNS rebinding: a page on attacker.example resolved to 127.0.0.1 sends its own
    # name as Host; the status page must not answer it.
    app = metrics_app(WatchMetrics().registry, dict)
    async with (
        serving_metrics(app, host="127.0.0.1", port=0) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
        named = await client.get("/healthz", headers={"Host": f"localhost:{port}"})
        assert named.status_code == 200
        rebound = await client.get("/healthz", headers={"Host": "attacker.example"})
        assert rebound.status_code == 400
    # Another loopback address it is bound to answers under its own name too.
    async with (
        serving_metrics(app, host="127.0.0.2", port=0) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.2:{port}") as client,
    ):
        assert (await client.get("/healthz")).status_code == 200


async def test_routes_a_caller_adds_are_served_beside_metrics_and_health() -> None:
    async def show(request: Request) -> Response:
        return PlainTextResponse(f"page {request.path_params.get('name', '')}")

    extra = [Route("/", show), Route("/sessions/{name}", show), Route("/healthz", show)]
    app = metrics_app(WatchMetrics().registry, lambda: {"reconciles": 1}, routes=extra)
    paths = ("/", "/sessions/nightly", "/healthz", "/metrics")
    root, session, health, scraped = await _served_gets(app, *paths)
    assert (root.status_code, root.text) == (200, "page ")
    assert (session.status_code, session.text) == (200, "page nightly")
    # The probe and the scrape stay the watcher's own.
    assert health.json() == {"status": "ok", "reconciles": 1}
    assert scraped.status_code == 200 and "reconciler_reconcile_runs_total" in scraped.text


async def test_a_port_in_use_is_a_usage_error() -> None:
    app = metrics_app(WatchMetrics().registry, dict)
    async with serving_metrics(app, host="127.0.0.1", port=0) as port:
        with pytest.raises(UsageError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            async with serving_metrics(app, host="127.0.0.1", port=port):
                pass


# -- the loop --------------------------------------------------------------------------


async def test_the_loop_sleeps_the_interval_and_stops_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    opts = _opts(tmp_path)
    request = WatchRequest(paths=(str(_manifests(tmp_path, ["a"])),), interval_s=3600)
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="reconciler.watch")
    task = asyncio.create_task(run_watch(opts, request, endpoint=resolve_endpoint(opts), stop=stop))
    # The first reconcile is logged; then the loop sleeps for an hour.
    deadline = time.monotonic() + 30
    while not _reconciles(caplog):
        assert time.monotonic() < deadline and not task.done(), "no first reconcile"
        await asyncio.sleep(0.01)
    started = time.monotonic()
    stop.set()
    summary = await asyncio.wait_for(task, timeout=30)
    assert time.monotonic() - started < 5.0  # the hour's sleep was interrupted
    assert summary.reconciles == 1
    assert summary.last is not None and summary.last.result == "drift"


async def test_the_loop_backs_off_while_the_hub_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three reconciles find the hub failing, the fourth reaches it, the fifth stops.
    outcomes = iter(["hub", "hub", "hub", None, None])
    stop = asyncio.Event()

    async def fake_reconcile(*args: object, **kwargs: object) -> Reconcile:
        kind = next(outcomes)
        if kind is None:
            return Reconcile("in-sync", 0.0)
        return Reconcile("error", 0.0, error="hub down", error_kind="hub")

    monkeypatch.setattr(loop_module, "reconcile_once", fake_reconcile)
    caplog.set_level(logging.INFO, logger="reconciler.watch")
    # Shorter than the CLI allows (1 s), so the test does not sleep for seconds.
    request = WatchRequest(interval_s=0.05)
    endpoint = resolve_endpoint(_opts(tmp_path))
    task = asyncio.create_task(
        run_watch(_opts(tmp_path), request, endpoint=endpoint, stop=stop, rand=lambda: 1.0)
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(_reconciles(caplog)) < 4:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    waits = [getattr(r, "next_in_s", None) for r in _reconciles(caplog)[:4]]
    assert waits == [0.05, 0.1, 0.2, 0.05]  # doubling, then the interval again


async def test_after_a_create_in_doubt_the_next_reconcile_waits_for_the_hub(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create whose answer timed out may still be made by the hub: the reconcile is a
    hub failure (backing off), and the next one waits at least twice the client's wait
    for an answer, so the hub's list shows the session before a plan makes it again."""
    from reconciler.model import ApplyReport
    from reconciler.watch.cycle import _healed

    create = Action("create", "b", body={"task": "t"}, marker_tag="reconciler:p/b@0123456789ab")
    doubt = ActionResult(create, "failed", error="timed out", in_doubt=True)
    plain_failure = ActionResult(create, "failed", error="400")
    assert _healed(ApplyReport((doubt,))).error_kind == "hub"
    assert _healed(ApplyReport((plain_failure,))).error_kind == "actions"
    outcomes = iter([doubt, None, None])
    stop = asyncio.Event()

    async def fake_reconcile(*args: object, **kwargs: object) -> Reconcile:
        result = next(outcomes)
        if result is None:
            return Reconcile("in-sync", 0.0)
        return _healed(ApplyReport((result,)))

    monkeypatch.setattr(loop_module, "reconcile_once", fake_reconcile)
    caplog.set_level(logging.INFO, logger="reconciler.watch")
    opts = dataclasses.replace(_opts(tmp_path), timeout=0.1)
    task = asyncio.create_task(
        run_watch(
            opts,
            WatchRequest(interval_s=0.01),
            endpoint=resolve_endpoint(opts),
            stop=stop,
            rand=lambda: 1.0,
        )
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(_reconciles(caplog)) < 2:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    waits = [getattr(r, "next_in_s", None) for r in _reconciles(caplog)[:2]]
    assert waits == [0.2, 0.01]  # twice the 0.1 s wait, then the interval again


async def _watch_faked(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fake_reconcile: Any,
    stop: asyncio.Event,
) -> list[logging.LogRecord]:
    """Run the watch loop over ``fake_reconcile`` (which sets ``stop``) every 0.01 s;
    the warning records it logged."""
    monkeypatch.setattr(loop_module, "reconcile_once", fake_reconcile)
    caplog.set_level(logging.INFO, logger="reconciler.watch")
    opts = _opts(tmp_path)
    watching = run_watch(
        opts, WatchRequest(interval_s=0.01), endpoint=resolve_endpoint(opts), stop=stop
    )
    await asyncio.wait_for(watching, 10)
    return [r for r in caplog.records if getattr(r, "event", None) == "warning"]


async def test_each_distinct_warning_is_logged_once_at_warning_until_it_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What each reconcile warns about: both twice, then only b, then both again.
    # A reconcile that failed before its plan (the hub down: None) tells none, and
    # changes nothing.
    rounds = iter([["a", "b", "a"], None, ["a", "b"], ["b"], ["a", "b"]])
    stop = asyncio.Event()

    async def fake_reconcile(*args: object, **kwargs: Any) -> Reconcile:
        found = next(rounds, [])
        if found is None:
            return Reconcile("error", 0.0, error="hub down", error_kind="hub")
        if not found:
            stop.set()
            return Reconcile("in-sync", 0.0)
        for message in found:
            kwargs["warning"](f"${{env:{message.upper()}}} is not set")
        return Reconcile("in-sync", 0.0)

    warned = await _watch_faked(tmp_path, monkeypatch, caplog, fake_reconcile, stop)
    assert [(r.levelno, r.getMessage()) for r in warned] == [
        (logging.WARNING, "${env:A} is not set"),
        (logging.WARNING, "${env:B} is not set"),
        (logging.WARNING, "${env:A} is not set"),  # gone for a reconcile, back
    ]


async def test_a_warn_policy_s_findings_are_logged_as_warnings_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warn Policy's finding is logged at WARNING, as the manifests' warnings are (once
    until it changes); a deny's is the refusal's, not a warning."""
    from reconciler.model import PolicyFinding

    warn = PolicyFinding("no-collab", "warn", "a is collaborate", session="a")
    deny = PolicyFinding("budget", "deny", "b loops 60 times", session="b")
    plans = iter([(warn, deny), (warn, deny), ()])
    stop = asyncio.Event()

    async def fake_reconcile(*args: object, **kwargs: Any) -> Reconcile:
        findings = next(plans, None)
        if findings is None:
            stop.set()
            return Reconcile("in-sync", 0.0)
        kwargs["on_plan"](Plan(project="p", actions=(), findings=findings))
        return Reconcile("in-sync", 0.0)

    warned = await _watch_faked(tmp_path, monkeypatch, caplog, fake_reconcile, stop)
    said = [r.getMessage() for r in warned]
    assert said == ["policy: warn no-collab: a: a is collaborate"], said


async def test_a_reconcile_hands_the_manifests_warnings_to_warning(tmp_path: Path) -> None:
    path = _manifests(tmp_path, ["a"])
    text = (path / "all.yaml").read_text(encoding="utf-8")
    # env values are not compared: the plan goes on, with a warning.
    text = text.replace("label: L}", "label: L, env: {T: '${env:WATCH_UNSET}'}}")
    (path / "all.yaml").write_text(text, encoding="utf-8")
    for heal in (False, True):
        warned: list[str] = []
        notices: list[str] = []
        request = WatchRequest(paths=(str(path),), self_heal=heal)
        await _reconcile(
            _opts(tmp_path),
            request,
            stop=asyncio.Event(),
            notice=notices.append,
            warning=warned.append,
        )
        assert len(warned) == 1 and "${env:WATCH_UNSET} is not set" in warned[0], warned
        assert not any("WATCH_UNSET" in n for n in notices)


def test_a_heal_line_names_the_session_its_fields_and_the_new_session() -> None:
    update = Action(
        "update", "alpha", session_id="s1", changes=(FieldChange("label"), FieldChange("tags"))
    )
    replace = Action("replace", "beta", session_id="s2", changes=(FieldChange("task"),))
    create = Action("create", "gamma")
    assert heal_line(ActionResult(update, "succeeded", session_id="s1")) == (
        "update alpha [s1] (label, tags): succeeded"
    )
    assert heal_line(ActionResult(replace, "succeeded", session_id="s9")) == (
        "replace beta [s2] (task): succeeded, new session s9"
    )
    assert heal_line(ActionResult(create, "adopted", session_id="s8")) == (
        "create gamma: adopted, new session s8"
    )
    failed = ActionResult(Action("resume", "delta", session_id="s3"), "failed", error="boom")
    assert heal_line(failed) == "resume delta [s3]: failed: boom"


def test_a_heal_line_names_the_fields_the_replacement_named() -> None:
    """From the planner's typed Replacement: the changed fields, or, when it could name
    none, why not (never a made-up field)."""
    from planner_fixtures import desired, project, remote_for

    from reconciler.planner import plan

    old, new = desired("beta", task="Triage issues"), desired("beta", task="Triage every issue")
    remote = remote_for(old, "s2")
    report = {"sessionId": "s2", "task": "Triage issues", "tags": list(remote.tags)}
    [named] = plan(project(), [new], [remote], details={"s2": report}).actions
    [unread] = plan(project(), [new], [remote]).actions
    assert heal_line(ActionResult(named, "succeeded", session_id="s9")) == (
        "replace beta [s2] (task): succeeded, new session s9"
    )
    assert heal_line(ActionResult(unread, "succeeded", session_id="s9")) == (
        "replace beta [s2] (create-only fields changed: the session's details could not be "
        "read, so no field can be named): succeeded, new session s9"
    )


async def test_a_healing_watch_logs_each_action_with_its_new_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    request = WatchRequest(paths=(str(_manifests(tmp_path, ["a"])),), self_heal=True)
    await _watch_one_reconcile(_opts(tmp_path), request, caplog)
    (action,) = [r for r in caplog.records if getattr(r, "event", None) == "action"]
    (session,) = await _sessions(_opts(tmp_path))
    assert action.getMessage() == f"create a: succeeded, new session {session.session_id}"
    assert getattr(action, "new_session_id", None) == session.session_id


def _reconciles(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "reconcile"]


async def _watch_one_reconcile(
    opts: GlobalOptions, request: WatchRequest, caplog: pytest.LogCaptureFixture
) -> None:
    """Run the watcher until its first reconcile is logged (at most 20 s), then stop it."""
    caplog.set_level(logging.INFO, logger="reconciler.watch")
    stop = asyncio.Event()
    task = asyncio.create_task(run_watch(opts, request, endpoint=resolve_endpoint(opts), stop=stop))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _reconciles(caplog):
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=10)


def test_json_log_lines_carry_the_extra_fields() -> None:
    import io

    stream = io.StringIO()
    logger = logging.getLogger("reconciler.watch.test-json")
    logger.addHandler(watch_handler("json", stream))
    logger.propagate = False
    logger.warning("reconcile 1: drift", extra={"event": "reconcile", "result": "drift"})
    line = json.loads(stream.getvalue())
    assert line["message"] == "reconcile 1: drift"
    assert (line["level"], line["event"], line["result"]) == ("WARNING", "reconcile", "drift")
    assert "time" in line and line["logger"] == "reconciler.watch.test-json"


def test_the_docs_list_every_metric_and_its_alert_uses_them() -> None:
    import re

    import yaml
    from prometheus_client import generate_latest

    readme = page("how-to/watch.md")
    listed = set(re.findall(r"^\| `(reconciler_\w+)` \|", readme, flags=re.MULTILINE))
    metrics = WatchMetrics()
    metrics.sessions.labels(project="p", sync="drifted").set(1)
    exposed = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        if not family.name.endswith("_created")  # prometheus-client's creation times
    }
    assert listed == exposed
    [rules] = [
        block
        for block in re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL)
        if "alert:" in block
    ]
    used = set(re.findall(r"reconciler_\w+", rules))
    assert used and used <= exposed
    alert = yaml.safe_load(rules)["groups"][0]["rules"][0]
    assert alert["for"] == "1h" and "reconciler_sessions" in alert["expr"]


async def test_the_log_names_project_org_and_endpoint_once_and_when_they_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Plan("watched", (), org_id=None, endpoint="https://api.test")
    plans = iter([first, first, None, first, dataclasses.replace(first, org_id="org_2")])
    stop = asyncio.Event()

    async def fake_reconcile(*args: object, on_plan: Any, **kwargs: object) -> Reconcile:
        plan = next(plans, first)
        if plan is not None:
            on_plan(plan)
        return Reconcile("in-sync" if plan else "error", 0.0, plan=plan, error_kind="manifest")

    monkeypatch.setattr(loop_module, "reconcile_once", fake_reconcile)
    caplog.set_level(logging.INFO, logger="reconciler.watch")
    endpoint = resolve_endpoint(_opts(tmp_path))
    task = asyncio.create_task(
        run_watch(_opts(tmp_path), WatchRequest(interval_s=0.01), endpoint=endpoint, stop=stop)
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(_reconciles(caplog)) < 6:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    headers = [r.getMessage() for r in caplog.records if getattr(r, "event", None) == "header"]
    assert headers == [
        "Project watched, the token's organisation, endpoint https://api.test",
        "Project watched, org org_2, endpoint https://api.test",
        "Project watched, the token's organisation, endpoint https://api.test",
    ]


@pytest.mark.parametrize("self_heal", [True, False])
async def test_the_header_comes_before_the_plans_actions_and_summary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, self_heal: bool
) -> None:
    # A new user read the JSON log: the first reconcile's creates came before the line
    # naming the project, organisation and endpoint they were made in.
    request = WatchRequest(
        paths=(str(_manifests(tmp_path, ["a", "b"])),), interval_s=60, self_heal=self_heal
    )
    await _watch_one_reconcile(_opts(tmp_path), request, caplog)
    events = [getattr(r, "event", None) for r in caplog.records]
    expected = ["header", "action", "action", "reconcile"] if self_heal else ["header", "reconcile"]
    assert [e for e in events if e in ("header", "action", "reconcile")] == expected


def test_a_manifest_warning_is_logged_once_across_a_failed_reconcile(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A reconcile that failed before its plan (the hub down) tells no warning; the ones
    # standing stay told (watch.md: each once until it changes).
    warnings = loop_module._Warnings()
    with caplog.at_level("WARNING", logger="reconciler.watch"):
        warnings("GH_TOKEN is not set")
        warnings.reconciled(planned=True)
        warnings.reconciled(planned=False)  # the hub was down
        warnings("GH_TOKEN is not set")
        warnings.reconciled(planned=True)
        warnings.reconciled(planned=True)  # set now: gone
        warnings("GH_TOKEN is not set")  # and back
    assert [r.getMessage() for r in caplog.records] == ["GH_TOKEN is not set"] * 2


async def test_a_reconcile_waits_for_manifests_being_written_to_settle(tmp_path: Path) -> None:
    # `git pull` moving a declaration between two files writes one, then the other: in
    # between the session is in neither, and a plan would archive it.
    from reconciler.watch.cycle import settled

    paths = _manifests(tmp_path, ["a", "b"])
    long_ago = time.time() - 60
    for place in (paths, *paths.iterdir()):
        os.utime(place, (long_ago, long_ago))
    time.sleep(0.35)  # their status change (utime's own) past the settle time
    notices: list[str] = []
    stop = asyncio.Event()
    started = time.monotonic()
    await settled((str(paths),), stop, notices.append, settle_s=0.3)
    assert time.monotonic() - started < 0.2 and notices == []  # nothing changed lately
    (paths / "more.yaml").write_text("# being written\n")
    started = time.monotonic()
    await settled((str(paths),), stop, notices.append, settle_s=0.3)
    assert 0.2 < time.monotonic() - started < 2
    assert len(notices) == 1 and notices[0].startswith("waiting for the manifests to settle (")
    # A file removed changes its folder.
    time.sleep(0.35)
    (paths / "more.yaml").unlink()
    started = time.monotonic()
    await settled((str(paths),), stop, settle_s=0.3)
    assert 0.2 < time.monotonic() - started < 2
    # A folder that holds no manifest any more (its only one moved away) counts too.
    (paths / "team").mkdir()
    (paths / "team" / "README.md").write_text("# team\n")
    time.sleep(0.35)
    started = time.monotonic()
    await settled((str(paths),), stop, settle_s=0.3)
    assert time.monotonic() - started < 0.2
    (paths / "team" / "README.md").unlink()
    started = time.monotonic()
    await settled((str(paths),), stop, settle_s=0.3)
    assert 0.2 < time.monotonic() - started < 2
    # A copy that keeps its old time (cp -p, rsync -a): its status change counts.
    time.sleep(0.35)
    (paths / "all.yaml").write_text((paths / "all.yaml").read_text())
    os.utime(paths / "all.yaml", (long_ago, long_ago))
    started = time.monotonic()
    await settled((str(paths),), stop, settle_s=0.3)
    assert 0.2 < time.monotonic() - started < 2
    # Bounded: at most wait_s, and not at all once stopping.
    (paths / "again.yaml").write_text("# being written\n")
    started = time.monotonic()
    await settled((str(paths),), stop, settle_s=30, wait_s=0.3)
    assert time.monotonic() - started < 2
    stop.set()
    started = time.monotonic()
    await settled((str(paths),), stop, settle_s=30)
    assert time.monotonic() - started < 0.2


async def test_a_stop_while_manifests_settle_ends_the_watcher_without_a_reconcile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A deploy's SIGTERM right after `git pull`: no plan of half-written manifests, no
    # notification from one.
    from reconciler.watch import cycle

    monkeypatch.setattr(cycle, "SETTLE_S", 30.0)
    paths = _manifests(tmp_path, ["a"])  # written just now: not settled
    reconciled: list[object] = []

    async def fake_reconcile(*args: object, **kwargs: Any) -> Reconcile:
        reconciled.append(args)
        return Reconcile("in-sync", 0.0)

    monkeypatch.setattr(loop_module, "reconcile_once", fake_reconcile)
    opts = _opts(tmp_path)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.3, stop.set)
    request = WatchRequest(paths=(str(paths),), interval_s=1)
    started = time.monotonic()
    await asyncio.wait_for(run_watch(opts, request, endpoint=resolve_endpoint(opts), stop=stop), 10)
    assert reconciled == [] and time.monotonic() - started < 5
