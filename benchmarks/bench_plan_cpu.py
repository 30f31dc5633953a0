"""CPU and memory of a no-change plan of many sessions against libyaml's bare parse.

    python benchmarks/bench_plan_cpu.py [--sessions 10000] [--repeat 3] [--profile] [--small]

``--sessions`` manifests are planned against the embedded in-process hub
(``--api-url local``) that already holds every one of them, so the plan has no
changes. Each plan runs in a fresh subprocess, so its peak RSS is the plan's own.
Figures: CPU seconds (``time.process_time``) of the whole plan (loading, validating,
listing through the in-process hub, which serialises every session, and planning)
against libyaml's bare parse of the same files, timed in the same subprocess right after
the plan (best of ``--repeat`` each), and the peak RSS.
Targets: at most 3x the bare parse; at most 300 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    bare_parse,
    emit_result,
    generate_manifests,
    options_for,
    peak_rss_mb,
    seed_database,
)

from reconciler import asyncrun, gctune
from reconciler.connect import resolve_endpoint
from reconciler.pipeline import build_plan

CPU_TARGET = 3.0
RSS_TARGET_MB = 300.0


def child(manifests: Path, db: Path, profile: bool, *, gc_tuned: bool = True) -> int:
    """One plan in this fresh process, under the GC thresholds `plan` sets (unless
    ``gc_tuned`` is off): print its CPU, wall time, RSS and action count."""
    opts = options_for(None, local_db=db)
    endpoint = resolve_endpoint(opts)
    tuning = gctune.bulk_allocation() if gc_tuned else contextlib.nullcontext()
    profiler = cProfile.Profile() if profile else None
    start, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    with tuning:
        context = asyncrun.run(build_plan(opts, [str(manifests)], endpoint=endpoint))
    if profiler:
        profiler.disable()
    plan_cpu, wall, rss = time.process_time() - cpu, time.perf_counter() - start, peak_rss_mb()
    # The lower bound in the same process, right after: on a shared machine the CPU
    # speed drifts between processes and minutes, and the ratio should not.
    paths = sorted(manifests.glob("*.yaml"))
    cpu = time.process_time()
    documents = bare_parse(paths)
    parse_cpu = time.process_time() - cpu
    if documents != len(context.desired) + 1:  # the sessions and the Project
        raise SystemExit(f"error: parsed {documents} documents, planned {len(context.desired)}")
    figures = {
        "cpu_s": plan_cpu,
        "wall_s": wall,
        "rss_mb": rss,
        "parse_cpu_s": parse_cpu,
        "actions": len(context.plan.actions),
        "managed": context.plan.managed_count,
    }
    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    print(json.dumps(figures))
    return 0


def run_plans(
    manifests: Path, db: Path, repeat: int, *, profile: bool = False, gc_untuned: bool = False
) -> list[dict[str, Any]]:
    """``repeat`` plans, each in a fresh process: the figures each printed."""
    runs = []
    for _ in range(repeat):
        argv = [sys.executable, __file__, "--child", str(manifests), str(db)]
        argv += ["--profile"] if profile else []
        argv += ["--gc-untuned"] if gc_untuned else []
        done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
        if profile or done.returncode != 0:
            sys.stderr.write(done.stderr)
        if done.returncode != 0:
            raise SystemExit(f"error: the plan exited {done.returncode}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--per-file", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile the plan (stderr)")
    parser.add_argument(
        "--compare-gc",
        action="store_true",
        help="also plan with CPython's default GC thresholds (reconciler.gctune off)",
    )
    parser.add_argument("--gc-untuned", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--small", action="store_true", help="CI smoke size: 50 sessions")
    parser.add_argument("--child", nargs=2, metavar=("MANIFESTS", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(
            Path(args.child[0]), Path(args.child[1]), args.profile, gc_tuned=not args.gc_untuned
        )
    if args.small:
        args.sessions, args.per_file, args.repeat = 50, 10, 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        manifests = work / "manifests"
        db = work / "hub.sqlite3"
        paths = generate_manifests(manifests, args.sessions, per_file=args.per_file)
        # The embedded hub's token acts in `org_local` unless an org is named.
        seed_database(db, manifests=manifests, unmanaged=0, org="org_local", user="user_local")
        assert bare_parse(paths) == args.sessions + 1
        runs = run_plans(manifests, db, args.repeat, profile=args.profile)
        if args.compare_gc:
            untuned = run_plans(manifests, db, args.repeat, gc_untuned=True)
    if any(r["actions"] or r["managed"] != args.sessions for r in runs):
        print(f"error: expected a no-change plan of {args.sessions}: {runs}", file=sys.stderr)
        return 1
    parse = min(r["parse_cpu_s"] for r in runs)
    plan_cpu = min(r["cpu_s"] for r in runs)
    wall = min(r["wall_s"] for r in runs)
    rss = max(r["rss_mb"] for r in runs)
    ratio = plan_cpu / parse
    if args.compare_gc:
        untuned_cpu = min(r["cpu_s"] for r in untuned)
        print(f"plan with default GC (CPU):  {untuned_cpu:8.2f} s   (gctune saves "
              f"{1 - plan_cpu / untuned_cpu:.0%})")  # fmt: skip
    print(f"sessions:                    {args.sessions} in {len(paths)} files, all managed")
    print(f"libyaml bare parse (CPU):    {parse:8.2f} s")
    print(f"whole no-change plan (CPU):  {plan_cpu:8.2f} s   (wall {wall:.2f} s)")
    print(f"peak RSS of the plan:        {rss:8.1f} MiB (target <= {RSS_TARGET_MB:g})")
    print(
        f"ratio: {ratio:.2f}x the bare parse (target <= {CPU_TARGET:g}x, "
        f"{'met' if ratio <= CPU_TARGET else 'MISSED'})"
    )
    emit_result(
        "plan_cpu",
        {
            "sessions": args.sessions,
            "parse_cpu_s": parse,
            "plan_cpu_s": plan_cpu,
            "plan_wall_s": wall,
            "rss_mb": rss,
            "ratio": ratio,
            "target": f"<= {CPU_TARGET:g}x, <= {RSS_TARGET_MB:g} MB",
            "met": ratio <= CPU_TARGET and rss <= RSS_TARGET_MB,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
