"""How every benchmark reports: the machine's load around it, the median and range of
its repeats, and the one rule for a verdict (``run_all.py`` applies the same rule).

A target is ``met`` only by the median of the repeats, and only when the machine's
load average (1 minute, read at the benchmark's start and end) did not exceed its
cores; otherwise a median within the target is ``noisy``. A median beyond the target is
``MISSED`` whatever the load. Standard library only: ``run_all.py`` imports it.

``BENCH_LOAD_AVERAGE`` replaces the machine's reading (the smoke test injects it).

A benchmark's start also compiles the package's bytecode where it is missing or older
than its source (:func:`compile_package`): the tool is measured as installed, not as a
checkout whose edited modules a ``PYTHONDONTWRITEBYTECODE`` environment compiles again
in every process it starts.
"""

from __future__ import annotations

import compileall
import importlib.util
import json
import math
import os
import signal
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LOAD_VARIABLE",
    "LoadWatch",
    "Spread",
    "compile_package",
    "cores",
    "emit_result",
    "exit_on_sigterm",
    "load_average",
    "verdict",
]

LOAD_VARIABLE = "BENCH_LOAD_AVERAGE"


def cores() -> int:
    return os.cpu_count() or 1


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages (all three the injected value, if any)."""
    injected = os.environ.get(LOAD_VARIABLE)
    if injected:
        value = float(injected)
        return value, value, value
    return os.getloadavg()


def compile_package(name: str = "reconciler") -> None:
    """Write the bytecode of package ``name`` that is missing or stale, as ``pip install``
    does: a process started with ``PYTHONDONTWRITEBYTECODE`` set (some machines set it)
    otherwise compiles each module edited since its last ``.pyc`` again, in every run,
    which an installed tool never does (about 60 ms of a plan's CPU for the whole
    package). ``py_compile`` writes whatever that variable says; up-to-date files are
    only checked."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, name
    for directory in spec.submodule_search_locations:
        if not compileall.compile_dir(directory, quiet=2):  # one line, not one per file
            print(
                f"warning: could not write {name}'s bytecode under {directory}: measured "
                "processes may compile modules from source",
                flush=True,
            )


def exit_on_sigterm() -> None:
    """Make SIGTERM (a CI runner cancelling the job) end this process as Ctrl-C does,
    through its ``with`` and ``finally`` blocks: a hub a benchmark started is stopped,
    not left running, and ``run_all.py`` stops the benchmark it runs the same way."""
    signal.signal(signal.SIGTERM, _raise_exit)


def _raise_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def verdict(ok: bool, load: float, cpus: int) -> str:
    """``met``, ``noisy`` (within the target on a machine busier than its cores) or
    ``MISSED``."""
    if not ok:
        return "MISSED"
    return "noisy" if load > cpus else "met"


@dataclass(frozen=True)
class Spread:
    """The median and range of a benchmark's repeats."""

    median: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values), len(values))

    def text(self, unit: str = "", digits: int = 2) -> str:
        low, high = f"{self.low:.{digits}f}", f"{self.high:.{digits}f}{unit}"
        return f"median {self.median:.{digits}f}{unit}, range {low}-{high} of {self.count}"


class LoadWatch:
    """Prints the load average when created (a benchmark's start, which first compiles
    the package: :func:`compile_package`) and at :meth:`end`."""

    def __init__(self) -> None:
        compile_package()
        self.cores = cores()
        self.start = load_average()
        self._print("start", self.start)
        self.stop: tuple[float, float, float] | None = None

    def _print(self, when: str, load: tuple[float, float, float]) -> None:
        injected = f" (from {LOAD_VARIABLE})" if os.environ.get(LOAD_VARIABLE) else ""
        readings = " ".join(f"{v:.2f}" for v in load)
        print(
            f"load average at {when}: {readings} (1, 5, 15 min; {self.cores} cores){injected}",
            flush=True,
        )

    def end(self) -> None:
        if self.stop is None:
            self.stop = load_average()
            self._print("end", self.stop)

    @property
    def peak(self) -> float:
        """The higher 1-minute reading of the start and the end."""
        self.end()
        assert self.stop is not None
        return max(self.start[0], self.stop[0])

    def verdict(self, ok: bool) -> str:
        return verdict(ok, self.peak, self.cores)


def emit_result(name: str, figures: Mapping[str, Any], load: LoadWatch) -> None:
    """The machine-readable last line that run_all.py reads: the figures (``met``: the
    median within the target), and the load at the start and the end."""
    load.end()
    assert load.stop is not None
    figures = {**figures, "load_start": load.start[0], "load_end": load.stop[0]}
    clean = {
        k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v)
        for k, v in figures.items()
    }
    line = json.dumps({"benchmark": name, "cores": load.cores, **clean}, sort_keys=True)
    print("RESULT " + line, flush=True)
