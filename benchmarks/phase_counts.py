"""Instructions, cache misses and mispredicted branches of a plan and the naive script,
phase by phase: a profile in counts that the machine's load does not move.

    python benchmarks/phase_counts.py [--sessions 10000] [--shape small|full]

No benchmark (it has no target): the account behind ``docs/benchmarks.md`` of where
``reconciler plan`` does more work than ``naive_plan.py``. Seeds a served hub as
``bench_plan_naive.py`` does (``--sessions`` managed sessions, all as declared), then
runs each process under ``valgrind --tool=cachegrind --cache-sim=yes --branch-sim=yes``
(simulated caches: first level 32 KiB, 8-way) with ``PYTHONHASHSEED=0``, four times:
ended (``os._exit``) where reading the manifests starts (start-up and imports), where
it ends, where the listing ends (the plan's RemoteSessions made), and run whole (the
planning, the output and the interpreter's exit). Prints each phase's counts as the
difference between two stops, for the plan and the script, and their ratio.

The phases do not line up exactly: the script makes its httpx client before listing,
the plan after reading, so both are in the listing. Needs valgrind; takes a few
minutes at 10,000 sessions (valgrind runs a process some 50 times slower).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import SHAPES, seeded_hub
from bench_plan_naive import PAGE_SIZE

HERE = Path(__file__).resolve().parent
STOPS = ("start", "read", "listed", "whole")
PHASES = (
    ("start-up and imports", None, "start"),
    ("reading the manifests", "start", "read"),
    ("listing the hub", "read", "listed"),
    ("planning, output, exit", "listed", "whole"),
    ("whole process", None, "whole"),
)
COUNTS = (("instructions", "I   refs"), ("D1 misses", "D1  misses"), ("mispredicts", "Mispredicts"))

# How a child ends at a stop: at once (``leave``), or once ``inner`` returns.
_STOPPERS = """
import os

def leave(*args, **kwargs):
    os._exit(0)

def then_leave(inner):
    def wrapper(*args, **kwargs):
        inner(*args, **kwargs)
        os._exit(0)
    return wrapper
"""

# The plan, ended at a stop: its functions wrapped as plan_phases.py does.
TOOL_CHILD = (
    _STOPPERS
    + """
import sys
stop = sys.argv[1]
sys.argv[1:2] = []
# As the command line does before httpx is first imported (reconciler.cli.main).
sys.modules.setdefault("httpx._main", None)
from reconciler import gctune
with gctune.bulk_allocation():  # as the command line imports a command's modules
    import reconciler.pipeline as pipeline
    import reconciler.planner as planner

if stop == "start":
    pipeline.load_checked = leave
elif stop == "read":
    pipeline.load_checked = then_leave(pipeline.load_checked)
elif stop == "listed":
    planner.ownership = leave
from reconciler.cli.main import main
main(sys.argv[1:])
"""
)

# The script, ended at the same stops.
NAIVE_CHILD = (
    _STOPPERS
    + """
import sys
stop = sys.argv[1]
sys.path.insert(0, sys.argv[2])
sys.argv[0:3] = ["naive_plan.py"]
import naive_plan

if stop == "start":
    naive_plan.declared = leave
elif stop == "read":
    naive_plan.declared = then_leave(naive_plan.declared)
elif stop == "listed":
    naive_plan.listed = then_leave(naive_plan.listed)
naive_plan.main()
"""
)


def counted(argv: list[str], env: dict[str, str]) -> dict[str, int]:
    """Run ``argv`` (a Python process) under cachegrind: its counts."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=cachegrind",
                "--cache-sim=yes",
                "--branch-sim=yes",
                f"--cachegrind-out-file={Path(tmp) / 'out'}",
                *argv,
            ],
            env={**env, "PYTHONHASHSEED": "0"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    if done.returncode not in (0, 2):
        raise SystemExit(f"error: {argv[2:4]} failed under valgrind: {done.stderr[-2000:]}")
    counts = {}
    for name, label in COUNTS:
        found = re.search(rf"{label}:\s+([\d,]+)", done.stderr)
        if found is None:
            raise SystemExit(f"error: valgrind printed no {label!r}: {done.stderr[-2000:]}")
        counts[name] = int(found.group(1).replace(",", ""))
    return counts


def _phase(by_stop: dict[str, dict[str, int]], since: str | None, until: str) -> dict[str, int]:
    before = by_stop[since] if since else dict.fromkeys(by_stop[until], 0)
    return {k: by_stop[until][k] - before[k] for k in by_stop[until]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--shape", choices=SHAPES, default="small")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("error: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    with (
        tempfile.TemporaryDirectory() as tmp,
        seeded_hub(Path(tmp), args.sessions, per_file=500, shape=args.shape) as (
            hub,
            manifests,
            env,
        ),
    ):
        tool = ["--api-url", hub.url, "plan", "--detailed-exitcode", str(manifests)]
        naive = [str(HERE), hub.url, str(manifests), "--page-size", str(PAGE_SIZE)]
        children = (("plan", TOOL_CHILD, tool), ("script", NAIVE_CHILD, naive))
        jobs = {
            (who, stop): [sys.executable, "-c", child, stop, *arguments]
            for who, child, arguments in children
            for stop in STOPS
        }
        # Counts do not depend on what else runs: as many at once as there are cores.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            counts = pool.map(lambda argv: counted(argv, env), jobs.values())
            done = dict(zip(jobs, counts, strict=True))
        runs = {who: {stop: done[(who, stop)] for stop in STOPS} for who in ("plan", "script")}
    print(f"sessions: {args.sessions} ({args.shape}), page size {PAGE_SIZE}; millions")
    header = "phase".ljust(26) + "".join(f"{name + ' (plan / script)':>40}" for name, _ in COUNTS)
    print(header)
    for title, since, until in PHASES:
        plan, script = _phase(runs["plan"], since, until), _phase(runs["script"], since, until)
        cells = []
        for name, _ in COUNTS:
            ratio = f"{plan[name] / script[name]:.2f}x" if script[name] > 0 else "-"
            cells.append(f"{plan[name] / 1e6:>12,.1f} / {script[name] / 1e6:>9,.1f} {ratio:>8}")
        print(title.ljust(26) + "".join(f"{c:>40}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
