"""Whether a no-change plan scales: 10,000 and 100,000 managed sessions, embedded hub.

    python benchmarks/bench_plan_scale.py [--sizes 10000 100000] [--repeat 2]
                                          [--workdir DIR] [--small]

Opt-in (``run_all.py --scale`` runs it at full size; plain ``run_all.py`` only at the
smoke size): setting up 100,000 sessions writes 200 manifest files and seeds the hub
database through its own store, which takes several minutes, and each plan of 100,000
takes about a minute of CPU and up to 1 GB. ``--workdir DIR`` keeps the manifests and
databases in DIR and reuses them on the next run (``DIR/<size>/``).

Each size is measured as ``bench_plan_cpu.py`` measures (a fresh process per plan, the
median and range of ``--repeat``; libyaml's bare parse of the same files in the same
process; the peak RSS from ``VmHWM``). Targets, on the medians of the largest size: CPU
at most 3x the bare parse; peak RSS at most 600 MB; CPU per session at most 1.2x that of
the smallest size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import LoadWatch, Spread, emit_result, generate_manifests, seed_database
from bench_plan_cpu import run_plans

CPU_TARGET = 3.0
RSS_TARGET_MB = 600.0
LINEAR_TARGET = 1.2


def _prepared(root: Path, sessions: int) -> tuple[Path, Path]:
    """Manifests and a seeded database for ``sessions`` under ``root`` (reused if there)."""
    manifests, db, done = root / "manifests", root / "hub.sqlite3", root / "seeded"
    if not done.exists():
        for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            stale.unlink(missing_ok=True)
        generate_manifests(manifests, sessions, per_file=500)
        # The embedded hub's token acts in `org_local` unless an org is named.
        seed_database(db, manifests=manifests, unmanaged=0, org="org_local", user="user_local")
        done.write_text(f"{sessions}\n")
    return manifests, db


def _measure(work: Path, sizes: list[int], repeat: int) -> dict[int, dict[str, Any]]:
    figures: dict[int, dict[str, Any]] = {}
    for sessions in sizes:
        manifests, db = _prepared(work / str(sessions), sessions)
        runs = run_plans(manifests, db, repeat)
        if any(r["actions"] or r["managed"] != sessions for r in runs):
            raise SystemExit(f"error: expected a no-change plan of {sessions}: {runs}")
        cpu = Spread.of([r["cpu_s"] for r in runs]).median
        ratios = Spread.of([r["cpu_s"] / r["parse_cpu_s"] for r in runs])
        figures[sessions] = {
            "cpu_s": cpu,
            "parse_cpu_s": Spread.of([r["parse_cpu_s"] for r in runs]).median,
            "rss_mb": max(r["rss_mb"] for r in runs),
            "us_per_session": cpu / sessions * 1e6,
            "ratio": ratios.median,
            "ratios": ratios,
        }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the data here")
    parser.add_argument("--small", action="store_true", help="CI smoke size: 20 and 200")
    args = parser.parse_args(argv)
    if args.small:
        args.sizes, args.repeat = [20, 200], 1
    sizes = sorted(args.sizes)
    load = LoadWatch()
    if args.workdir is not None:
        figures = _measure(args.workdir, sizes, args.repeat)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            figures = _measure(Path(tmp), sizes, args.repeat)
    load.end()
    print("| sessions | plan CPU | bare parse | ratio | CPU per session | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n, f in figures.items():  # medians of the repeats; the ratio's range beside it
        print(
            f"| {n:,} | {f['cpu_s']:.2f} s | {f['parse_cpu_s']:.2f} s | {f['ratios'].text('x')} "
            f"| {f['us_per_session']:.0f} us | {f['rss_mb']:.0f} MiB |"
        )
    small, large = figures[sizes[0]], figures[sizes[-1]]
    linear = large["us_per_session"] / small["us_per_session"]
    checks = {
        "cpu": large["ratio"] <= CPU_TARGET,
        "rss": large["rss_mb"] <= RSS_TARGET_MB,
        "linear": linear <= LINEAR_TARGET,
    }

    verdict = load.verdict
    print(
        f"ratio: {large['ratio']:.2f}x the bare parse at {sizes[-1]:,} "
        f"(target <= {CPU_TARGET:g}x, {verdict(checks['cpu'])})"
    )
    print(
        f"ratio: {large['rss_mb'] / RSS_TARGET_MB:.2f}x the RSS bound at {sizes[-1]:,} "
        f"({large['rss_mb']:.0f} MiB, target <= {RSS_TARGET_MB:g} MB, {verdict(checks['rss'])})"
    )
    print(
        f"ratio: {linear:.2f}x the CPU per session of {sizes[0]:,} "
        f"(target <= {LINEAR_TARGET:g}x, {verdict(checks['linear'])})"
    )
    emit_result(
        "plan_scale",
        {
            "sizes": sizes,
            "cpu_s": large["cpu_s"],
            "parse_cpu_s": large["parse_cpu_s"],
            "rss_mb": large["rss_mb"],
            "linear": linear,
            "ratio": large["ratio"],
            "target": f"<= {CPU_TARGET:g}x, <= {RSS_TARGET_MB:g} MB, <= {LINEAR_TARGET:g}x linear",
            "met": all(checks.values()),
        },
        load,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
