"""CPU of a steady-state `watch` reconcile against a cold `reconciler plan`, served hub.

    python benchmarks/bench_watch_steady.py [--sessions 10000] [--reconciles 20]
                                            [--repeat 3] [--small]

``--sessions`` managed sessions on ``reconciler hub serve`` (no added latency), all as
declared, so every plan has no changes and no manifest changes between reconciles.
Each repeat runs, in fresh processes one after the other:

- ``reconciler plan --detailed-exitcode``: its CPU seconds, user + system from
  ``wait4`` (the ``git rev-parse`` it runs included; the hub's work is another
  process's and not counted);
- ``reconciler watch --interval 1s`` on the same manifests and hub, for
  ``--reconciles`` reconciles after the first: the watch process's own CPU, read from
  ``/proc/PID/stat`` (user + system, and the children it waited for: the ``git
  rev-parse`` of each reconcile) each time its log says a reconcile ended, while it
  sleeps until the next. A reconcile's CPU is the difference between two readings: all
  that process spent from the end of one reconcile to the end of the next (logging,
  metrics and the sleep included). The first reconcile (every file read) is left out.

Figures: the plan's CPU; the watch's CPU per reconcile (the mean of the reconciles of a
repeat, and their median and range); their ratio per repeat, the median and range of
the ratios; the watch's resident set after its last reconcile (what it holds between
reconciles, the manifests kept included). Target: a median of at most 0.4x the cold
plan.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    LoadWatch,
    Spread,
    emit_result,
    measured_child,
    seeded_hub,
)

TARGET = 0.4
_RECONCILE_LINE = re.compile(r"\breconcile (\d+): (.*)")
_TICKS = os.sysconf("SC_CLK_TCK")
_WATCH_TIMEOUT_S = 1800.0


def process_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` so far: user and system, its own and its waited-for
    children's (``/proc/PID/stat`` fields 14-17)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / _TICKS


def resident_mb(pid: int) -> float:
    """The resident set of ``pid`` now, in MiB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def watch_cpu(argv: list[str], env: dict[str, str], reconciles: int) -> tuple[list[float], float]:
    """The CPU of each of ``reconciles`` reconciles of a ``watch`` after its first, and
    its resident set after the last."""
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    readings: list[float] = []
    resident = float("nan")
    deadline = time.monotonic() + _WATCH_TIMEOUT_S
    try:
        for line in process.stderr:
            found = _RECONCILE_LINE.search(line)
            if found is None:
                continue
            readings.append(process_cpu(process.pid))
            if not found.group(2).startswith("in sync"):
                raise SystemExit(f"error: a reconcile that is not in sync: {line.strip()}")
            if len(readings) > reconciles or time.monotonic() > deadline:
                resident = resident_mb(process.pid)
                break
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if len(readings) <= reconciles:
        raise SystemExit(f"error: watch ended after {len(readings)} reconciles")
    return [b - a for a, b in zip(readings, readings[1:], strict=False)], resident


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--per-file", type=int, default=500)
    parser.add_argument("--reconciles", type=int, default=20, help="after the first")
    parser.add_argument("--repeat", type=int, default=3, help="a plan, then a watch")
    parser.add_argument("--small", action="store_true", help="CI smoke size: 50 sessions")
    args = parser.parse_args(argv)
    if args.small:
        args.sessions, args.per_file, args.reconciles, args.repeat = 50, 10, 3, 1
    load = LoadWatch()
    plans: list[float] = []
    per_reconcile: list[list[float]] = []
    residents: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with seeded_hub(work, args.sessions, per_file=args.per_file) as (hub, manifests, env):
            common = ["-m", "reconciler", "--api-url", hub.url]
            plan_argv = [*common, "plan", "--detailed-exitcode", str(manifests)]
            watch_argv = [sys.executable, *common, "watch", "--interval", "1s", str(manifests)]
            for _ in range(args.repeat):
                cpu, _peak, code, _out = measured_child(plan_argv, env)
                if code != 0:
                    raise SystemExit("error: the plan has changes: the hub was not seeded")
                plans.append(cpu)
                cpus, resident = watch_cpu(watch_argv, env, args.reconciles)
                per_reconcile.append(cpus)
                residents.append(resident)
    means = [statistics.fmean(cpus) for cpus in per_reconcile]
    ratios = Spread.of([m / p for m, p in zip(means, plans, strict=True)])
    plan, mean = Spread.of(plans), Spread.of(means)
    each = Spread.of([cpu for cpus in per_reconcile for cpu in cpus])
    met = ratios.median <= TARGET
    load.end()
    print(f"sessions:                  {args.sessions}, all managed, in {args.per_file} a file")
    print(f"cold plan CPU:             {plan.text(' s', 3)}")
    print(f"watch CPU per reconcile:   {mean.text(' s', 3)} (mean of {args.reconciles} a repeat)")
    print(f"each reconcile:            {each.text(' s', 3)}")
    print(f"watch resident set at end: {Spread.of(residents).text(' MiB', 1)}")
    print(
        f"ratio: {ratios.median:.3f}x the cold plan's CPU per steady reconcile "
        f"({ratios.text('x', 3)} repeats; target <= {TARGET:g}x, {load.verdict(met)})"
    )
    emit_result(
        "watch_steady",
        {
            "sessions": args.sessions,
            "reconciles": args.reconciles,
            "plan_cpu_s": plan.median,
            "reconcile_cpu_s": mean.median,
            "watch_rss_mb": statistics.median(residents),
            "ratio": ratios.median,
            "ratio_low": ratios.low,
            "ratio_high": ratios.high,
            "target": f"<= {TARGET:g}x the cold plan's CPU",
            "met": met,
        },
        load,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
