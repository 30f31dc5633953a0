"""Latency cost of applying creates in parallel: waves of requests at full parallelism.

    python benchmarks/bench_apply.py [--creates 500] [--parallelism 16] [--latency-ms 50]
                                     [--repeat 3] [--profile] [--small]

A plan of ``--creates`` new sessions is applied (``apply_plan``, the library call behind
``reconciler apply``) to an empty served hub, once with ``--latency-ms`` added to every
API request and once with none; best of ``--repeat`` runs of each (alternating), each
against a fresh hub. What latency costs is the difference of the two wall times: the
hub's own work and the client's CPU are in both, so a busy machine slows both alike.
Ideal: ``ceil(creates / parallelism) x latency``, every wave of requests costing
exactly one round trip. Target: the latency cost at most 1.3x the ideal. The client's
CPU per create is printed too. The hub is checked after every run: exactly the declared
sessions, no duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import (
    ENVIRON,
    ceil_div,
    emit_result,
    generate_manifests,
    options_for,
    served_hub,
)

from reconciler.applier import apply_plan
from reconciler.connect import open_client, resolve_endpoint
from reconciler.model import Marker
from reconciler.pipeline import build_plan
from reconciler.settings import GlobalOptions

TARGET = 1.3


async def _apply(
    opts: GlobalOptions, manifests: Path, parallelism: int, profiler: cProfile.Profile | None
) -> tuple[float, float, int, int]:
    endpoint = resolve_endpoint(opts)
    context = await build_plan(opts, [str(manifests)], endpoint=endpoint)
    plan = context.plan
    async with open_client(endpoint, org_id=plan.org_id) as client:
        await client.discover()  # connection set up outside the timing
        if profiler:
            profiler.enable()
        start, cpu = time.perf_counter(), time.process_time()
        report = await apply_plan(plan, client, environ=ENVIRON, parallelism=parallelism)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        if profiler:
            profiler.disable()
        items = await client.list_all_sessions(include_archived=True)
    names = Counter(
        m.name for item in items for t in item.get("tags", []) if (m := Marker.parse(t))
    )
    duplicates = sum(n - 1 for n in names.values() if n > 1)
    return elapsed, cpu, len(report.failed), len(names) + duplicates


def _run(
    manifests: Path,
    workdir: Path,
    args: argparse.Namespace,
    latency_ms: float,
    profile: bool,
) -> tuple[float, float]:
    """One apply against a fresh served hub: (wall seconds, client CPU seconds)."""
    workdir.mkdir()
    with served_hub(workdir, extra_args=["--latency-ms", f"{latency_ms:g}"]) as hub:
        profiler = cProfile.Profile() if profile else None
        elapsed, cpu, failed, sessions = asyncio.run(
            _apply(options_for(hub), manifests, args.parallelism, profiler)
        )
        if profiler:
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats("tottime").print_stats(25)
    if failed or sessions != args.creates:
        raise SystemExit(f"error: {failed} failed, {sessions} sessions for {args.creates}")
    return elapsed, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=500)
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument("--profile", action="store_true", help="cProfile the client side")
    parser.add_argument("--small", action="store_true", help="CI smoke size: 50 creates, 5 ms")
    args = parser.parse_args(argv)
    if args.small:
        args.creates, args.latency_ms, args.repeat = 50, 5.0, 1
    if args.latency_ms <= 0:
        parser.error("--latency-ms must be above 0: the cost of latency is measured")
    runs: dict[float, list[tuple[float, float]]] = {args.latency_ms: [], 0.0: []}
    with tempfile.TemporaryDirectory() as tmp:
        manifests = Path(tmp) / "manifests"
        generate_manifests(manifests, args.creates)
        for run in range(max(1, args.repeat)):
            for latency in runs:  # alternating, so a slow spell hits both alike
                work = Path(tmp) / f"run-{run}-{latency:g}ms"  # every run creates them all
                profile = args.profile and run == 0 and latency > 0
                runs[latency].append(_run(manifests, work, args, latency, profile))
    (slow, slow_cpu), (fast, fast_cpu) = min(runs[args.latency_ms]), min(runs[0.0])
    waves = ceil_div(args.creates, args.parallelism)
    ideal = waves * args.latency_ms / 1000
    ratio = (slow - fast) / ideal
    print(f"creates:                     {args.creates} at parallelism {args.parallelism}")
    for latency, timed in runs.items():
        print(
            f"{f'runs at {latency:g} ms (wall ms):':<29}"
            + ", ".join(f"{w * 1000:.0f}" for w, _ in timed)
            + f" (best of {len(timed)} counts)"
        )
    for latency, wall in ((args.latency_ms, slow), (0, fast)):
        print(f"{f'apply wall time at {latency:g} ms:':<29}{wall * 1000:8.1f} ms")
    print(f"latency cost (difference):   {(slow - fast) * 1000:8.1f} ms")
    print(f"ideal, waves x latency:      {ideal * 1000:8.1f} ms ({waves} waves)")
    print(
        f"client CPU per create:       {slow_cpu / args.creates * 1000:8.2f} ms at "
        f"{args.latency_ms:g} ms, {fast_cpu / args.creates * 1000:.2f} ms at 0 ms "
        "(the hub is another process)"
    )
    print(
        f"ratio: {ratio:.2f}x the ideal latency cost (target <= {TARGET}, "
        f"{'met' if ratio <= TARGET else 'MISSED'})"
    )
    emit_result(
        "apply",
        {
            "creates": args.creates,
            "parallelism": args.parallelism,
            "latency_ms": args.latency_ms,
            "apply_ms": slow * 1000,
            "apply_at_0_ms": fast * 1000,
            "ideal_ms": ideal * 1000,
            "client_cpu_per_create_ms": slow_cpu / args.creates * 1000,
            "ratio": ratio,
            "target": f"<= {TARGET}",
            "met": ratio <= TARGET,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
