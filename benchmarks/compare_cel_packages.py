"""How the CEL packages compare on the five example rules: how `cel-expr-python` was
chosen (docs/concepts/policies.md, "Choosing the CEL package").

    python -m venv /tmp/cel && /tmp/cel/bin/pip install cel-expr-python \\
        common-expression-language cel-python
    /tmp/cel/bin/python benchmarks/compare_cel_packages.py [--sessions 10000]

Not run by run_all.py: only the chosen package is a dependency. For each package, in a
fresh subprocess: the CPU of its import, of compiling the rules, and of evaluating the
four session rules over ``--sessions`` sessions (cel-python over a tenth of them,
scaled: it is two orders of magnitude slower), and the error text of a rule that does
not compile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

SESSION_RULES = [
    'session.tags.exists(t, t.startsWith("owner:"))',
    "!has(session.spec.loop) || !has(session.spec.loop.maxIterations) || "
    "session.spec.loop.maxIterations <= 50",
    '(!has(session.spec.repo) || session.spec.repo.fullName.matches("^(acme|acme-labs)/")) && '
    "(!has(session.spec.repos) || "
    'session.spec.repos.all(r, r.fullName.matches("^(acme|acme-labs)/")))',
    '!has(session.spec.env) || session.spec.visibility != "collaborate"',
]
PLAN_RULE = "plan.counts.creates <= 20"
BROKEN = "session.name +"
PACKAGES = ("cel-expr-python", "common-expression-language", "cel-python")


def _sessions(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        spec: dict[str, Any] = {
            "task": f"task {i}",
            "visibility": "organization",
            "tags": ["platform", "owner:platform"],
            "loop": {"goal": "g", "maxIterations": 20},
            "repo": {"fullName": "acme/api", "branch": "main"},
        }
        if i % 3 == 0:
            spec["env"] = {"TOKEN": "${env:TOKEN}"}
        session = {"name": f"s{i}", "tags": spec["tags"], "spec": spec}
        out.append({"session": session, "live": None, "change": None})
    return out


def child(package: str, n: int) -> dict[str, Any]:
    data = _sessions(n)
    plan = {"plan": {"counts": {"creates": 10}}}
    error = ""
    cpu = time.process_time()
    if package == "cel-expr-python":
        from cel_expr_python import cel  # type: ignore[import-not-found]

        imported = time.process_time()
        dyn = cel.Type.DYN
        env = cel.NewEnv(variables={v: dyn for v in ("session", "live", "change", "plan")})
        programs = [env.compile(r) for r in SESSION_RULES]
        plan_program = env.compile(PLAN_RULE)
        compiled = time.process_time()
        for variables in data:
            activation = env.Activation(variables)
            assert all(p.eval(activation).value() is True for p in programs)
        assert plan_program.eval(data=plan).value() is True
        try:
            env.compile(BROKEN)
        except RuntimeError as exc:
            error = str(exc)
    elif package == "common-expression-language":
        import cel  # type: ignore[import-not-found]

        imported = time.process_time()
        programs = [cel.compile(r) for r in SESSION_RULES]
        plan_program = cel.compile(PLAN_RULE)
        compiled = time.process_time()
        for variables in data:
            assert all(p.execute(variables) is True for p in programs)
        assert plan_program.execute(plan) is True
        try:
            cel.compile(BROKEN)
        except ValueError as exc:
            error = str(exc)
    else:
        import celpy  # type: ignore[import-not-found]

        imported = time.process_time()
        env = celpy.Environment()
        programs = [env.program(env.compile(r)) for r in SESSION_RULES]
        compiled = time.process_time()
        data = data[: max(1, n // 10)]
        for variables in data:
            activation = {k: celpy.json_to_cel(v) for k, v in variables.items()}
            assert all(bool(p.evaluate(activation)) for p in programs)
        try:
            env.compile(BROKEN)
        except Exception as exc:  # celpy.CELParseError
            error = str(exc)
    evaluated = time.process_time()
    scale = n / len(data)
    return {
        "package": package,
        "import_s": imported - cpu,
        "compile_s": compiled - imported,
        "evaluate_s": (evaluated - compiled) * scale,
        "per_session_us": (evaluated - compiled) / len(data) * 1e6,
        "error": error[:300],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.sessions)))
        return 0
    print(f"load average (1 min): {os.getloadavg()[0]:.2f}")
    for package in PACKAGES:
        argv_ = [sys.executable, __file__, "--child", package, "--sessions", str(args.sessions)]
        done = subprocess.run(argv_, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            print(f"{package}: not measured ({done.stderr.strip().splitlines()[-1]})")
            continue
        r = json.loads(done.stdout)
        print(
            f"{package:28} import {r['import_s'] * 1000:7.1f} ms  compile "
            f"{r['compile_s'] * 1000:7.1f} ms  evaluate {r['evaluate_s']:7.3f} s "
            f"({r['per_session_us']:7.1f} us/session)"
        )
        print(f"    error: {r['error']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
