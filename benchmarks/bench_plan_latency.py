"""Wall time of `plan` over a slow network against reading the pages one after another.

    python benchmarks/bench_plan_latency.py [--sessions 2000] [--managed 1000]
                                            [--latency-ms 50] [--repeat 3] [--small]

Same data as bench_plan_requests.py; the served hub adds ``--latency-ms`` to every API
request. Figures (best of ``--repeat``): the whole no-change plan (manifests loaded,
sessions listed, planned) at ``--latency-ms`` and at 0 ms, its listing alone, and a
sequential listing measured in the same run. Lower bound: sequential paging,
``pages x latency``. Target (issue 14's reading: what the network costs the plan, since
loading, which no round trip can hide, is in both runs): the latency cost, whole plan at
``--latency-ms`` minus whole plan at 0 ms, at most 0.25 of the bound. The whole plan's
share of the bound is printed too.

Also printed, to show what the target asks: the floor of any plan that keeps the rule
"no request while a manifest may be invalid", which is libyaml's bare parse of the same
manifests (measured here) followed by the listing's two round trips (the first page
says how many there are; the rest go out at once).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    bare_parse,
    ceil_div,
    emit_result,
    generate_manifests,
    options_for,
    seed_database,
    served_hub,
)

from reconciler.connect import open_client, resolve_endpoint
from reconciler.pipeline import build_plan
from reconciler.settings import GlobalOptions

TARGET = 0.25


async def _timed_plan(opts: GlobalOptions, manifests: Path) -> float:
    start = time.perf_counter()
    context = await build_plan(opts, [str(manifests)], endpoint=resolve_endpoint(opts))
    elapsed = time.perf_counter() - start
    if context.plan.actions:
        raise SystemExit(f"error: expected a no-change plan, got {len(context.plan.actions)}")
    return elapsed


async def _timed_listing(opts: GlobalOptions, concurrency: int | None) -> tuple[float, int]:
    overrides = {} if concurrency is None else {"list_concurrency": concurrency}
    async with open_client(resolve_endpoint(opts), **overrides) as client:
        await client.discover()  # connection set up outside the timing
        start = time.perf_counter()
        items = await client.list_all_sessions(include_archived=True)
        return time.perf_counter() - start, len(items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--managed", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="CI smoke size: 50 sessions, 5 ms")
    args = parser.parse_args(argv)
    if args.small:
        args.sessions, args.managed, args.latency_ms, args.repeat = 50, 25, 5.0, 1
    page_size = 100
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        manifests = work / "manifests"
        paths = generate_manifests(manifests, args.managed)
        parses = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            bare_parse(paths)
            parses.append(time.perf_counter() - started)
        seed_database(
            work / "hub.sqlite3", manifests=manifests, unmanaged=args.sessions - args.managed
        )
        with served_hub(work, extra_args=["--latency-ms", f"{args.latency_ms:g}"]) as hub:
            opts = options_for(hub)
            plans = [asyncio.run(_timed_plan(opts, manifests)) for _ in range(args.repeat)]
            # The listing as plan makes it (the client's default fan-out).
            lists = [asyncio.run(_timed_listing(opts, None)) for _ in range(args.repeat)]
            sequential = [asyncio.run(_timed_listing(opts, 1)) for _ in range(args.repeat)]
        with served_hub(work) as hub:  # the same database, no added latency
            opts = options_for(hub)
            plans_at_0 = [asyncio.run(_timed_plan(opts, manifests)) for _ in range(args.repeat)]
    if {n for _, n in lists + sequential} != {args.sessions}:
        print("error: a listing did not return every session", file=sys.stderr)
        return 1
    pages = ceil_div(args.sessions, page_size)
    bound = pages * args.latency_ms / 1000
    whole, listing = min(plans), min(t for t, _ in lists)
    measured_seq = min(t for t, _ in sequential)
    whole_at_0 = min(plans_at_0)
    ratio = (whole - whole_at_0) / bound
    parse = min(parses)
    floor = parse + 2 * args.latency_ms / 1000
    print(f"sessions on the hub:         {args.sessions} ({args.managed} managed), {pages} pages")
    print(f"latency per request:         {args.latency_ms:g} ms")
    print(f"whole plan (load+list+plan): {whole * 1000:8.1f} ms")
    print(f"whole plan at 0 ms:          {whole_at_0 * 1000:8.1f} ms")
    print(f"its listing alone:           {listing * 1000:8.1f} ms")
    print(f"sequential listing, measured:{measured_seq * 1000:8.1f} ms")
    print(f"lower bound pages x latency: {bound * 1000:8.1f} ms")
    print(f"bare parse of the manifests: {parse * 1000:8.1f} ms (libyaml, same run)")
    print(f"floor: parse + 2 round trips:{floor * 1000:8.1f} ms = {floor / bound:.3f} of the bound")
    print(
        f"ratio: {ratio:.3f} of sequential paging is what latency costs the plan (target <= "
        f"{TARGET}, {'met' if ratio <= TARGET else 'MISSED'}); whole plan {whole / bound:.3f}, "
        f"listing alone {listing / bound:.3f}; whole plan {whole / floor:.2f}x its floor"
    )
    emit_result(
        "plan_latency",
        {
            "sessions": args.sessions,
            "latency_ms": args.latency_ms,
            "plan_ms": whole * 1000,
            "plan_at_0_ms": whole_at_0 * 1000,
            "whole_ratio": whole / bound,
            "list_ms": listing * 1000,
            "sequential_ms": measured_seq * 1000,
            "bound_ms": bound * 1000,
            "parse_ms": parse * 1000,
            "floor_ms": floor * 1000,
            "floor_ratio": floor / bound,
            "ratio": ratio,
            "target": f"<= {TARGET}",
            "met": ratio <= TARGET,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
