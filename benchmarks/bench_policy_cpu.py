"""What the five example Policies (six rules) add to a no-change plan of many sessions (CPU).

    python benchmarks/bench_policy_cpu.py [--sessions 10000] [--repeat 5] [--small]

``--sessions`` managed sessions (every one on the embedded in-process hub already, so
the plan has no changes) are planned twice, each plan in a fresh subprocess,
alternating: without policies, and with ``examples/policies.yaml`` beside them. In the
run with policies, the CPU of the policy work itself (compiling the rules, building
each session's variables, evaluating) is timed inside the plan. Figures: both plans'
CPU and the policy work's CPU (median and range of ``--repeat`` alternating pairs),
and two ratios, pair by pair: the policy work over the plan without policies (the
figure the target is on: it does not move with the machine's load between processes),
and the plans' CPU with over without (noisier). The load average is printed at the
start and the end; "met" only for the median, on a machine no busier than its cores.
Target: the policy work at most 10% of the no-change plan's CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import generate_manifests, options_for, seed_database
from _report import LoadWatch, Spread, emit_result

from reconciler import asyncrun, gctune, pipeline
from reconciler.connect import resolve_endpoint

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "examples" / "policies.yaml"
TARGET = 0.10


def _timed(
    function: Callable[..., Any], spent: list[float], depth: list[int]
) -> Callable[..., Any]:
    """``function``, its CPU added to ``spent[0]``; ``depth`` is shared by every timed
    function, so one called inside another is counted once."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth[0] += 1
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                spent[0] += time.process_time() - start

    return wrapper


def child(manifests: Path, db: Path) -> int:
    """One plan in this fresh process: its CPU, the policy work's CPU, the findings."""
    spent, depth = [0.0], [0]
    start = time.process_time()
    import reconciler.policy as policy  # the plan would import it for its policies

    spent[0] += time.process_time() - start
    # Every place the plan does policy work: compiling, the rules that read only the
    # declarations (in load_checked, before the hub is read: evaluate_policies, which
    # the pipeline imports from the package when it calls it), and the rest after the
    # plan (_with_policies: evaluate_policies again, record_overrides).
    pipeline._compiled_policies = _timed(pipeline._compiled_policies, spent, depth)
    pipeline._with_policies = _timed(pipeline._with_policies, spent, depth)
    policy.evaluate_policies = _timed(policy.evaluate_policies, spent, depth)
    opts = options_for(None, local_db=db)
    endpoint = resolve_endpoint(opts)
    cpu = time.process_time()
    with gctune.bulk_allocation():  # as `reconciler plan` runs it
        context = asyncrun.run(pipeline.build_plan(opts, [str(manifests)], endpoint=endpoint))
    figures = {
        "cpu_s": time.process_time() - cpu,
        "policy_cpu_s": spent[0],
        "actions": len(context.plan.actions),
        "managed": context.plan.managed_count,
        "findings": len(context.plan.findings),
        "policies": len(context.load.policies),
    }
    print(json.dumps(figures))
    return 0


def _plan(manifests: Path, db: Path) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", str(manifests), str(db)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"error: the plan exited {done.returncode}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--per-file", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="CI smoke size: 50 sessions")
    parser.add_argument("--child", nargs=2, metavar=("MANIFESTS", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(Path(args.child[0]), Path(args.child[1]))
    if args.small:
        args.sessions, args.per_file, args.repeat = 50, 10, 1
    load = LoadWatch()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plain, with_policies, db = work / "plain", work / "policies", work / "hub.sqlite3"
        generate_manifests(plain, args.sessions, per_file=args.per_file)
        seed_database(db, manifests=plain, unmanaged=0, org="org_local", user="user_local")
        shutil.copytree(plain, with_policies)
        shutil.copy(POLICIES, with_policies / "policies.yaml")
        without, with_ = [], []
        for _ in range(args.repeat):  # alternating: drift in the machine's speed hits both
            without.append(_plan(plain, db))
            with_.append(_plan(with_policies, db))
    for run in without + with_:
        if run["actions"] or run["managed"] != args.sessions or run["findings"]:
            print(f"error: expected a clean no-change plan of {args.sessions}: {run}")
            return 1
    if not all(r["policies"] == 5 for r in with_):
        print("error: the plans with policies did not load the five example Policies")
        return 1
    # Medians of alternating pairs; the ratio taken pair by pair.
    base = Spread.of([r["cpu_s"] for r in without])
    full = Spread.of([r["cpu_s"] for r in with_])
    policy = Spread.of([r["policy_cpu_s"] for r in with_])
    shares = Spread.of(
        [w["policy_cpu_s"] / o["cpu_s"] for w, o in zip(with_, without, strict=True)]
    )
    wholes = Spread.of([w["cpu_s"] / o["cpu_s"] for w, o in zip(with_, without, strict=True)])
    added = full.median - base.median
    if not args.small and policy.median < added / 2:
        # The timing missed a place the plan does policy work (it once missed the rules
        # run before the hub is read, and reported a ninth of the work).
        print(
            f"error: the policy work timed ({policy.median:.3f} s) is under half of what "
            f"policies add to the plan ({added:.3f} s): some of it is not timed"
        )
        return 1
    print(f"sessions:                        {args.sessions}, all managed, no changes")
    print(f"plan without policies (CPU):     {base.text(' s')}")
    print(f"plan with the 5 example rules:   {full.text(' s')}")
    print(f"policy work in that plan (CPU):  {policy.text(' s', 3)}")
    print(f"ratio: plans with/without {wholes.text('x', 3)} (noisier: two processes)")
    verdict = load.verdict(shares.median <= TARGET)
    print(
        f"ratio: policy work / plan without {shares.text('', 3)} (target <= {TARGET:g}, {verdict})"
    )
    emit_result(
        "policy_cpu",
        {
            "sessions": args.sessions,
            "plan_cpu_s": base.median,
            "plan_with_policies_cpu_s": full.median,
            "policy_cpu_s": policy.median,
            "ratio": shares.median,
            "ratio_low": shares.low,
            "ratio_high": shares.high,
            "whole_plan_ratio": wholes.median,
            "target": f"policy work <= {TARGET:.0%} of the plan",
            "met": shares.median <= TARGET,
        },
        load,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
