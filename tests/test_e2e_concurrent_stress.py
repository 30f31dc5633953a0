"""Concurrent applies of one project against `reconciler hub serve` lose nothing.

Each round starts a hub on 127.0.0.1 (with or without ``--latency-ms``), then 2, 3 or 5
``apply`` runs of the same sessions, all at once or each 0.2-2 s after the previous one,
sometimes with ``watch --self-heal`` beside them. After the round:

- every name has exactly one active session, and it is the one the keeping rule
  (``model.keep_order``: oldest by ``createdAt``, then id) picks among every session
  ever made for the name: had the keeper been archived and the name made again (by a
  later run or the watcher), a younger one would survive;
- every run's report that names a kept session names that one, and no run archived it;
- every run exited 0, and the next plan is clean.

The rounds are bounded in count and each in time. The full stress (20 rounds) is in
the slow tier; two rounds run in the subprocess tier.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from clihub import numbered_manifests
from hubproc import child_environ, listed_items, start_hub, stop_process

from reconciler.model import RemoteSession, keep_order

pytestmark = [pytest.mark.subprocess]

# Names per round: enough that a later run plans while earlier ones still create.
N = 200
PROJECT = "stress"
_RUN_TIMEOUT_S = 180
_WATCH_SETTLE_S = 90
_KEPT = re.compile(r"kept (\S+?),")


@dataclass(frozen=True)
class Round:
    runs: int
    stagger: bool  # later runs 0.2-2 s after the previous one, else all at once
    latency_ms: int
    watch: bool  # `watch --self-heal` beside the applies

    def __str__(self) -> str:
        how = "staggered" if self.stagger else "at once"
        extra = f", latency {self.latency_ms} ms" if self.latency_ms else ""
        return f"{self.runs} applies {how}{extra}{', with watch' if self.watch else ''}"


# Runs vary fastest, so that any 20 consecutive rounds cover every count and mode.
ALL_ROUNDS = [
    Round(runs, stagger, latency, watch)
    for watch in (False, True)
    for latency in (0, 40)
    for stagger in (False, True)
    for runs in (2, 3, 5)
]


def _env(token: str) -> dict[str, str]:
    env = child_environ()
    env["AGENTUITY_SDK_KEY"] = token
    return env


def _write_manifests(root: Path) -> Path:
    return numbered_manifests(root, PROJECT, N)


class _Watch:
    """`watch --self-heal` in the background; its JSON log lines are collected."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, args=(self.process.stderr,))
        self._reader.start()

    def _read(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        for raw in stream:
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                self.lines.append({"message": raw.decode(errors="replace")})

    def stop_once_in_sync(self, after: int) -> list[str]:
        """Wait for a reconcile after the ``after``-th log line that found nothing to do
        (so the watcher is between cycles, nothing of its own half-done), then stop it."""
        deadline = time.monotonic() + _WATCH_SETTLE_S
        problems: list[str] = []
        while time.monotonic() < deadline:
            done = [
                line
                for line in self.lines[after:]
                if line.get("event") == "reconcile" and line.get("result") == "in-sync"
            ]
            if done:
                break
            time.sleep(0.2)
        else:
            problems.append(f"watch never reported in-sync within {_WATCH_SETTLE_S} s")
        stop_process(self.process)
        self._reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        errors = [line for line in self.lines if line.get("result") == "error"]
        problems += [f"watch reconcile failed: {line.get('message')}" for line in errors]
        if any("Traceback" in str(line.get("message", "")) for line in self.lines):
            problems.append("watch logged a traceback")
        return problems


def _start_runs(
    argv: list[str], env: dict[str, str], spec: Round, rng: random.Random
) -> list[subprocess.Popen[bytes]]:
    runs = []
    # Staggered: the first two together (more than two runs), each later one 0.2-2 s
    # after the previous: it plans while the first ones create and settle.
    together = 2 if spec.runs > 2 else 1
    for index in range(spec.runs):
        if index >= together and spec.stagger:
            time.sleep(rng.uniform(0.2, 2.0))
        runs.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    return runs


def _by_name(sessions: list[dict[str, Any]]) -> dict[str, list[RemoteSession]]:
    names: dict[str, list[RemoteSession]] = {}
    for item in sessions:
        remote = RemoteSession.from_api(item)
        for marker in remote.markers():
            if marker.project == PROJECT:
                names.setdefault(marker.name, []).append(remote)
    return names


def _archived_ids(report: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for result in [*report.get("results", ()), *report.get("duplicates", ())]:
        if result["kind"] == "archive" and result["outcome"] == "succeeded":
            yield result["name"], result["sessionId"]


def _check(
    finished: list[tuple[int, dict[str, Any], str]], sessions: list[dict[str, Any]]
) -> tuple[int, list[str]]:
    """Names left with no active session, and every broken promise, in words."""
    problems: list[str] = []
    names = _by_name(sessions)
    survivors: dict[str, str] = {}
    lost = 0
    for i in range(N):
        name = f"s{i:03d}"
        every = names.get(name, [])
        active = [s for s in every if not s.archived_like]
        if not active:
            lost += 1
            problems.append(f"{name}: no active session")
            continue
        if len(active) > 1:
            problems.append(f"{name}: {len(active)} active sessions")
        keeper = min(every, key=keep_order)
        survivors[name] = active[0].session_id
        if keeper.session_id not in {s.session_id for s in active}:
            problems.append(
                f"{name}: the keeper {keeper.session_id} was archived; "
                f"{active[0].session_id} survives"
            )
    for number, (code, report, err) in enumerate(finished, 1):
        if code != 0:
            problems.append(f"run {number} exited {code}: {err[-500:]}")
        if "Traceback" in err:
            problems.append(f"run {number} printed a traceback")
        for name, sid in _archived_ids(report):
            if survivors.get(name) == sid:
                problems.append(f"run {number} archived the kept {name} {sid}")
        for duplicate in report.get("duplicates", ()):
            kept = _KEPT.search(duplicate.get("reason", ""))
            name = duplicate["name"]
            if kept and name in survivors and kept.group(1) != survivors[name]:
                problems.append(
                    f"run {number} kept {kept.group(1)} of {name}; {survivors[name]} survives"
                )
    return lost, problems


def _play(tmp_path: Path, spec: Round, seed: int) -> tuple[int, int, list[str]]:
    """Play one round: names lost, sessions made, problems."""
    rng = random.Random(seed)
    manifests = _write_manifests(tmp_path)
    latency = ["--latency-ms", str(spec.latency_ms)] if spec.latency_ms else []
    with start_hub(tmp_path, extra_args=latency) as hub:
        cli = [sys.executable, "-m", "reconciler", "--api-url", hub.url]
        env = _env(hub.token)
        watch = None
        if spec.watch:
            watch = _Watch(
                [*cli, "watch", str(manifests), "--self-heal", "--interval", "1"]
                + ["--log-format", "json"],
                env,
            )
        apply = ["apply", str(manifests), "--yes", "--parallelism", "4", "--format", "json"]
        runs = _start_runs([*cli, *apply], env, spec, rng)
        finished = []
        for run in runs:
            out, err = run.communicate(timeout=_RUN_TIMEOUT_S)
            report = json.loads(out) if out.strip() else {}
            finished.append((run.returncode, report, err.decode(errors="replace")))
        watch_problems = watch.stop_once_in_sync(len(watch.lines)) if watch else []
        sessions = listed_items(hub)
        lost, problems = _check(finished, sessions)
        plan = subprocess.run(
            [*cli, "plan", str(manifests), "--detailed-exitcode"],
            env=env,
            capture_output=True,
            timeout=_RUN_TIMEOUT_S,
        )
        if plan.returncode != 0:
            problems.append(f"the next plan exited {plan.returncode}, not 0 (clean)")
    return lost, len(sessions), problems + watch_problems


def _stress(tmp_path: Path, rounds: list[Round]) -> None:
    summary: list[str] = []
    failed: list[str] = []
    lost_total = 0
    for number, spec in enumerate(rounds):
        started = time.monotonic()
        lost, made, problems = _play(tmp_path / f"round{number}", spec, seed=number)
        lost_total += lost
        elapsed = time.monotonic() - started
        summary.append(
            f"round {number} ({spec}): {made} sessions made, {lost} names lost, "
            f"{len(problems)} problems, {elapsed:.1f} s"
        )
        failed += [f"round {number} ({spec}): {p}" for p in problems]
    sys.stderr.write("\n".join(summary) + f"\n{lost_total} of {N * len(rounds)} names lost\n")
    assert not failed, "\n".join(failed[:40])


def test_concurrent_applies_with_and_without_latency_and_watch_lose_nothing(
    tmp_path: Path,
) -> None:
    # Cheap: a third run planning while two others create (under latency), and the same
    # with the watcher beside; before one rule kept the session, each lost names.
    _stress(tmp_path, [Round(3, True, 40, False), Round(3, True, 0, True)])


@pytest.mark.slow
def test_twenty_rounds_of_concurrent_applies_lose_nothing(tmp_path: Path) -> None:
    _stress(tmp_path, ALL_ROUNDS[:20])
