"""Wall time of applying creates in parallel against waves of requests at full parallelism.

    python benchmarks/bench_apply.py [--creates 500] [--parallelism 16] [--latency-ms 50]
                                     [--repeat 3] [--profile] [--small]

A plan of ``--creates`` new sessions is applied (``apply_plan``, the library call behind
``reconciler apply``) to an empty served hub that adds ``--latency-ms`` to every API
request; best of ``--repeat`` runs, each against a fresh hub. Lower bound:
``ceil(creates / parallelism) x latency``, every wave of requests costing exactly one
round trip. Target: at most 1.3x. The hub is checked after every run: exactly the
declared sessions, no duplicates.
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
from reconciler.cli.context import GlobalOptions
from reconciler.client.endpoint import open_client
from reconciler.model import Marker
from reconciler.pipeline import build_plan

TARGET = 1.3


async def _apply(
    opts: GlobalOptions, manifests: Path, parallelism: int, profiler: cProfile.Profile | None
) -> tuple[float, float, int, int]:
    context = await build_plan(opts, [str(manifests)])
    plan = context.plan
    async with open_client(opts, org_id=plan.org_id) as client:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=500)
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    parser.add_argument("--profile", action="store_true", help="cProfile the client side")
    parser.add_argument("--small", action="store_true", help="CI smoke size: 50 creates, 5 ms")
    args = parser.parse_args(argv)
    if args.small:
        args.creates, args.latency_ms, args.repeat = 50, 5.0, 1
    runs: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        manifests = Path(tmp) / "manifests"
        generate_manifests(manifests, args.creates)
        for run in range(max(1, args.repeat)):
            work = Path(tmp) / f"run-{run}"  # a fresh hub: every run creates them all
            work.mkdir()
            with served_hub(work, extra_args=["--latency-ms", f"{args.latency_ms:g}"]) as hub:
                opts = options_for(hub)
                profiler = cProfile.Profile() if args.profile and run == 0 else None
                elapsed, cpu, failed, sessions = asyncio.run(
                    _apply(opts, manifests, args.parallelism, profiler)
                )
                if profiler:
                    stats = pstats.Stats(profiler, stream=sys.stderr)
                    stats.sort_stats("tottime").print_stats(25)
            if failed or sessions != args.creates:
                print(
                    f"error: {failed} failed, {sessions} sessions for {args.creates}",
                    file=sys.stderr,
                )
                return 1
            runs.append((elapsed, cpu))
    elapsed, cpu = min(runs)
    waves = ceil_div(args.creates, args.parallelism)
    bound = waves * args.latency_ms / 1000
    ratio = elapsed / bound
    print(f"creates:                     {args.creates} at parallelism {args.parallelism}")
    print(
        "runs (wall ms):              "
        + ", ".join(f"{w * 1000:.0f}" for w, _ in runs)
        + f" (best of {len(runs)} reported)"
    )
    print(f"latency per request:         {args.latency_ms:g} ms")
    print(
        f"apply wall time:             {elapsed * 1000:8.1f} ms "
        f"({args.creates / elapsed:.0f} creates/s)"
    )
    print(f"lower bound waves x latency: {bound * 1000:8.1f} ms ({waves} waves)")
    print(
        f"client CPU during apply:     {cpu * 1000:8.1f} ms "
        f"({cpu / args.creates * 1000:.2f} ms per create; the hub is another process)"
    )
    print(
        f"ratio: {ratio:.2f}x the lower bound (target <= {TARGET}, "
        f"{'met' if ratio <= TARGET else 'MISSED'})"
    )
    emit_result(
        "apply",
        {
            "creates": args.creates,
            "parallelism": args.parallelism,
            "latency_ms": args.latency_ms,
            "apply_ms": elapsed * 1000,
            "bound_ms": bound * 1000,
            "client_cpu_ms": cpu * 1000,
            "ratio": ratio,
            "target": f"<= {TARGET}",
            "met": ratio <= TARGET,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
