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

import yaml

from reconciler.manifest import load_manifests

PROJECT = """\
apiVersion: reconciler/v1
kind: Project
name: bench
defaults:
  visibility: organization
  tags: [bench]
policy: {prune: archive, maxDestroyPercent: 30, protectLive: true}
"""

SESSION = """\
---
apiVersion: reconciler/v1
kind: Session
name: session-{n}
spec:
  task: Triage the issues opened since yesterday in service {n} and label them
  label: Session {n}
  agent: claude-code
  workflowMode: {mode}
  loop: {{goal: Inbox zero, maxIterations: 20, autoContinue: true, allowDetached: true}}
  tags: [triage, team-{team}]
  skills: [{{skillId: gh-triage, repo: acme/skills}}]
  repo: {{fullName: acme/service-{n}, branch: main}}
  env: {{GITHUB_TOKEN: "${{env:GITHUB_TOKEN}}", LEVEL: debug}}
  metadata: {{team: team-{team}, tier: 2}}
lifecycle:
  preventDestroy: false
  ignoreChanges: [label]
"""


def generate(root: Path, sessions: int, files: int) -> list[Path]:
    paths = []
    per_file = -(-sessions // files)
    n = 0
    for index in range(files):
        parts = [PROJECT] if index == 0 else []
        for _ in range(per_file):
            if n >= sessions:
                break
            mode = "loop" if n % 2 else "standard"
            parts.append(SESSION.format(n=n, mode=mode, team=n % 7))
            n += 1
        path = root / f"sessions-{index:03d}.yaml"
        path.write_text("".join(parts), encoding="utf-8")
        paths.append(path)
    return paths


def bare_parse(paths: list[Path]) -> int:
    count = 0
    for path in paths:
        with open(path, "rb") as handle:
            count += sum(1 for _ in yaml.load_all(handle, Loader=yaml.CSafeLoader))
    return count


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
        paths = generate(root, args.sessions, min(args.files, max(1, args.sessions)))
        environ = {"GITHUB_TOKEN": "x"}
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
