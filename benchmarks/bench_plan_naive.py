"""`reconciler plan` against the naive script a user would write, on a served hub.

    python benchmarks/bench_plan_naive.py [--sessions 10000] [--repeat 5] [--shape both] [--small]

``--sessions`` managed sessions on ``reconciler hub serve`` (no added latency), all as
declared, so the plan has no changes, in two shapes: the benchmark's own sessions (most
spec fields) and small ones (a task, a label, tags: where the per-session fixed costs
weigh most against the bytes read). Each repeat runs, in fresh processes one after the
other, ``reconciler plan --detailed-exitcode`` (httpx's own transport, as the script's)
and ``naive_plan.py`` (libyaml's ``CSafeLoader``, httpx paging with the plan's page
size, a dict compare of the mutable fields; see its docstring), then ``floor_plan.py``:
the script's work through the libraries the tool is built on (click, jsonschema-rs,
httpx's asynchronous client with the plan's window), none of the tool's own code.
Figures: each process's CPU seconds (user + system, from ``wait4``; the hub's own work is
in another process and not counted) and peak RSS per alternating pair, the median and
range of their ratios over ``--repeat`` pairs, and the verdicts. The floor's ratios
explain the first and have no target: the floor over the script is what those
libraries add to the script's work; the tool over the floor is the tool's own code net
of what its reading saves over PyYAML's constructor (see ``floor_plan.py``).
Targets (on the medians, in each shape): the tool's CPU at most 1.1x the script's; its
peak RSS at most 1.5x; the same verdict (no changes). The summary's ratio is the worse
shape's.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _common import (
    SHAPES,
    LoadWatch,
    Spread,
    emit_result,
    measured_child,
    seeded_hub,
)

from reconciler.client.core import CoderClient

CPU_TARGET = 1.1
RSS_TARGET = 1.5
HERE = Path(__file__).resolve().parent
# The plan's page size is the client's default; the script pages with the same.
PAGE_SIZE: int = inspect.signature(CoderClient).parameters["page_size"].default


# One run: CPU s, peak RSS MiB, exit status, stdout.
Run = tuple[float, float, int, str]


@dataclass(frozen=True)
class Shape:
    """One shape's alternating runs: (CPU s, peak RSS MiB, exit, stdout) per run."""

    name: str
    tool: list[Run]
    naive: list[Run]
    floor: list[Run]

    def ratios(self, index: int) -> Spread:
        return _ratios(self.tool, self.naive, index)

    @property
    def same(self) -> bool:
        tool_changes = {r[2] == 2 for r in self.tool}
        naive_changes = {any(json.loads(r[3]).values()) for r in self.naive}
        return tool_changes == naive_changes == {False}

    @property
    def floor_agrees(self) -> bool:
        """The floor found no changes either (else its figure says nothing)."""
        return not any(any(json.loads(r[3]).values()) for r in self.floor)


def _ratios(over: list[Run], under: list[Run], index: int) -> Spread:
    """The median and range of ``over``'s figure ``index`` against ``under``'s, run by run."""
    return Spread.of([a[index] / b[index] for a, b in zip(over, under, strict=True)])


def _pairs(shape: str, sessions: int, per_file: int, repeat: int) -> Shape:
    """``repeat`` alternating pairs on ``sessions`` managed sessions of ``shape``."""
    result = Shape(shape, [], [], [])
    with tempfile.TemporaryDirectory() as tmp:
        seeded = seeded_hub(Path(tmp), sessions, per_file=per_file, shape=shape)
        with seeded as (hub, manifests, env):
            tool_argv = ["-m", "reconciler", "--api-url", hub.url, "plan", "--detailed-exitcode"]
            tool_argv.append(str(manifests))
            naive_argv = [str(HERE / "naive_plan.py"), hub.url, str(manifests)]
            naive_argv += ["--page-size", str(PAGE_SIZE)]
            floor_argv = [str(HERE / "floor_plan.py"), *naive_argv[1:]]
            for _ in range(repeat):
                result.tool.append(measured_child(tool_argv, env))
                result.naive.append(measured_child(naive_argv, env))
                result.floor.append(measured_child(floor_argv, env))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--per-file", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5, help="alternating pairs per shape")
    parser.add_argument(
        "--shape",
        choices=[*SHAPES, "both"],
        default="both",
        help="full: the benchmark's sessions; small: task, label and tags only",
    )
    parser.add_argument("--small", action="store_true", help="CI smoke size: 50 sessions")
    args = parser.parse_args(argv)
    if args.small:
        args.sessions, args.per_file, args.repeat = 50, 10, 1
    load = LoadWatch()
    shapes = [
        _pairs(shape, args.sessions, args.per_file, args.repeat)
        for shape in (SHAPES if args.shape == "both" else [args.shape])
    ]
    load.end()
    print(f"sessions:                    {args.sessions}, all managed, page size {PAGE_SIZE}")
    for shape in shapes:
        tool_cpu, naive_cpu = (
            Spread.of([r[0] for r in runs]) for runs in (shape.tool, shape.naive)
        )
        tool_rss, naive_rss = (
            Spread.of([r[1] for r in runs]) for runs in (shape.tool, shape.naive)
        )
        cpu, rss = shape.ratios(0), shape.ratios(1)
        print(f"-- {shape.name} sessions")
        print(f"reconciler plan CPU:         {tool_cpu.text(' s')}")
        print(f"naive script CPU:            {naive_cpu.text(' s')}")
        print(f"libraries' floor CPU:        {Spread.of([r[0] for r in shape.floor]).text(' s')}")
        print(f"reconciler plan peak RSS:    {tool_rss.text(' MiB', 1)}")
        print(f"naive script peak RSS:       {naive_rss.text(' MiB', 1)}")
        print(f"same verdict (no changes):   {shape.same}")
        print(
            f"ratio: {cpu.median:.2f}x the script's CPU, {shape.name} sessions ({cpu.text('x')} "
            f"pairs; target <= {CPU_TARGET:g}x, {load.verdict(cpu.median <= CPU_TARGET)})"
        )
        floor, own = _ratios(shape.floor, shape.naive, 0), _ratios(shape.tool, shape.floor, 0)
        print(
            f"the libraries' floor: {floor.median:.2f}x the script's CPU ({floor.text('x')} "
            f"runs); the plan: {own.median:.2f}x the floor's ({own.text('x')} runs)"
            + ("" if shape.floor_agrees else "; the floor's verdict differs: ignore it")
        )
        print(
            f"ratio: {rss.median:.2f}x the script's peak RSS, {shape.name} sessions "
            f"({rss.text('x')} pairs; target <= {RSS_TARGET:g}x, "
            f"{load.verdict(rss.median <= RSS_TARGET)})"
        )
    # The summary's figure: the worse shape's medians (a target is met in every shape).
    worst = max(shapes, key=lambda shape: shape.ratios(0).median)
    cpu, rss = worst.ratios(0), max(shape.ratios(1).median for shape in shapes)
    same = all(shape.same for shape in shapes)
    met = cpu.median <= CPU_TARGET and rss <= RSS_TARGET and same
    emit_result(
        "plan_naive",
        {
            "sessions": args.sessions,
            "shapes": {
                shape.name: {
                    "plan_cpu_s": Spread.of([r[0] for r in shape.tool]).median,
                    "naive_cpu_s": Spread.of([r[0] for r in shape.naive]).median,
                    "floor_cpu_s": Spread.of([r[0] for r in shape.floor]).median,
                    "floor_ratio": _ratios(shape.floor, shape.naive, 0).median,
                    "plan_rss_mb": Spread.of([r[1] for r in shape.tool]).median,
                    "naive_rss_mb": Spread.of([r[1] for r in shape.naive]).median,
                    "ratio": shape.ratios(0).median,
                    "ratio_low": shape.ratios(0).low,
                    "ratio_high": shape.ratios(0).high,
                    "rss_ratio": shape.ratios(1).median,
                }
                for shape in shapes
            },
            "ratio": cpu.median,
            "ratio_low": cpu.low,
            "ratio_high": cpu.high,
            "worst_shape": worst.name,
            "rss_ratio": rss,
            "same_verdict": same,
            "target": f"<= {CPU_TARGET:g}x CPU, <= {RSS_TARGET:g}x RSS, same verdict, each shape",
            "met": met,
        },
        load,
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
