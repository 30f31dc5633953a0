"""`reconciler plan` against the naive script a user would write, on a served hub.

    python benchmarks/bench_plan_naive.py [--sessions 10000] [--repeat 3] [--small]

``--sessions`` managed sessions on ``reconciler hub serve`` (no added latency), all as
declared, so the plan has no changes. Each repeat runs, in fresh processes one after
the other, ``reconciler plan --detailed-exitcode`` (httpx's own transport, as the
script's) and ``naive_plan.py`` (libyaml's ``CSafeLoader``,
httpx paging with the plan's page size, a dict compare of the mutable fields; see its
docstring). Figures: each process's CPU seconds (user + system, from ``wait4``; the
hub's own work is in another process and not counted) and peak RSS per alternating pair,
the median and range of their ratios over ``--repeat`` pairs, and both verdicts.
Targets (on the medians): the tool's CPU at most 1.1x the script's; its peak RSS at
most 1.5x; the same verdict (no changes).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import tempfile
from pathlib import Path

from _common import (
    ENVIRON,
    LoadWatch,
    Spread,
    emit_result,
    generate_manifests,
    measured_child,
    seed_database,
    served_hub,
)

from reconciler.client.core import CoderClient

CPU_TARGET = 1.1
RSS_TARGET = 1.5
HERE = Path(__file__).resolve().parent
# The plan's page size is the client's default; the script pages with the same.
PAGE_SIZE: int = inspect.signature(CoderClient).parameters["page_size"].default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--per-file", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5, help="alternating pairs")
    parser.add_argument("--small", action="store_true", help="CI smoke size: 50 sessions")
    args = parser.parse_args(argv)
    if args.small:
        args.sessions, args.per_file, args.repeat = 50, 10, 1
    load = LoadWatch()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        manifests = work / "manifests"
        generate_manifests(manifests, args.sessions, per_file=args.per_file)
        seed_database(work / "hub.sqlite3", manifests=manifests, unmanaged=0)
        with served_hub(work) as hub:
            env = {
                **os.environ,
                **ENVIRON,
                "AGENTUITY_SDK_KEY": hub.token,
                "AGENTUITY_ORG_ID": hub.org_id,
                "NO_COLOR": "1",
            }
            tool_argv = ["-m", "reconciler", "--api-url", hub.url, "plan", "--detailed-exitcode"]
            tool_argv.append(str(manifests))
            naive_argv = [str(HERE / "naive_plan.py"), hub.url, str(manifests)]
            naive_argv += ["--page-size", str(PAGE_SIZE)]
            tool_runs, naive_runs = [], []
            for _ in range(args.repeat):
                tool_runs.append(measured_child(tool_argv, env))
                naive_runs.append(measured_child(naive_argv, env))
    cpu = Spread.of([t[0] / n[0] for t, n in zip(tool_runs, naive_runs, strict=True)])
    rss = Spread.of([t[1] / n[1] for t, n in zip(tool_runs, naive_runs, strict=True)])
    tool_cpu, naive_cpu = (Spread.of([r[0] for r in runs]) for runs in (tool_runs, naive_runs))
    tool_rss, naive_rss = (Spread.of([r[1] for r in runs]) for runs in (tool_runs, naive_runs))
    tool_changes = {r[2] == 2 for r in tool_runs}
    naive_changes = {any(json.loads(r[3]).values()) for r in naive_runs}
    same = tool_changes == naive_changes == {False}
    cpu_ratio, rss_ratio = cpu.median, rss.median
    met = cpu_ratio <= CPU_TARGET and rss_ratio <= RSS_TARGET and same
    load.end()
    print(f"sessions:                    {args.sessions}, all managed, page size {PAGE_SIZE}")
    print(f"reconciler plan CPU:         {tool_cpu.text(' s')}")
    print(f"naive script CPU:            {naive_cpu.text(' s')}")
    print(f"reconciler plan peak RSS:    {tool_rss.text(' MiB', 1)}")
    print(f"naive script peak RSS:       {naive_rss.text(' MiB', 1)}")
    print(
        f"verdicts (changes?):         plan {sorted(tool_changes)}, script {sorted(naive_changes)}"
    )
    print(
        f"ratio: {cpu_ratio:.2f}x the script's CPU ({cpu.text('x')} pairs; target <= "
        f"{CPU_TARGET:g}x, {load.verdict(cpu_ratio <= CPU_TARGET)})"
    )
    print(
        f"ratio: {rss_ratio:.2f}x the script's peak RSS ({rss.text('x')} pairs; target <= "
        f"{RSS_TARGET:g}x, {load.verdict(rss_ratio <= RSS_TARGET)})"
    )
    emit_result(
        "plan_naive",
        {
            "sessions": args.sessions,
            "plan_cpu_s": tool_cpu.median,
            "naive_cpu_s": naive_cpu.median,
            "plan_rss_mb": tool_rss.median,
            "naive_rss_mb": naive_rss.median,
            "ratio": cpu_ratio,
            "ratio_low": cpu.low,
            "ratio_high": cpu.high,
            "rss_ratio": rss_ratio,
            "same_verdict": same,
            "target": f"<= {CPU_TARGET:g}x CPU, <= {RSS_TARGET:g}x RSS, same verdict",
            "met": met,
        },
        load,
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
