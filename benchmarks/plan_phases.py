"""Where a `reconciler plan` process spends its CPU, phase by phase.

    python benchmarks/plan_phases.py [--runs 3] -- PLAN ARGUMENTS...
    python benchmarks/plan_phases.py [--runs 3] --naive -- URL PATH

Runs ``reconciler PLAN ARGUMENTS`` (``--api-url URL plan --detailed-exitcode DIR``, say)
``--runs`` times, each in a fresh interpreter, and prints the median CPU seconds
(``time.process_time``) of each phase: the imports a plan needs, loading and checking
the manifests, listing the hub (the pages and their conversion), the ownership index,
choosing the sessions that need their details, planning, and the whole process
(``wait4``, so interpreter start-up and exit are in it). The profile that the naive
comparison (``bench_plan_naive.py``) is explained by in ``docs/benchmarks.md``.
``--naive`` times the same steps of ``naive_plan.py URL PATH`` instead (its imports,
reading the manifests, listing), with ``AGENTUITY_SDK_KEY`` and ``AGENTUITY_ORG_ID``
from the environment as the script takes them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _report import LoadWatch

# Run in the child: time each phase by wrapping the functions the plan command calls.
CHILD = """
import json, sys, time
clock = time.process_time
started = clock()
# As the command line does before httpx is first imported (reconciler.cli.main): else
# httpx's own command line (rich, pygments) would be in the imports' figure.
sys.modules.setdefault("httpx._main", None)
import reconciler.pipeline as pipeline
import reconciler.planner as planner
from reconciler.client.core import CoderClient
phases = {"imports": clock() - started}

def timed(owner, name, phase, is_async=False):
    inner = getattr(owner, name)
    if is_async:
        async def wrapper(*args, **kwargs):
            start = clock()
            try:
                return await inner(*args, **kwargs)
            finally:
                phases[phase] = phases.get(phase, 0.0) + clock() - start
    else:
        def wrapper(*args, **kwargs):
            start = clock()
            try:
                return inner(*args, **kwargs)
            finally:
                phases[phase] = phases.get(phase, 0.0) + clock() - start
    setattr(owner, name, wrapper)

timed(pipeline, "load_checked", "load and check")
timed(CoderClient, "list_all_converted", "list and convert", is_async=True)
timed(planner, "ownership", "ownership index")
timed(planner, "needs_detail", "needs detail")
timed(planner, "plan", "plan")
import atexit
from reconciler.cli.main import main
# Printed on the way out, so the process ends as `reconciler` does (``main``).
atexit.register(lambda: print("PHASES " + json.dumps(phases), file=sys.stderr, flush=True))
main(sys.argv[1:])
"""


# The naive script's steps, timed the same way (``naive_plan.py``'s own functions).
NAIVE_CHILD = """
import json, os, sys, time
clock = time.process_time
started = clock()
sys.path.insert(0, sys.argv[1])
from naive_plan import declared, listed  # first: it imports httpx as the tool does
import httpx
phases = {"imports": clock() - started}
start = clock()
declared([sys.argv[3]])
phases["read the manifests"] = clock() - start
headers = {
    "Authorization": "Bearer " + os.environ["AGENTUITY_SDK_KEY"],
    "x-agentuity-orgid": os.environ["AGENTUITY_ORG_ID"],
}
start = clock()
with httpx.Client(base_url=sys.argv[2], headers=headers) as api:
    listed(api, int(sys.argv[4]))
phases["list"] = clock() - start
print("PHASES " + json.dumps(phases), file=sys.stderr)
"""


def _once(arguments: list[str], child: str = CHILD) -> dict[str, float]:
    process = subprocess.Popen(
        [sys.executable, "-c", child, *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    errors = process.stderr.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 2):
        raise SystemExit(f"error: the plan failed: {errors}")
    line = next(ln for ln in errors.splitlines() if ln.startswith("PHASES "))
    phases: dict[str, float] = json.loads(line[len("PHASES ") :])
    phases["whole process"] = usage.ru_utime + usage.ru_stime
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--naive", action="store_true", help="time naive_plan.py URL PATH")
    parser.add_argument("plan", nargs=argparse.REMAINDER, help="-- then the CLI arguments")
    args = parser.parse_args(argv)
    arguments = args.plan[1:] if args.plan[:1] == ["--"] else args.plan
    load = LoadWatch()
    if args.naive:
        from bench_plan_naive import PAGE_SIZE

        here = str(Path(__file__).resolve().parent)
        naive = [here, *arguments, str(PAGE_SIZE)]
        runs = [_once(naive, NAIVE_CHILD) for _ in range(args.runs)]
    else:
        runs = [_once(arguments) for _ in range(args.runs)]
    load.end()
    for phase in runs[0]:
        values = [run.get(phase, 0.0) for run in runs]
        print(
            f"{phase:20s} median {statistics.median(values):.3f} s "
            f"(range {min(values):.3f}-{max(values):.3f} of {len(values)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
