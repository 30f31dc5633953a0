"""The benchmarks run at a small size: they complete and print their ratios, the load
average at their start and end, and the median and range of their repeats; a target is
"met" only on a machine no busier than its cores ("noisy" otherwise).

Timing is never asserted here: CI machines are noisy. The load is injected
(``BENCH_LOAD_AVERAGE``), so the verdicts do not depend on this machine's. The figures
that matter come from ``python benchmarks/run_all.py`` on a quiet machine (see
benchmarks/README.md).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hubproc import HubProcess, Tenant

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
LOAD_LINE = re.compile(
    r"^load average at (start|end): [\d.]+ [\d.]+ [\d.]+ \(1, 5, 15 min; \d+ cores\)"
)


def _run_all(load: float, *args: str) -> str:
    """``run_all.py ARGS`` with the load average reading ``load`` (injected)."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run_all.py"), *args],
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
        env={**os.environ, "BENCH_LOAD_AVERAGE": f"{load:g}"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def report() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import _report

        yield _report
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.mark.slow
@pytest.mark.subprocess
def test_every_benchmark_runs_at_smoke_size() -> None:
    out = _run_all(99.0, "--small")  # a machine far busier than its cores
    for script in (
        "bench_plan_requests.py",
        "bench_plan_latency.py",
        "bench_apply.py",
        "bench_plan_cpu.py",
        "bench_load.py",
        "bench_plan_naive.py",
        "bench_plan_scale.py",
        "bench_policy_cpu.py",
        "bench_watch_steady.py",
    ):
        assert f"== {script}" in out
        # Its summary row carries the ratio it printed ("?" when it printed none). A
        # latency cost measured at smoke size may come out below zero (noise).
        assert re.search(rf"^\| {re.escape(script)} \| -?\d+\.\d+", out, re.M), script
    # One ratio line (or more) per benchmark, and the machine-readable results.
    assert sum(line.startswith("ratio") for line in out.splitlines()) >= 10
    assert sum(line.startswith("RESULT {") for line in out.splitlines()) >= 6
    # The naive peer and the tool reach the same verdict; the scale run reports all three.
    assert '"same_verdict": true' in out
    assert '"benchmark": "plan_scale"' in out and "CPU per session of 20" in out
    assert '"benchmark": "policy_cpu"' in out and "ratio: policy work / plan without" in out
    assert '"benchmark": "watch_steady"' in out and "x the cold plan's CPU per steady" in out
    # Each says the load at its start and end, and the median and range of its repeats.
    sections = re.split(r"^== ", out, flags=re.M)[1:]
    assert len(sections) == 9
    for section in sections:
        loads = [m.group(1) for line in section.splitlines() if (m := LOAD_LINE.match(line))]
        assert loads == ["start", "end"], section[:200]
    assert sum(bool(re.search(r"median -?[\d.]+[^,\n]*, range -?[\d.]+", s)) for s in sections) >= 8
    # Busier than its cores: no target is "met", not in a ratio line nor in the table;
    # the request count is within its target, so it is "noisy".
    said = [line for line in out.splitlines() if not line.startswith("RESULT ")]
    assert [line for line in said if re.search(r"\bmet\b", line)] == []
    assert re.search(r"^\| bench_plan_requests\.py \| .*\(noisy\)", out, re.M)
    assert "ratio: 1.00x the pages (target: at most 7 requests, noisy)" in out


@pytest.mark.subprocess
def test_a_quiet_machine_may_meet_a_target() -> None:
    out = _run_all(0.0, "--small", "--only", "bench_plan_requests.py")
    assert "load average at start: 0.00 0.00 0.00" in out
    assert re.search(r"^\| bench_plan_requests\.py \| 1\.00 \| .*\(met\) \| 0\.00-0\.00", out, re.M)
    assert "noisy" not in out


def test_met_only_within_the_target_and_the_cores(report: ModuleType) -> None:
    assert report.verdict(True, 2.0, 2) == "met"
    assert report.verdict(True, 2.01, 2) == "noisy"
    assert report.verdict(False, 0.0, 2) == "MISSED"
    assert report.verdict(False, 9.0, 2) == "MISSED"


def test_the_spread_is_the_median_and_range(report: ModuleType) -> None:
    spread = report.Spread.of([3.0, 1.0, 10.0, 2.0, 4.0])
    assert (spread.median, spread.low, spread.high, spread.count) == (3.0, 1.0, 10.0, 5)
    assert spread.text("x") == "median 3.00x, range 1.00-10.00x of 5"


def test_every_benchmark_script_is_in_run_all() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCHMARKS))
    listed = {script for script, _full, _small in run_all.BENCHMARKS}
    assert listed == {p.name for p in BENCHMARKS.glob("bench_*.py")}


@pytest.mark.subprocess
def test_plan_phases_names_each_phase_of_a_plan(
    tmp_path: Path, served_hub: HubProcess, tenant: Tenant
) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "m.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: phases\n---\n"
        "apiVersion: reconciler/v1\nkind: Session\nname: one\nspec: {task: t}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "plan_phases.py"), "--runs", "2", "--"]
        + ["--api-url", served_hub.url, "plan", "--detailed-exitcode", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "AGENTUITY_SDK_KEY": tenant.token},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    phase = r"^(\S.*?) +median ([\d.]+) s \(range [\d.]+-[\d.]+ of 2\)$"
    phases = re.findall(phase, done.stdout, re.M)
    assert [name for name, _ in phases] == [
        "imports",
        "load and check",
        "list and convert",
        "ownership index",
        "needs detail",
        "plan",
        "whole process",
    ]
    seconds = dict(phases)
    assert 0 < float(seconds["load and check"]) < float(seconds["whole process"])
    # The naive script's same steps, for the table beside them.
    env = {**os.environ, "AGENTUITY_SDK_KEY": tenant.token, "AGENTUITY_ORG_ID": tenant.org_id}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "plan_phases.py"), "--runs", "2", "--naive", "--"]
        + [served_hub.url, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    naive = [name for name, _ in re.findall(phase, done.stdout, re.M)]
    assert naive == ["imports", "read the manifests", "list", "whole process"]


@pytest.mark.subprocess
def test_listing_clients_lists_every_session_each_way() -> None:
    # Each way's child checks it listed every session (else the script stops).
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "listing_clients.py"), "--sessions", "250"]
        + ["--runs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ways = re.findall(r"^(sync|threads|async) +CPU median [\d.]+ s", done.stdout, re.M)
    assert ways == ["sync", "threads", "async"]
    assert "250 (3 pages), 6 in flight" in done.stdout


@pytest.mark.subprocess
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind (cachegrind)")
def test_phase_counts_gives_each_phase_of_the_plan_and_the_script() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "phase_counts.py"), "--sessions", "40"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    number = r" +([\d,.]+) / +([\d,.]+) +[\d.]+x"
    rows = re.findall(rf"^(\S.*?){number}{number}{number}$", done.stdout, re.M)
    assert [row[0] for row in rows] == [
        "start-up and imports",
        "reading the manifests",
        "listing the hub",
        "planning, output, exit",
        "whole process",
    ], done.stdout
    counts = {row[0]: [float(v.replace(",", "")) for v in row[1:]] for row in rows}
    # Each stop took effect where it is: every phase did some work, in both processes
    # (a stop missed would leave a phase at zero or below).
    for column in range(6):
        assert all(counts[title][column] > 0 for title in list(counts)[:4]), done.stdout


def _children(pid: int) -> list[tuple[int, str]]:
    """The processes whose parent is ``pid``: (pid, command line), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # ended meanwhile
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.append((int(entry.name), cmdline))
    return found


@pytest.mark.subprocess
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("runner", ["bench_plan_requests.py", "run_all.py"])
def test_a_benchmark_cancelled_with_sigterm_stops_its_hub(runner: str) -> None:
    # A CI runner cancels a job with SIGTERM: a benchmark must not leave its
    # `reconciler hub serve` running (SIGTERM skipped its `with` blocks), and run_all
    # must not leave the benchmark it runs going on (it died alone). run_all runs a
    # full-size bench_apply.py (10 s or more): it is stopped as soon as its hub is up.
    if runner == "run_all.py":
        argv = [sys.executable, str(BENCHMARKS / runner), "--only", "bench_apply.py"]
    else:
        argv = [sys.executable, str(BENCHMARKS / runner), "--small"]
    top = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bench, hub = top.pid, None
    try:
        deadline = time.monotonic() + 60
        while hub is None and time.monotonic() < deadline and top.poll() is None:
            if runner == "run_all.py":  # the benchmark is run_all's child
                bench = next((pid for pid, _ in _children(top.pid)), top.pid)
            hub = next((p for p, cmd in _children(bench) if " hub serve " in cmd), None)
            time.sleep(0.05)
        assert hub is not None, "the benchmark never started its hub"
        top.send_signal(signal.SIGTERM)
        top.wait(timeout=60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
            Path(f"/proc/{pid}").exists() for pid in (bench, hub)
        ):
            time.sleep(0.05)
        assert not Path(f"/proc/{bench}").exists(), "the benchmark outlived run_all"
        assert not Path(f"/proc/{hub}").exists(), "the hub outlived its benchmark"
    finally:
        if top.poll() is None:
            top.kill()
        for pid in (bench, hub):
            if pid is not None and Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
