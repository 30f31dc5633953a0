"""Peak memory of a benchmark process, and a launcher that reports it for another one.

    python benchmarks/_peak.py OUT_FILE -m MODULE ARGS...   # or: SCRIPT ARGS...

``ru_maxrss`` cannot be used for a child: Linux carries the parent's peak into the
child across fork and exec, so a plan started by a benchmark that had just loaded
100,000 manifests would report the benchmark's memory. ``VmHWM`` belongs to the
address space, which exec replaces. The launcher imports nothing but the standard
library, so what it reports is the program's own.
"""

from __future__ import annotations

import atexit
import resource
import runpy
import sys
from pathlib import Path

__all__ = ["peak_rss_mb"]


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB since its last exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # not Linux: the rusage figure, which may include the parent's
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _launch(argv: list[str]) -> None:
    out = Path(argv[0])
    atexit.register(lambda: out.write_text(f"{peak_rss_mb()}\n"))
    if argv[1] == "-m":
        sys.argv = [argv[2], *argv[3:]]
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv[1:]
        runpy.run_path(argv[1], run_name="__main__")


if __name__ == "__main__":
    _launch(sys.argv[1:])
