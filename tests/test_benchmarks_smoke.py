"""The benchmarks run at a small size: they complete and print their ratios.

Timing is never asserted here: CI machines are noisy. The figures that matter come
from ``python benchmarks/run_all.py`` on a quiet machine (see benchmarks/README.md).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.slow
@pytest.mark.subprocess
def test_every_benchmark_runs_at_smoke_size() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run_all.py"), "--small"],
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for script in (
        "bench_plan_requests.py",
        "bench_plan_latency.py",
        "bench_apply.py",
        "bench_plan_cpu.py",
        "bench_load.py",
        "bench_plan_naive.py",
        "bench_plan_scale.py",
        "bench_policy_cpu.py",
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


def test_every_benchmark_script_is_in_run_all() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCHMARKS))
    listed = {script for script, _full, _small in run_all.BENCHMARKS}
    assert listed == {p.name for p in BENCHMARKS.glob("bench_*.py")}
