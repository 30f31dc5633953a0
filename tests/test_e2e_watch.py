"""`reconciler watch` for real: a subprocess against a served hub.

A report-only watcher notices a hand edit (metrics say drifted, the edit stays); a
self-healing one puts it back; both serve metrics that prometheus-client's parser reads,
write JSON log lines, and stop on SIGTERM with exit 0. Bounded: --interval 1s, every
wait has a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flood import assert_all_served, run_flood, summary
from hubproc import HubProcess, child_environ, limit_fds, start_hub, stop_process, until
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.subprocess

DEADLINE_S = 40.0
DECLARED = "Declared label"


def _write_manifests(root: Path) -> Path:
    path = root / "manifests"
    path.mkdir()
    docs = ["apiVersion: reconciler/v1\nkind: Project\nname: watched\n"]
    docs += [
        f"apiVersion: reconciler/v1\nkind: Session\nname: {n}\n"
        f"spec: {{task: t, label: {DECLARED}}}\n"
        for n in ("alpha", "beta")
    ]
    (path / "all.yaml").write_text("---\n".join(docs), encoding="utf-8")
    return path


def _env(hub: HubProcess) -> dict[str, str]:
    env = child_environ()
    env["AGENTUITY_SDK_KEY"] = hub.token
    return env


def _until(what: str, probe: Callable[[], Any]) -> Any:
    return until(what, probe, timeout_s=DEADLINE_S)


class Watcher:
    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def lines(self) -> list[dict[str, Any]]:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def port(self) -> int:
        def listening() -> int | None:
            assert self.process.poll() is None, self.log_path.read_text()
            found = [line["port"] for line in self.lines() if line.get("event") == "listening"]
            return found[0] if found else None

        port: int = _until("the metrics port", listening)
        return port

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = httpx.get(f"http://127.0.0.1:{self.port()}/metrics", timeout=5).text
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=DEADLINE_S)


@contextlib.contextmanager
def watching(
    hub: HubProcess, tmp_path: Path, manifests: Path, *flags: str, fd_limit: int | None = None
) -> Iterator[Watcher]:
    log_path = tmp_path / f"watch-{time.monotonic_ns()}.log"
    argv = [sys.executable, "-m", "reconciler", "--api-url", hub.url, "watch", str(manifests)]
    argv += ["--interval", "1s", "--metrics-port", "0", "--log-format", "json", *flags]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=_env(hub),
            preexec_fn=limit_fds(fd_limit),
        )
    try:
        yield Watcher(process, log_path)
    finally:
        stop_process(process)


def _sessions(hub: HubProcess) -> dict[str, dict[str, Any]]:
    answer = httpx.get(f"{hub.url}/hub/sessions", headers=hub.headers, timeout=10)
    items = answer.json()["sessions"]["websocket"]
    found = {}
    for item in items:
        for tag in item["tags"]:
            if tag.startswith("reconciler:watched/"):
                found[tag.split("/")[1].split("@")[0]] = item
    return found


def _drifted(m: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float | None:
    return m.get(("reconciler_sessions", frozenset({("project", "watched"), ("sync", "drifted")})))


def test_watch_notices_a_hand_edit_heals_it_serves_metrics_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    manifests = _write_manifests(tmp_path)
    with start_hub(tmp_path) as hub:
        # A self-healing watcher creates the declared sessions.
        with watching(hub, tmp_path, manifests, "--self-heal") as watcher:
            _until("two sessions", lambda: len(_sessions(hub)) == 2)
            _until("in sync", lambda: _drifted(watcher.metrics()) == 0)
            assert watcher.stop() == 0

        beta = _sessions(hub)["beta"]
        edit = httpx.patch(
            f"{hub.url}/hub/session/{beta['sessionId']}",
            json={"label": "Edited by hand"},
            headers=hub.headers,
            timeout=10,
        )
        assert edit.status_code == 200

        # Report-only: the drift shows in the metrics and the logs; the edit stays.
        with watching(hub, tmp_path, manifests) as watcher:
            _until("drift in the metrics", lambda: _drifted(watcher.metrics()) == 1)
            runs = watcher.metrics()
            assert runs[("reconciler_reconcile_runs_total", frozenset({("result", "drift")}))] >= 1
            assert watcher.stop() == 0
            reconciles = [x for x in watcher.lines() if x.get("event") == "reconcile"]
            assert reconciles[0]["result"] == "drift"
            assert reconciles[0]["sync"]["drifted"] == 1
            assert "1 to update" in reconciles[0]["message"]
            assert watcher.lines()[-1]["event"] == "stop"
            # Stopped between reconciles: the signal's line claims no running action.
            [signalled] = [x for x in watcher.lines() if x.get("event") == "SIGTERM"]
            assert signalled["message"] == (
                "SIGTERM: stopping (a reconcile under way finishes its running actions first)"
            )
        assert _sessions(hub)["beta"]["label"] == "Edited by hand"

        # Self-healing: the label is put back, counted as an update that succeeded.
        with watching(hub, tmp_path, manifests, "--self-heal") as watcher:
            _until("the heal", lambda: _sessions(hub)["beta"]["label"] == DECLARED)
            update = (
                "reconciler_actions_total",
                frozenset({("kind", "update"), ("outcome", "succeeded")}),
            )
            _until("the update counted", lambda: watcher.metrics().get(update) == 1)
            _until("in sync again", lambda: _drifted(watcher.metrics()) == 0)
            scraped = watcher.metrics()
            assert (
                scraped[("reconciler_last_successful_reconcile_timestamp_seconds", frozenset())] > 0
            )
            assert scraped[("reconciler_reconcile_duration_seconds_count", frozenset())] >= 1
            health = httpx.get(f"http://127.0.0.1:{watcher.port()}/healthz", timeout=5).json()
            assert health["status"] == "ok" and health["reconciles"] >= 1
            assert watcher.stop() == 0
            actions = [x for x in watcher.lines() if x.get("event") == "action"]
            assert [(a["kind"], a["session"], a["outcome"]) for a in actions] == [
                ("update", "beta", "succeeded")
            ]
        assert hub.token not in watcher.log_path.read_text()


def test_ctrl_c_stops_the_watcher_with_exit_130(tmp_path: Path) -> None:
    manifests = _write_manifests(tmp_path)
    with start_hub(tmp_path) as hub, watching(hub, tmp_path, manifests) as watcher:
        _until(
            "a reconcile",
            lambda: any(x.get("event") == "reconcile" for x in watcher.lines()),
        )
        watcher.process.send_signal(signal.SIGINT)
        assert watcher.process.wait(timeout=DEADLINE_S) == 130
        assert watcher.lines()[-1]["event"] == "stop"
        assert "interrupted" in watcher.log_path.read_text()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="lowers RLIMIT_NOFILE in the child")
def test_a_flood_on_the_metrics_port_fails_no_probe_and_no_reconcile(tmp_path: Path) -> None:
    # 450 connections sending half a head and 150 sending a head and then a byte of the
    # body a second, each reconnecting when closed, against a watcher allowed 512
    # descriptors. Before the bounds: nothing timed out, accept() failed with EMFILE
    # and logged a traceback each time (57,000 in 12 s at 256 descriptors), a probe hung.
    fd_limit = 512
    manifests = _write_manifests(tmp_path)
    with (
        start_hub(tmp_path) as hub,
        watching(hub, tmp_path, manifests, "--self-heal", fd_limit=fd_limit) as watcher,
    ):
        url = f"http://127.0.0.1:{watcher.port()}"
        stats, answers, fds = run_flood(
            url,
            watcher.process.pid,
            legit=[("GET", "/healthz", None), ("GET", "/metrics", None)],
            half_heads=450,
            trickled_bodies=150,
            seconds=12,
            legit_count=30,
            path="/healthz",
        )
        assert watcher.stop() == 0
    log = watcher.log_path.read_text(errors="replace")
    print(f"\n{summary(answers)}; descriptors at most {max(fds)}; log {len(log)} bytes")
    print(f"flood: {stats}")
    assert_all_served(answers)
    assert stats.connects > 600  # the attackers were closed, and came back
    assert max(fds) < fd_limit and "Too many open files" not in log
    assert "Traceback" not in log and len(log) < 100_000, log[-2000:]
    # The reconciles went on through the flood, and none failed.
    results = [line["result"] for line in watcher.lines() if line.get("event") == "reconcile"]
    assert len(results) >= 5 and set(results) <= {"applied", "in-sync"}, results
