"""Four first-time `apply --api-url local` at once, on a loaded machine, never trip.

The run lock is taken before the embedded database is opened or created, so of four
applies started together in a folder with no ``.reconciler/`` yet, one creates the
database and every session, and the others, after it, find nothing to do: all exit 0,
no traceback, one session per name. Busy processes load the CPUs meanwhile (bounded:
killed at the end of each round). 20 rounds in the slow tier, 3 in the subprocess tier.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hubproc import child_environ, stop_process

pytestmark = [pytest.mark.subprocess]

RUNS = 4
N = 20
_TIMEOUT_S = 240
_BUSY = "import time\nend = time.monotonic() + 300\nwhile time.monotonic() < end: pass\n"


def _env() -> dict[str, str]:
    env = child_environ()
    return env


def _round(root: Path) -> list[str]:
    """One round in a fresh folder; every broken promise, in words."""
    root.mkdir(parents=True)
    docs = ["apiVersion: reconciler/v1\nkind: Project\nname: first\n"]
    docs += [
        f"apiVersion: reconciler/v1\nkind: Session\nname: s{i:02d}\nspec: {{task: task {i}}}\n"
        for i in range(N)
    ]
    (root / "all.yaml").write_text("---\n".join(docs), encoding="utf-8")
    cli = [sys.executable, "-m", "reconciler", "--api-url", "local"]
    argv = [*cli, "apply", ".", "--yes", "--format", "json"]
    runs = [
        subprocess.Popen(argv, cwd=root, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(RUNS)
    ]
    problems: list[str] = []
    created = []
    for number, run in enumerate(runs, 1):
        out, err = run.communicate(timeout=_TIMEOUT_S)
        text = err.decode(errors="replace")
        if run.returncode != 0 or "Traceback" in text:
            problems.append(f"run {number} exited {run.returncode}: {text[-800:]}")
            continue
        report = json.loads(out) if out.strip() else {}
        created.append(sum(1 for r in report.get("results", ()) if r["kind"] == "create"))
    if not problems and sorted(created) != [0] * (RUNS - 1) + [N]:
        problems.append(f"creates per run {created}, not one run creating all {N}")
    listed = subprocess.run(
        [*cli, "sessions", "list", "--all", "--format", "json"],
        cwd=root,
        env=_env(),
        capture_output=True,
        timeout=_TIMEOUT_S,
    )
    if listed.returncode != 0:
        problems.append(f"listing failed: {listed.stderr.decode()[-500:]}")
    elif (count := len(json.loads(listed.stdout)["sessions"]["websocket"])) != N:
        problems.append(f"{count} sessions, not {N}")
    return problems


def _stress(tmp_path: Path, rounds: int) -> None:
    busy = [
        subprocess.Popen([sys.executable, "-c", _BUSY], stdout=subprocess.DEVNULL)
        for _ in range(os.cpu_count() or 2)
    ]
    failed: list[str] = []
    started = time.monotonic()
    try:
        for number in range(rounds):
            failed += [f"round {number}: {p}" for p in _round(tmp_path / f"round{number}")]
    finally:
        for process in busy:
            stop_process(process)
    sys.stderr.write(
        f"{rounds} rounds of {RUNS} first-time applies: {len(failed)} failures, "
        f"{time.monotonic() - started:.1f} s\n"
    )
    assert not failed, "\n".join(failed[:20])


def test_four_first_time_applies_at_once_under_load(tmp_path: Path) -> None:
    _stress(tmp_path, 3)


@pytest.mark.slow
def test_twenty_rounds_of_four_first_time_applies_under_load(tmp_path: Path) -> None:
    _stress(tmp_path, 20)
