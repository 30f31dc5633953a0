"""The apply workflow (`reconciler.applyrun`) through its plain API and through the CLI:
the embedded hub's lock, a hub that goes away after the listing, the hooks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import filelock
import pytest
from clihub import numbered_manifests
from hubproc import child_environ, start_hub, stop_process

from reconciler.applyrun import ApplyHooks, ApplyRequest, run_apply
from reconciler.cli import apply as apply_cli
from reconciler.cli.main import run
from reconciler.client.core import CoderClient
from reconciler.client.errors import ServerError
from reconciler.connect import open_client, resolve_endpoint
from reconciler.model import ActionResult, Marker, Plan, legacy_create_only_hash
from reconciler.pipeline import PlanContext
from reconciler.runlock import lock_path
from reconciler.settings import GlobalOptions


def _manifests(root: Path, n: int, fields: str = "") -> Path:
    """Project ``flow`` and sessions s00... (``fields``: more of each spec, YAML flow)."""
    more = f", {fields}" if fields else ""
    return numbered_manifests(root, "flow", n, width=2, spec="task: task {i}" + more)


def _local(db: Path, *args: str) -> list[str]:
    return ["--api-url", "local", "--local-db", str(db), *args]


class Recorder(ApplyHooks):
    def __init__(self, *, answer: bool = True) -> None:
        self.answer = answer
        self.events: list[str] = []

    def notice(self, message: str) -> None:
        self.events.append(f"notice {message}")

    def show_plan(self, plan: Plan) -> None:
        self.events.append(f"plan {len(plan.actions)}")

    def confirm(self, plan: Plan) -> bool:
        self.events.append("confirm")
        return self.answer

    def on_result(self, result: ActionResult) -> None:
        self.events.append(f"{result.outcome} {result.action.name}")


async def test_run_apply_tells_its_hooks_and_returns_a_report(tmp_path: Path) -> None:
    manifests = _manifests(tmp_path, 2)
    opts = GlobalOptions(api_url="local", local_db=str(tmp_path / "hub.sqlite3"), environ={})
    request = ApplyRequest(paths=(str(manifests),))
    endpoint = resolve_endpoint(opts)
    refused = await run_apply(opts, request, Recorder(answer=False), endpoint=endpoint)
    assert (refused.status, refused.report) == ("cancelled", None)
    hooks = Recorder()
    done = await run_apply(opts, request, hooks, endpoint=endpoint)
    assert done.status == "applied" and done.report is not None
    assert [r.outcome for r in done.report.results] == ["succeeded", "succeeded"]
    assert done.report.duplicates == () and done.report.duplicates_error is None
    assert hooks.events[:2] == ["plan 2", "confirm"]
    assert sorted(hooks.events[2:]) == ["succeeded s00", "succeeded s01"]
    again = await run_apply(opts, request, endpoint=endpoint)  # default hooks: no drawing
    assert (again.status, again.report) == ("no-changes", None)


async def test_the_settlement_keeps_by_the_declaration_the_planner_matches_by(
    tmp_path: Path,
) -> None:
    # The manifest spells out a default, so an older version's marker for it carries
    # another hash (as written) that the declaration still matches. Such a copy made
    # after this run's listing, older than this run's create, is the one kept: the
    # settlement archives this run's copy, as the next plan would.
    manifests = _manifests(tmp_path, 1, fields="workflowMode: standard")
    made: list[str] = []

    async def concurrent_old_version(context: PlanContext, client: CoderClient) -> Plan:
        [d] = context.desired
        legacy = legacy_create_only_hash(d.spec)
        assert legacy != d.spec_hash and d.matches(legacy)
        tag = Marker("flow", "s00", legacy).tag
        created = await client.create_session({**d.spec, "tags": [tag]})
        made.append(created["sessionId"])
        await asyncio.sleep(0.05)  # createdAt has millisecond resolution
        return context.plan

    opts = GlobalOptions(api_url="local", local_db=str(tmp_path / "hub.sqlite3"), environ={})
    request = ApplyRequest(paths=(str(manifests),), make_plan=concurrent_old_version)
    done = await run_apply(opts, request, endpoint=resolve_endpoint(opts))
    assert done.report is not None
    [created] = done.report.results
    [settled] = done.report.duplicates
    assert (settled.outcome, settled.session_id) == ("succeeded", created.session_id)
    assert f"kept {made[0]}" in settled.action.reason
    again = await run_apply(
        opts, ApplyRequest(paths=(str(manifests),)), endpoint=resolve_endpoint(opts)
    )
    assert (again.status, again.report) == ("no-changes", None)


def test_a_second_apply_on_the_embedded_hub_waits_then_gives_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifests = _manifests(tmp_path, 1)
    db = tmp_path / "hub.sqlite3"
    # Another apply, as far as this one knows (released from a timer thread below).
    other = filelock.FileLock(lock_path(str(db)), thread_local=False)
    with other:
        started = time.monotonic()
        code = run(_local(db, "apply", str(manifests), "--yes", "--lock-timeout", "0.5"))
        waited = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"waiting for another apply on {db} to finish" in err
    assert f"error: another apply still holds {db} after 0.5 s" in err
    assert 0.5 <= waited < 10
    # Nothing was listed or written while waiting; free now, the apply goes ahead.
    assert run(_local(db, "plan", str(manifests), "--detailed-exitcode")) == 2
    capsys.readouterr()
    timer = threading.Timer(0.5, other.release)
    other.acquire()
    timer.start()
    code = run(_local(db, "apply", str(manifests), "--yes"))
    err = capsys.readouterr().err
    timer.join()
    assert code == 0, err
    assert "waiting for another apply" in err and "Apply complete: 1 succeeded" in err


def test_the_lock_is_taken_before_the_embedded_database_is_opened_or_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifests = _manifests(tmp_path, 1)
    db = tmp_path / "first" / "hub.sqlite3"
    db.parent.mkdir(mode=0o700)
    # A first apply holds the lock and has not created the database yet.
    with filelock.FileLock(lock_path(str(db)), thread_local=False):
        code = run(_local(db, "apply", str(manifests), "--yes", "--lock-timeout", "0.2"))
    assert code == 1, capsys.readouterr().err
    # The waiting apply never opened it: no database, no journal was made meanwhile.
    assert sorted(p.name for p in db.parent.iterdir()) == ["hub.sqlite3.lock"]


@pytest.mark.subprocess
def test_a_hub_gone_after_the_listing_stops_the_run_as_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = _manifests(tmp_path, 40)
    with start_hub(tmp_path) as hub:
        monkeypatch.setenv("AGENTUITY_SDK_KEY", hub.token)
        # httpx's own transport sees at once that the pooled connection of the listing
        # was closed (the loop does not run while the hub is stopped, so a transport
        # that learns it from the loop would send one create on it: truly unknown).
        monkeypatch.setenv("RECONCILER_HTTP_TRANSPORT", "httpx")
        monkeypatch.setattr(apply_cli, "_stdin_is_terminal", lambda: True)

        def hub_goes_away(question: str, **kwargs: Any) -> bool:
            stop_process(hub.process)  # after the listing, before the first create
            return True

        monkeypatch.setattr(apply_cli.click, "confirm", hub_goes_away)
        started = time.monotonic()
        code = run(["--api-url", hub.url, "apply", str(manifests)])
        elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("[")]
    assert len(lines) == 40  # every action reported once
    failed = [line for line in lines if "FAILED" in line]
    # Five failures in a row decide; up to 4 + 8 (parallelism) were started by then.
    assert 5 <= len(failed) <= 12
    assert all("nothing was sent" in line for line in failed)
    assert sum("not started: hub unreachable" in line for line in lines) == 40 - len(failed)
    assert "outcome unknown" not in err
    assert "Hub unreachable:" in err and "error: hub unreachable" in err
    assert elapsed < 10, elapsed


def test_the_ctrl_c_handler_is_held_only_while_actions_run(tmp_path: Path) -> None:
    # Confirmation reads a terminal: a signal handler on the loop would not run there.
    manifests = _manifests(tmp_path, 1)
    opts = GlobalOptions(api_url="local", local_db=str(tmp_path / "hub.sqlite3"), environ={})
    seen: list[str] = []

    class Watch(apply_cli._Terminal):
        def confirm(self, plan: Plan) -> bool:
            seen.append("confirm")
            return True

        def on_result(self, result: ActionResult) -> None:
            seen.append("result")
            super().on_result(result)

    hooks = Watch(opts, fmt="text", yes=False)
    request = ApplyRequest(paths=(str(manifests),))
    asyncio.run(run_apply(opts, request, hooks, endpoint=resolve_endpoint(opts)))
    assert seen == ["confirm", "result"]


@pytest.mark.subprocess
def test_an_embedded_apply_never_writes_under_a_hub_serve_of_the_same_file(
    tmp_path: Path,
) -> None:
    manifests = _manifests(tmp_path, 2)
    env = child_environ()
    with start_hub(tmp_path) as hub:
        local = [sys.executable, "-m", "reconciler", *_local(hub.db_path)]
        # The server holds the database's lock: the embedded apply waits, then stops.
        refused = subprocess.run(
            [*local, "apply", str(manifests), "--yes", "--lock-timeout", "0.5"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 1, refused.stderr
        assert "or a `hub serve` of it runs" in refused.stderr
        assert "through the server" in refused.stderr
        # Reading it meanwhile is fine, and nothing was written.
        plan = subprocess.run(
            [*local, "plan", str(manifests), "--detailed-exitcode"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert plan.returncode == 2, plan.stderr
        # A second server of the same file is refused at once, in one line.
        second = subprocess.run(
            [sys.executable, "-m", "reconciler", "hub", "serve", "--port", "0"]
            + ["--db", str(hub.db_path), "--token", "k=org:user"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1, second.stderr
        assert f"error: {hub.db_path} is in use by an apply or another `hub serve`" in second.stderr
    # Once the server stopped, the embedded apply goes ahead.
    done = subprocess.run(
        [*local, "apply", str(manifests), "--yes"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


async def test_an_adoption_another_run_overwrote_fails_instead_of_succeeding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two projects adopt one session at once: each PATCH replaces the whole tag list,
    # so the later one wins. The run whose marker is gone says so (failed, exit 1),
    # where both reported success and one project's plans then refused for good.
    opts = GlobalOptions(api_url="local", local_db=str(tmp_path / "hub.sqlite3"), environ={})
    endpoint = resolve_endpoint(opts)
    async with open_client(endpoint) as client:
        made = await client.create_session({"task": "shared task", "label": "Shared"})
    session_id = made["sessionId"]
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "all.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: alpha\n---\n"
        f"apiVersion: reconciler/v1\nkind: Session\nname: shared\nadopt: {session_id}\n"
        "spec: {task: shared task, label: Shared}\n"
    )
    patch = CoderClient.update_session

    async def then_another_project(self: CoderClient, sid: str, body: Any) -> dict[str, Any]:
        answer = await patch(self, sid, body)
        other = {"tags": ["reconciler:beta/shared@0123456789ab"]}
        return await patch(self, sid, other) and answer  # beta's PATCH lands after ours

    monkeypatch.setattr(CoderClient, "update_session", then_another_project)
    done = await run_apply(opts, ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    assert done.report is not None
    [result] = done.report.results
    assert (result.outcome, result.session_id) == ("failed", session_id)
    assert result.error is not None and "another run replaced the session's tags" in result.error


async def test_a_list_that_lags_behind_fails_no_good_replacement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list after the actions does not show the replacement's new session yet: the
    session kept is asked for by id before the name is said lost, so a good run is not
    failed by a hub whose list lags."""
    opts = GlobalOptions(api_url="local", local_db=str(tmp_path / "hub.sqlite3"), environ={})
    endpoint = resolve_endpoint(opts)
    folder = tmp_path / "m"
    folder.mkdir()
    project = "apiVersion: reconciler/v1\nkind: Project\nname: alpha\n---\n"
    session = "apiVersion: reconciler/v1\nkind: Session\nname: a\nspec: {{task: {t}}}\n"
    (folder / "all.yaml").write_text(project + session.format(t="v1"))
    first = await run_apply(opts, ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    assert first.report is not None and not first.report.failed
    (folder / "all.yaml").write_text(project + session.format(t="v2"))  # a replacement
    created: set[str] = set()
    create, listing = CoderClient.create_session, CoderClient.list_all_sessions

    async def made(self: CoderClient, body: Any) -> Any:
        answer = await create(self, body)
        created.add(answer["sessionId"])
        return answer

    async def lagging(self: CoderClient, **options: Any) -> Any:
        items = await listing(self, **options)
        return [i for i in items if i["sessionId"] not in created or options.get("search")]

    monkeypatch.setattr(CoderClient, "create_session", made)
    monkeypatch.setattr(CoderClient, "list_all_sessions", lagging)
    done = await run_apply(opts, ApplyRequest(paths=(str(folder),)), endpoint=endpoint)
    assert done.report is not None
    [result] = done.report.results
    assert (result.action.kind, result.outcome) == ("replace", "succeeded"), result.error


async def test_an_apply_that_created_nothing_is_not_failed_by_the_listing_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An apply that only archived a twin lists the hub to check no name was lost; that
    listing failing leaves the run as it was (it created nothing to settle), where it
    was reported as the listing of sessions it created failing."""
    opts = GlobalOptions(api_url="local", local_db=str(tmp_path / "hub.sqlite3"), environ={})
    endpoint = resolve_endpoint(opts)
    manifests = _manifests(tmp_path, 1)
    first = await run_apply(opts, ApplyRequest(paths=(str(manifests),)), endpoint=endpoint)
    assert first.report is not None
    [made] = first.report.results
    assert made.session_id is not None
    async with open_client(endpoint) as client:
        original = await client.get_session(made.session_id)
        await client.create_session({"task": "task 0", "tags": original["tags"]})  # a twin
    archived: list[str] = []
    archive, listing = CoderClient.archive_session, CoderClient.list_all_sessions

    async def archiving(self: CoderClient, sid: str) -> Any:
        archived.append(sid)
        return await archive(self, sid)

    async def failing(self: CoderClient, **options: Any) -> Any:
        if archived:
            raise ServerError("hub hiccup", status=503)
        return await listing(self, **options)

    monkeypatch.setattr(CoderClient, "archive_session", archiving)
    monkeypatch.setattr(CoderClient, "list_all_sessions", failing)
    done = await run_apply(opts, ApplyRequest(paths=(str(manifests),)), endpoint=endpoint)
    assert done.report is not None and archived
    assert done.report.duplicates_error is None
    assert [r.outcome for r in done.report.results] == ["succeeded"]
