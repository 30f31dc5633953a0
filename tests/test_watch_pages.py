"""The status page of `watch` (`reconciler.watch.board`, `.pages`, `.events`, `.notify`):
states, pages, /status.json against its schema, the badge, the events and their delivery,
secrets masked everywhere. In-process: real reconciles against the embedded hub, the
pages through Starlette's test client, notifications to a receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from starlette.applications import Starlette
from webhook import receiver

from reconciler.applyrun import ApplyRequest, run_apply
from reconciler.cli.main import run
from reconciler.connect import open_client, resolve_endpoint
from reconciler.errors import UsageError
from reconciler.model import RemoteSession
from reconciler.settings import GlobalOptions
from reconciler.watch import WatchRequest, reconcile_once
from reconciler.watch.board import PAGE_STATES, Board, page_state
from reconciler.watch.events import EVENT_KINDS, events
from reconciler.watch.notify import Notifier
from reconciler.watch.pages import add_pages

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "reconciler/schemas/status.schema.json").read_text("utf-8"))
CANARY = "canary-5ecret-value-7731"
DECLARED = "Declared label"
EDITED = "Edited by hand"

# -- the one mapping -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sync", "flags", "state"),
    [
        ("in-sync", {}, "in-sync"),
        ("in-sync", {"ignored": True}, "ignored"),
        ("pending", {}, "pending"),  # the manifests changed (a later status word)
        ("drifted", {}, "drifted"),  # the hub changed
        ("differs", {}, "drifted"),  # which side is unknown: shown as drift
        ("missing", {}, "pending"),
        ("missing", {"archived_on_hub": True}, "drifted"),
        ("replace", {}, "pending"),
        ("orphan", {}, "pending"),
        ("a-word-added-later", {}, "drifted"),
        ("drifted", {"refused": True}, "refused"),
        ("drifted", {"failed": True, "refused": True}, "failed"),
    ],
)
def test_page_state_maps_every_sync_word(sync: str, flags: dict[str, bool], state: str) -> None:
    assert page_state(sync, **flags) == state


def test_the_schema_lists_the_page_states() -> None:
    assert tuple(SCHEMA["$defs"]["state"]["enum"]) == PAGE_STATES
    assert tuple(SCHEMA["properties"]["counts"]["required"]) == PAGE_STATES


# -- a watcher's reconciles against the embedded hub -----------------------------------


def _manifests(root: Path, *, beta_task: str = "t beta", ignore: bool = False) -> Path:
    path = root / "manifests"
    path.mkdir(exist_ok=True)
    lifecycle = "lifecycle: {ignoreChanges: [label]}\n" if ignore else ""
    docs = [
        "apiVersion: reconciler/v1\nkind: Project\nname: watched\n",
        "apiVersion: reconciler/v1\nkind: Session\nname: alpha\n"
        f"spec: {{task: t alpha, label: {DECLARED}, tags: [nightly]}}\n{lifecycle}",
        "apiVersion: reconciler/v1\nkind: Session\nname: beta\n"
        f"spec: {{task: {beta_task}, label: {DECLARED}, tags: [review],"
        " env: {API_KEY: '${env:CANARY}'}}\n",
    ]
    (path / "all.yaml").write_text("---\n".join(docs), encoding="utf-8")
    return path


def _opts(tmp_path: Path) -> GlobalOptions:
    return GlobalOptions(
        api_url="local", local_db=str(tmp_path / "hub.sqlite3"), environ={"CANARY": CANARY}
    )


async def _edit(opts: GlobalOptions, name: str, body: dict[str, Any]) -> None:
    async with open_client(resolve_endpoint(opts)) as client:
        items = await client.list_all_sessions(include_archived=True)
        for item in items:
            remote = RemoteSession.from_api(item)
            if any(m.name == name for m in remote.markers()) and not remote.archived_like:
                await client.update_session(remote.session_id, body)


class Watch:
    """A board fed by real reconciles, and its pages on a test client."""

    def __init__(self, tmp_path: Path) -> None:
        self.opts = _opts(tmp_path)
        self.endpoint = resolve_endpoint(self.opts)
        self.board = Board(history_size=5)
        self.number = 0
        app = Starlette()
        add_pages(app, self.board, refresh_s=7, hub_url="http://hub.example/hub")
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://watch.test"
        )

    async def get(self, path: str) -> httpx.Response:
        return await self.client.get(path)

    async def reconcile(self, paths: Path, *, self_heal: bool = False) -> Any:
        self.number += 1
        found = await reconcile_once(
            self.opts,
            WatchRequest(paths=(str(paths),), self_heal=self_heal),
            endpoint=self.endpoint,
            stop=asyncio.Event(),
        )
        self.last = found
        return self.board.record(found, number=self.number, now=1_765_000_000.0 + self.number)

    async def everything(self) -> str:
        """Every page and document the server has, as text."""
        paths = ["/", "/history", "/status.json", "/badge.svg"]
        paths += [f"/sessions/{name}" for name in self.board.sessions]
        return "\n".join([(await self.get(p)).text for p in paths])


async def _applied(tmp_path: Path) -> tuple[Watch, Path]:
    paths = _manifests(tmp_path)
    watch = Watch(tmp_path)
    await run_apply(watch.opts, ApplyRequest(paths=(str(paths),)), endpoint=watch.endpoint)
    return watch, paths


async def test_a_hand_edit_shows_as_drifted_with_old_and_new_values(tmp_path: Path) -> None:
    watch, paths = await _applied(tmp_path)
    await watch.reconcile(paths)
    assert {s.state for s in watch.board.sessions.values()} == {"in-sync"}
    await _edit(watch.opts, "beta", {"label": EDITED})
    update = await watch.reconcile(paths)
    beta = watch.board.sessions["beta"]
    assert beta.state == "drifted"
    assert beta.source is not None and beta.source.endswith("all.yaml:10")
    assert [t.session.name for t in update.transitions] == ["beta"]
    counts = (await watch.get("/status.json")).json()["counts"]
    assert counts["drifted"] == 1 and counts["in-sync"] == 1

    page = await watch.get("/sessions/beta")
    assert page.status_code == 200
    assert EDITED in page.text and DECLARED in page.text
    assert '<th scope="row">label</th>' in page.text
    assert "the hub" in page.text  # who changed it
    assert 'href="http://hub.example/hub/session/' in page.text

    index = await watch.get("/")
    assert 'class="state s-drifted">drifted' in index.text
    assert "all.yaml:10" in index.text
    assert 'id="autorefresh" data-seconds="7" checked' in index.text
    assert "http://" not in index.text.split("</head>")[0]  # no external asset
    # One script, allowed by its hash, nothing else.
    scripts = re.findall(r"<script>(.*?)</script>", index.text, re.S)
    assert len(scripts) == 1 and "location.reload" in scripts[0]
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    policy = index.headers["content-security-policy"]
    assert f"script-src 'sha256-{digest}';" in policy
    assert "default-src 'none'" in policy


async def test_filters_by_state_tag_and_search(tmp_path: Path) -> None:
    watch, paths = await _applied(tmp_path)
    await _edit(watch.opts, "beta", {"label": EDITED})
    await watch.reconcile(paths)

    async def names(query: str) -> list[str]:
        text = (await watch.get(f"/?{query}")).text
        return [n for n in ("alpha", "beta") if f'href="/sessions/{n}"' in text]

    assert await names("") == ["alpha", "beta"]
    assert await names("state=drifted") == ["beta"]
    assert await names("state=in-sync") == ["alpha"]
    assert await names("tag=nightly") == ["alpha"]
    assert await names("q=BET") == ["beta"]
    assert await names("state=failed") == []
    assert "No session matches." in (await watch.get("/?state=failed")).text


async def test_status_json_follows_its_schema_and_no_secret_anywhere(tmp_path: Path) -> None:
    watch, paths = await _applied(tmp_path)
    await _edit(watch.opts, "beta", {"label": EDITED})
    await watch.reconcile(paths)
    # A new task replaces beta: its env shows only as (sensitive).
    await watch.reconcile(_manifests(tmp_path, beta_task="another task"))
    document = (await watch.get("/status.json")).json()
    Draft202012Validator(SCHEMA).validate(document)
    assert [e["number"] for e in document["history"]] == [2, 1]
    beta = next(s for s in document["sessions"] if s["name"] == "beta")
    assert beta["action"]["kind"] == "replace"
    assert "(sensitive)" in json.dumps(beta["action"]["changes"]) or all(
        not c["field"].startswith("env") for c in beta["action"]["changes"]
    )
    # The secret was sent (the hub holds it: apply resolved it), never in what is served.
    with contextlib.closing(sqlite3.connect(tmp_path / "hub.sqlite3")) as db:
        assert CANARY in "\n".join(db.iterdump())
    assert CANARY not in await watch.everything()
    schema = await watch.get("/status.schema.json")
    assert schema.json() == SCHEMA


async def test_the_badge_says_in_sync_drifted_or_failing(tmp_path: Path) -> None:
    watch, paths = await _applied(tmp_path)
    assert "unknown" in (await watch.get("/badge.svg")).text
    await watch.reconcile(paths)
    badge = await watch.get("/badge.svg")
    assert badge.headers["content-type"].startswith("image/svg+xml")
    assert 'aria-label="reconciler: in sync"' in badge.text
    await _edit(watch.opts, "beta", {"label": EDITED})
    await watch.reconcile(paths)
    assert 'aria-label="reconciler: 1 drifted"' in (await watch.get("/badge.svg")).text
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.yaml").write_text("apiVersion: reconciler/v1\nkind: Sesion\nname: x\n")
    await watch.reconcile(broken)
    assert 'aria-label="reconciler: failing"' in (await watch.get("/badge.svg")).text
    # The last plan's sessions stay on the page; the history says what failed.
    assert watch.board.sessions["beta"].state == "drifted"
    assert "x.yaml:2" in (await watch.get("/history")).text


async def test_history_keeps_the_last_n_and_a_session_its_changes(tmp_path: Path) -> None:
    watch, paths = await _applied(tmp_path)
    await _edit(watch.opts, "beta", {"label": EDITED})
    for _ in range(3):
        await watch.reconcile(paths)
    await watch.reconcile(paths, self_heal=True)  # heals beta
    for _ in range(3):
        await watch.reconcile(paths)
    assert [e.number for e in watch.board.history] == [3, 4, 5, 6, 7]  # history_size=5
    history = (await watch.get("/history")).text
    assert 'id="r7"' in history and 'id="r2"' not in history
    assert 'update <a href="/sessions/beta">beta</a>: succeeded' in history
    notes = [(e["reconcile"], e["state"], e["note"]) for e in watch.board.session_history["beta"]]
    assert notes == [
        (1, "drifted", "planned: update"),
        (4, "in-sync", "update: succeeded"),
    ]
    assert watch.board.sessions["beta"].last_result is not None
    page = (await watch.get("/sessions/beta")).text
    assert 'update: <span class="state s-in-sync">succeeded</span>' in page


async def test_ignore_changes_is_counted_as_ignored(tmp_path: Path) -> None:
    watch = Watch(tmp_path)
    paths = _manifests(tmp_path, ignore=True)
    await run_apply(watch.opts, ApplyRequest(paths=(str(paths),)), endpoint=watch.endpoint)
    await _edit(watch.opts, "alpha", {"label": EDITED})
    await watch.reconcile(paths)
    alpha = watch.board.sessions["alpha"]
    assert (alpha.state, alpha.ignored_fields) == ("ignored", ("label",))
    assert watch.board.counts()["ignored"] == 1
    assert "lifecycle.ignoreChanges" in (await watch.get("/sessions/alpha")).text


async def test_unmanaged_sessions_are_counted(tmp_path: Path) -> None:
    watch, paths = await _applied(tmp_path)
    async with open_client(watch.endpoint) as client:
        await client.create_session({"task": "by hand", "label": "someone's"})
    await watch.reconcile(paths)
    assert watch.board.counts()["unmanaged"] == 1
    assert "unmanaged" not in {s.state for s in watch.board.sessions.values()}


async def test_a_renamed_project_keeps_its_sessions_on_the_board(tmp_path: Path) -> None:
    # `previously` on the Project: the old project's sessions are this project's own
    # (pending: the manifests renamed them; the same ids, re-tagged in place), neither
    # missing nor unmanaged.
    watch, paths = await _applied(tmp_path)
    await watch.reconcile(paths)
    before = {name: view.session_id for name, view in watch.board.sessions.items()}
    all_yaml = paths / "all.yaml"
    text = all_yaml.read_text(encoding="utf-8")
    all_yaml.write_text(
        text.replace("name: watched\n", "name: renamed\npreviously: [watched]\n", 1),
        encoding="utf-8",
    )
    await watch.reconcile(paths)
    sessions = watch.board.sessions
    assert {n: (v.session_id, v.state) for n, v in sessions.items()} == {
        name: (session_id, "pending") for name, session_id in before.items()
    }
    assert {v.sync for v in sessions.values()} == {"pending"}
    assert watch.board.counts()["unmanaged"] == 0


async def test_an_unknown_session_is_a_404_page(tmp_path: Path) -> None:
    watch, paths = await _applied(tmp_path)
    await watch.reconcile(paths)
    answer = await watch.get("/sessions/%3Cscript%3E")
    assert answer.status_code == 404
    assert "<h1>No session &lt;script&gt;</h1>" in answer.text


# -- events: one per change of state ---------------------------------------------------


async def test_events_are_sent_once_per_change_of_state(tmp_path: Path) -> None:
    watch, paths = await _applied(tmp_path)

    async def kinds(p: Path = paths, self_heal: bool = False) -> list[str]:
        return [e.kind for e in events(await watch.reconcile(p, self_heal=self_heal))]

    assert await kinds() == []  # in sync from the start: nothing to say
    await _edit(watch.opts, "beta", {"label": EDITED})
    assert await kinds() == ["drift"]
    assert await kinds() == []  # the same drift again: no new event
    assert await kinds(self_heal=True) == ["healed"]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.yaml").write_text("apiVersion: reconciler/v1\nkind: Sesion\nname: x\n")
    assert await kinds(broken) == ["failed"]
    assert await kinds(broken) == []
    assert await kinds() == ["recovered"]


async def test_a_hand_edit_a_self_healing_watcher_reverts_at_once_is_told(tmp_path: Path) -> None:
    # Found and put right in one reconcile, the session's state never changed: the heal
    # is a `healed` event all the same (a team learns its edit was reverted), with the
    # plan's reason (the hub changed, not the manifests).
    watch, paths = await _applied(tmp_path)
    assert events(await watch.reconcile(paths, self_heal=True)) == ()
    await _edit(watch.opts, "beta", {"label": EDITED})
    (event,) = events(await watch.reconcile(paths, self_heal=True))
    project = event.payload["project"]
    assert (event.kind, event.title) == (
        "healed",
        f"{project}: 1 session changed by this watcher's heal",
    )
    assert event.body == "- beta: update applied (drift: label)"
    (session,) = event.payload["sessions"]
    assert (session["name"], session["previous"], session["healedByWatch"]) == (
        "beta",
        "in-sync",
        True,
    )
    assert EDITED not in str(event.payload)  # field names, never values
    assert events(await watch.reconcile(paths, self_heal=True)) == ()
    # A change of the manifests the watcher deploys says so.
    all_yaml = paths / "all.yaml"
    text = all_yaml.read_text()
    all_yaml.write_text(text.replace(f"task: t beta, label: {DECLARED}", "task: t beta, label: B2"))
    (event,) = events(await watch.reconcile(paths, self_heal=True))
    assert event.body == "- beta: update applied (manifest: label)"


async def test_a_hand_edit_reverted_by_a_watcher_s_first_reconcile_is_told(
    tmp_path: Path,
) -> None:
    # Made while no watcher ran (a deploy, a restart): the first reconcile's heal is
    # told too, its sessions first seen.
    watch, paths = await _applied(tmp_path)
    await _edit(watch.opts, "beta", {"label": EDITED})
    (event,) = events(await watch.reconcile(paths, self_heal=True))
    assert event.body == "- beta: update applied (drift: label)"
    assert [s["previous"] for s in event.payload["sessions"]] == [None]


async def test_a_refused_plan_is_an_event_naming_the_rule(tmp_path: Path) -> None:
    watch = Watch(tmp_path)
    names = [f"s{i:02d}" for i in range(10)]
    folder = tmp_path / "many"
    folder.mkdir()
    docs = ["apiVersion: reconciler/v1\nkind: Project\nname: watched\n"]
    docs += [
        f"apiVersion: reconciler/v1\nkind: Session\nname: {n}\nspec: {{task: t}}\n" for n in names
    ]
    (folder / "all.yaml").write_text("---\n".join(docs), encoding="utf-8")
    await run_apply(watch.opts, ApplyRequest(paths=(str(folder),)), endpoint=watch.endpoint)
    (folder / "all.yaml").write_text("---\n".join(docs[:2]), encoding="utf-8")
    update = await watch.reconcile(folder, self_heal=True)
    found = events(update)
    assert [e.kind for e in found] == ["refused"]
    assert "maxDestroyPercent" in found[0].title
    assert found[0].payload["refusals"][0]["rule"] == "maxDestroyPercent"
    assert watch.board.counts()["refused"] == 9
    assert watch.board.health == "failing"
    assert "maxDestroyPercent" in (await watch.get("/")).text
    assert [e.kind for e in events(await watch.reconcile(folder, self_heal=True))] == []


# -- delivery through apprise to a receiver on 127.0.0.1 --------------------------------


async def test_notifications_reach_a_json_webhook_without_secrets(tmp_path: Path) -> None:
    watch, paths = await _applied(tmp_path)
    with receiver() as (url, received):
        notifier = Notifier([url])
        await watch.reconcile(paths)
        await _edit(watch.opts, "beta", {"label": EDITED})
        assert await notifier.send(events(await watch.reconcile(paths))) == 1
        assert await notifier.send(events(await watch.reconcile(paths))) == 0
        assert await notifier.send(events(await watch.reconcile(paths, self_heal=True))) == 1
    assert [r["type"] for r in received] == ["warning", "success"]
    assert received[0]["title"] == "watched: 1 session out of sync"
    assert "beta: drifted (update: label)" in received[0]["message"]
    assert "beta: drifted -> in sync (healed)" in received[1]["message"]
    assert CANARY not in json.dumps(received)
    assert EDITED not in json.dumps(received)  # field names, never values


def test_a_target_that_fails_is_a_warning_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    from hubproc import free_port

    notifier = Notifier([f"json://127.0.0.1:{free_port()}/hook?token=hush"])
    update = _fake_update()
    with caplog.at_level("WARNING", logger="reconciler.watch"):
        assert asyncio.run(notifier.send(events(update))) == 0
    assert "--notify #1 did not take the failed event" in caplog.text
    assert "hush" not in caplog.text


def test_no_log_line_holds_a_notify_url_even_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    # A Slack or Discord webhook's token is in its path; urllib3 logs paths at -vv.
    with receiver() as (url, received), caplog.at_level("DEBUG"):
        notifier = Notifier([f"{url}/canaryWEBHOOKTOKEN"])
        assert asyncio.run(notifier.send(events(_fake_update()))) == 1
    assert received and "canaryWEBHOOKTOKEN" not in caplog.text


def _fake_update() -> Any:
    from reconciler.watch.cycle import Reconcile

    board = Board()
    return board.record(Reconcile("error", error="boom", error_kind="other"), number=1, now=1.0)


def test_a_url_apprise_cannot_read_is_a_usage_error_that_does_not_repeat_it() -> None:
    with pytest.raises(UsageError) as caught:
        Notifier(["json://127.0.0.1:1/ok", "nonsense-scheme://secret-token@x"])
    assert "--notify #2" in str(caught.value)
    assert "secret-token" not in str(caught.value)


def test_the_cli_refuses_a_bad_notify_url_with_exit_64(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        ["--api-url", "local", "--local-db", str(tmp_path / "h.db"), "watch", str(tmp_path)]
        + ["--notify", "nonsense-scheme://secret-token@x"]
    )
    assert code == 64
    err = capsys.readouterr().err
    assert "--notify #1" in err and "secret-token" not in err


def test_every_event_kind_has_a_severity() -> None:
    from reconciler.watch.events import _SEVERITY

    assert set(_SEVERITY) == set(EVENT_KINDS)


# -- the loop serves the page and notifies; apprise only with --notify ------------------


async def test_the_loop_serves_the_page_beside_the_metrics_and_notifies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from reconciler.watch import run_watch

    paths = _manifests(tmp_path)
    opts = _opts(tmp_path)
    stop = asyncio.Event()
    ports: list[int] = []

    class Listen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "event", None) == "listening":
                ports.append(getattr(record, "port", 0))

    handler = Listen()
    caplog.set_level(logging.INFO, logger="reconciler.watch")
    logging.getLogger("reconciler.watch").addHandler(handler)
    try:
        with receiver() as (url, received):
            request = WatchRequest(
                paths=(str(paths),), interval_s=3600, metrics_port=0, notify=(url,)
            )
            task = asyncio.create_task(
                run_watch(opts, request, endpoint=resolve_endpoint(opts), stop=stop)
            )
            async with httpx.AsyncClient(timeout=5) as client:
                for _ in range(600):
                    assert not task.done(), task
                    if ports and received:
                        break
                    await asyncio.sleep(0.05)
                base = f"http://127.0.0.1:{ports[0]}"
                status = (await client.get(f"{base}/status.json")).json()
                page = await client.get(f"{base}/")
                metrics = await client.get(f"{base}/metrics")
            stop.set()
            await asyncio.wait_for(task, timeout=30)
    finally:
        logging.getLogger("reconciler.watch").removeHandler(handler)
    assert status["counts"]["pending"] == 2  # declared, not created: nothing applied
    assert "Sessions of watched" in page.text
    assert "reconciler_sessions" in metrics.text
    assert [r["title"] for r in received] == ["watched: 2 sessions out of sync"]


@pytest.mark.subprocess
def test_apprise_and_the_pages_load_only_when_used(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = """
import asyncio, logging, sys
from reconciler.connect import resolve_endpoint
from reconciler.settings import GlobalOptions
from reconciler.watch import WatchRequest, run_watch

async def main(port):
    stop = asyncio.Event()

    class Stop(logging.Handler):
        def emit(self, record):
            if getattr(record, "event", None) == "reconcile":
                stop.set()

    logging.getLogger("reconciler.watch").addHandler(Stop())
    opts = GlobalOptions(api_url="local", local_db=sys.argv[1], environ={"CANARY": "x"})
    request = WatchRequest(paths=(sys.argv[2],), metrics_port=port)
    await run_watch(opts, request, endpoint=resolve_endpoint(opts), stop=stop)

asyncio.run(main(None))
print("without a port:", "apprise" in sys.modules, "reconciler.watch.pages" in sys.modules)
asyncio.run(main(0))
print("with a port:", "apprise" in sys.modules, "reconciler.watch.pages" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "hub.db"), str(_manifests(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "without a port: False False",
        "with a port: False True",
    ]


def test_the_docs_page_names_every_state_and_event() -> None:
    page = (ROOT / "docs/how-to/status-page.md").read_text(encoding="utf-8")
    assert page.startswith("# The status page\n")
    assert (ROOT / "docs/img/status-page.png").stat().st_size > 10_000
    for state in PAGE_STATES:
        assert f"| `{state}` |" in page, state
    for kind in EVENT_KINDS:
        assert f"| `{kind}` |" in page, kind


async def test_a_large_project_lists_the_first_rows_and_counts_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.watch import pages

    monkeypatch.setattr(pages, "MAX_ROWS", 1)
    watch, paths = await _applied(tmp_path)
    await watch.reconcile(paths)
    text = (await watch.get("/")).text
    assert "2 of 2 sessions (the first 1 shown: filter to narrow)" in text
    assert 'href="/sessions/alpha"' in text and 'href="/sessions/beta"' not in text


async def test_a_heal_that_fails_shows_its_error_and_is_an_event(tmp_path: Path) -> None:
    import dataclasses

    from reconciler.model import ActionResult, ApplyReport

    watch, paths = await _applied(tmp_path)
    await watch.reconcile(paths)
    await _edit(watch.opts, "beta", {"label": EDITED})
    found = await reconcile_once(
        watch.opts, WatchRequest(paths=(str(paths),)), endpoint=watch.endpoint, stop=asyncio.Event()
    )
    assert found.plan is not None
    [update] = found.plan.actions
    # What a self-healing reconcile returns when the hub refuses the PATCH.
    failing = dataclasses.replace(
        found,
        result="error",
        error="actions failed: update beta",
        error_kind="actions",
        report=ApplyReport((ActionResult(update, "failed", error="HTTP 503: hub busy"),)),
    )
    watch.number += 1
    changed = watch.board.record(failing, number=watch.number, now=1_765_000_100.0)
    beta = watch.board.sessions["beta"]
    assert beta.state == "failed"
    assert beta.last_result is not None and beta.last_result["error"] == "HTTP 503: hub busy"
    index = (await watch.get("/")).text
    assert "HTTP 503: hub busy" in index
    assert 'aria-label="reconciler: failing"' in (await watch.get("/badge.svg")).text
    [event] = events(changed)
    assert event.kind == "failed" and event.severity == "failure"
    assert "- beta: failed (update: label): HTTP 503: hub busy" in event.body
    assert event.payload["errorKind"] == "actions"
    # The next heal succeeds: in sync again, and the watcher recovered.
    kinds = [e.kind for e in events(await watch.reconcile(paths, self_heal=True))]
    assert kinds == ["healed", "recovered"]


async def test_a_session_archived_away_leaves_the_page_and_its_history(tmp_path: Path) -> None:
    watch, paths = await _applied(tmp_path)
    await watch.reconcile(paths)
    text = (paths / "all.yaml").read_text(encoding="utf-8")
    (paths / "all.yaml").write_text(
        text.split("---\napiVersion: reconciler/v1\nkind: Session\nname: beta")[0]
    )
    assert watch.board.sessions["alpha"].state == "in-sync"
    await watch.reconcile(paths, self_heal=True)  # archives beta (prune: archive)
    assert watch.board.session_history["beta"][-1]["note"] == "archive: succeeded"
    update = await watch.reconcile(paths)
    assert update.gone == ("beta",)
    assert "beta" not in watch.board.session_history
    assert (await watch.get("/sessions/beta")).status_code == 404


async def test_a_manifest_edit_shows_as_pending_changed_by_the_manifests(tmp_path: Path) -> None:
    watch, paths = await _applied(tmp_path)
    await watch.reconcile(paths)
    text = (paths / "all.yaml").read_text(encoding="utf-8")
    (paths / "all.yaml").write_text(
        text.replace(
            "name: alpha\nspec: {task: t alpha, label: Declared label",
            "name: alpha\nspec: {task: t alpha, label: New label",
        )
    )
    await _edit(watch.opts, "beta", {"label": EDITED})
    [drift] = events(await watch.reconcile(paths))
    states = {name: view.state for name, view in watch.board.sessions.items()}
    assert states == {"alpha": "pending", "beta": "drifted"}
    assert "- alpha: pending (update: label)" in drift.body
    page = (await watch.get("/sessions/alpha")).text
    assert "<td>the manifests</td>" in page
    assert "<td>the hub</td>" in (await watch.get("/sessions/beta")).text
    assert 'aria-label="reconciler: 2 drifted"' in (await watch.get("/badge.svg")).text
