"""Requests made by `plan` against the pages the listing needs.

    python benchmarks/bench_plan_requests.py [--sessions 2000] [--managed 1000] [--small]

The hub (``reconciler hub serve``, a subprocess) holds ``--sessions`` sessions, of which
``--managed`` were created from the manifests (the rest are someone else's). A
no-change plan is made over a real socket and its requests counted by the client.
Lower bound: ``ceil(sessions / page size)``, the pages of the list endpoint; the
refresh model of Terraform (one GET per session) is shown for comparison.
Target: at most pages + 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from _common import (
    ceil_div,
    emit_result,
    generate_manifests,
    options_for,
    seed_database,
    served_hub,
)

from reconciler.connect import open_client, resolve_endpoint
from reconciler.pipeline import build_plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--managed", type=int, default=1000)
    parser.add_argument("--page-size", type=int, default=100, help="the client's default")
    parser.add_argument("--small", action="store_true", help="CI smoke size: 50 sessions")
    args = parser.parse_args(argv)
    if args.small:
        args.sessions, args.managed, args.page_size = 50, 25, 10
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        manifests = work / "manifests"
        generate_manifests(manifests, args.managed)
        seed_database(
            work / "hub.sqlite3", manifests=manifests, unmanaged=args.sessions - args.managed
        )
        with served_hub(work) as hub:
            opts = options_for(hub)

            async def run() -> tuple[int, int, int]:
                endpoint = resolve_endpoint(opts)
                async with open_client(endpoint, page_size=args.page_size) as client:
                    context = await build_plan(
                        opts, [str(manifests)], endpoint=endpoint, client=client
                    )
                return context.requests, len(context.plan.actions), context.plan.managed_count

            requests, actions, managed = asyncio.run(run())
    if actions or managed != args.managed:
        print(
            f"error: expected a no-change plan of {args.managed}, got {actions} actions "
            f"over {managed} managed",
            file=sys.stderr,
        )
        return 1
    pages = ceil_div(args.sessions, args.page_size)
    print(f"sessions on the hub:       {args.sessions} ({args.managed} managed)")
    print(f"page size:                 {args.page_size}")
    print(f"requests made by plan:     {requests}")
    print(f"lower bound (pages):       {pages}")
    print(f"one GET per session:       {args.sessions} (Terraform's refresh model)")
    print(
        f"ratio: {requests / pages:.2f}x the pages (target: at most {pages + 2} requests, "
        f"{'met' if requests <= pages + 2 else 'MISSED'})"
    )
    print(f"ratio: {requests / args.sessions:.3f}x one GET per session")
    emit_result(
        "plan_requests",
        {
            "sessions": args.sessions,
            "managed": args.managed,
            "requests": requests,
            "pages": pages,
            "ratio": requests / pages,
            "target": f"<= {pages + 2} requests",
            "met": requests <= pages + 2,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
