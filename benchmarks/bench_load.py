"""Load + validate N sessions vs libyaml's bare parse of the same files, in one run.

    python benchmarks/bench_load.py [--sessions 10000] [--files 20] [--repeat 3]

Prints both timings (best of ``--repeat``) and their ratio. The target is a ratio of at
most 2: reading manifests should cost little more than parsing them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import ENVIRON, bare_parse, ceil_div, generate_manifests

from reconciler.manifest import load_manifests


def best(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = min(args.files, max(1, args.sessions))
        paths = generate_manifests(root, args.sessions, per_file=ceil_div(args.sessions, files))
        environ = ENVIRON
        result = load_manifests([str(root)], environ=environ)
        assert len(result.sessions) == args.sessions, len(result.sessions)
        assert bare_parse(paths) == args.sessions + 1
        parse = best(lambda: bare_parse(paths), args.repeat)
        load = best(lambda: load_manifests([str(root)], environ=environ), args.repeat)
    print(f"sessions:                  {args.sessions} in {len(paths)} files")
    print(f"libyaml bare parse:        {parse * 1000:9.1f} ms")
    print(f"load_manifests + validate: {load * 1000:9.1f} ms")
    print(f"ratio:                     {load / parse:9.2f}x (target <= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
