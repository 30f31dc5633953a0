"""Load + validate N sessions vs libyaml's bare parse of the same files, in one run.

    python benchmarks/bench_load.py [--sessions 10000] [--files 20] [--repeat 3]

Each repeat times the bare parse then ``load_manifests`` (alternating); prints the median
and range of both timings and of their ratio per repeat. The target is a median ratio of
at most 2: reading manifests should cost little more than parsing them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import (
    ENVIRON,
    LoadWatch,
    Spread,
    bare_parse,
    ceil_div,
    emit_result,
    generate_manifests,
)

from reconciler.manifest import load_manifests

TARGET = 2.0


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    load = LoadWatch()
    parses, loads = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = min(args.files, max(1, args.sessions))
        paths = generate_manifests(root, args.sessions, per_file=ceil_div(args.sessions, files))
        environ = ENVIRON
        result = load_manifests([str(root)], environ=environ)
        assert len(result.sessions) == args.sessions, len(result.sessions)
        assert bare_parse(paths) == args.sessions + 1
        for _ in range(max(1, args.repeat)):
            parses.append(timed(lambda: bare_parse(paths)))
            loads.append(timed(lambda: load_manifests([str(root)], environ=environ)))
    ratios = Spread.of([lo / pa for lo, pa in zip(loads, parses, strict=True)])
    load.end()
    print(f"sessions:                  {args.sessions} in {len(paths)} files")
    print(f"libyaml bare parse:        {Spread.of([p * 1000 for p in parses]).text(' ms', 1)}")
    print(f"load_manifests + validate: {Spread.of([t * 1000 for t in loads]).text(' ms', 1)}")
    print(
        f"ratio: {ratios.median:.2f}x the bare parse ({ratios.text('x')}; target <= "
        f"{TARGET:g}x, {load.verdict(ratios.median <= TARGET)})"
    )
    emit_result(
        "load",
        {
            "sessions": args.sessions,
            "parse_ms": statistics.median(parses) * 1000,
            "load_ms": statistics.median(loads) * 1000,
            "ratio": ratios.median,
            "ratio_low": ratios.low,
            "ratio_high": ratios.high,
            "target": f"<= {TARGET:g}x",
            "met": ratios.median <= TARGET,
        },
        load,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
