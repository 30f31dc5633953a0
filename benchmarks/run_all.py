"""Run every benchmark, each in its own process, and print a summary table.

    python benchmarks/run_all.py            # full sizes (a few minutes)
    python benchmarks/run_all.py --small    # CI smoke sizes (seconds); never pass/fail on time
    python benchmarks/run_all.py --scale    # full sizes and the 100,000-session run (an hour)

Exit status is non-zero only when a benchmark fails to run, never for a missed target.
A target is "met" only by a benchmark's median, and only when the load average at its
start and end did not exceed the cores: otherwise "noisy" (``_report.py``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _report import exit_on_sigterm, verdict

HERE = Path(__file__).resolve().parent

# (script, arguments at full size, arguments at smoke size)
BENCHMARKS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("bench_plan_requests.py", (), ("--small",)),
    ("bench_plan_latency.py", (), ("--small",)),
    ("bench_apply.py", (), ("--small",)),
    ("bench_plan_cpu.py", (), ("--small",)),
    ("bench_load.py", (), ("--sessions", "50", "--files", "5", "--repeat", "1")),
    ("bench_plan_naive.py", (), ("--small",)),
    ("bench_plan_scale.py", (), ("--small",)),
    ("bench_policy_cpu.py", (), ("--small",)),
    ("bench_watch_steady.py", (), ("--small",)),
)
# Run at full size only with --scale (their setup alone takes minutes).
OPT_IN = frozenset({"bench_plan_scale.py"})


def _run(script: str, arguments: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Run one benchmark, its output captured. Stopped (SIGTERM, Ctrl-C, the time
    limit), this process stops it with SIGTERM, so it stops its hub on the way out."""
    argv = [sys.executable, str(HERE / script), *arguments]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = child.communicate(timeout=7200)
    except BaseException:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise
    return subprocess.CompletedProcess(argv, child.returncode, stdout, stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="CI smoke sizes")
    parser.add_argument("--scale", action="store_true", help="also the opt-in 100,000 run")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this script (repeatable), e.g. bench_apply.py",
    )
    args = parser.parse_args(argv)
    exit_on_sigterm()
    failures = 0
    rows: list[tuple[str, str, str, str, str]] = []
    for script, full, small in BENCHMARKS:
        if args.only and script not in args.only:
            continue
        if script in OPT_IN and not (args.small or args.scale or script in args.only):
            continue
        print(f"== {script}", flush=True)
        start = time.perf_counter()
        done = _run(script, small if args.small else full)
        print(done.stdout, end="", flush=True)
        if done.returncode != 0:
            failures += 1
            sys.stderr.write(done.stderr)
            rows.append((script, "FAILED", "", "", f"exit {done.returncode}"))
            continue
        result = next(
            (
                json.loads(line[7:])
                for line in done.stdout.splitlines()
                if line.startswith("RESULT ")
            ),
            None,
        )
        took = f"{time.perf_counter() - start:.1f} s"
        if result is None:
            ratio = next((ln for ln in done.stdout.splitlines() if ln.startswith("ratio")), "")
            rows.append((script, ratio.split()[1] if ratio else "?", "", "", took))
        else:
            loads = (result["load_start"], result["load_end"])
            said = verdict(bool(result["met"]), max(loads), result["cores"])
            target = f"{result['target']} ({said})"
            load = f"{loads[0]:.2f}-{loads[1]:.2f} ({result['cores']} cores)"
            rows.append((script, f"{result['ratio']:.2f}", target, load, took))
    print(
        "\n| benchmark | ratio (median) | target | load at start-end | took |"
        "\n| --- | --- | --- | --- | --- |"
    )
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
