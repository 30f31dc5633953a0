"""Shared by the benchmarks: manifests, a seeded hub database, a served hub, results.

Every benchmark prints the load average at its start and end (``_report.py``), its
figures with the median and range of its repeats, one ``ratio:`` line per lower bound,
then a final ``RESULT {json}`` line that ``run_all.py`` collects into its summary table.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO / "tests") not in sys.path:
    # `tests/hubproc.py` starts `reconciler hub serve` on a free port and stops it.
    sys.path.insert(0, str(REPO / "tests"))

from _peak import peak_rss_mb  # noqa: E402
from _report import LoadWatch, Spread, emit_result, exit_on_sigterm  # noqa: E402
from hubproc import HubProcess, start_hub  # noqa: E402

from reconciler.hub.storage import HubStore  # noqa: E402
from reconciler.hub.validation import parse_create  # noqa: E402
from reconciler.manifest import load_manifests  # noqa: E402
from reconciler.manifest.envref import resolve  # noqa: E402
from reconciler.planner import plan  # noqa: E402
from reconciler.settings import GlobalOptions  # noqa: E402

__all__ = [
    "ENVIRON",
    "ORG",
    "PROJECT",
    "SHAPES",
    "TOKEN",
    "USER",
    "HubProcess",
    "LoadWatch",
    "Spread",
    "bare_parse",
    "ceil_div",
    "emit_result",
    "generate_manifests",
    "measured_child",
    "options_for",
    "peak_rss_mb",
    "seed_database",
    "seeded_hub",
    "served_hub",
]

# Every benchmark imports this module: cancelled with SIGTERM, it stops its hub.
exit_on_sigterm()

PROJECT = "bench"
TOKEN = "bench-token"
ORG = "org_bench"
USER = "user_bench"
# The manifests reference ${env:GITHUB_TOKEN}; its value never matters to a benchmark.
ENVIRON = {"GITHUB_TOKEN": "bench-secret-value"}

PROJECT_DOC = """\
apiVersion: reconciler/v1
kind: Project
name: {project}
defaults:
  visibility: organization
  tags: [bench]
policy: {{prune: archive, maxDestroyPercent: 30, protectLive: true}}
"""

SESSION_DOC = """\
---
apiVersion: reconciler/v1
kind: Session
name: session-{n}
spec:
  task: Triage the issues opened since yesterday in service {n} and label them
  label: Session {n}
  agent: claude-code
  workflowMode: {mode}
{loop}  tags: [triage, team-{team}, "owner:team-{team}"]
  skills: [{{skillId: gh-triage, repo: acme/skills}}]
  repo: {{fullName: acme/service-{n}, branch: main}}
  env: {{GITHUB_TOKEN: "${{env:GITHUB_TOKEN}}", LEVEL: debug}}
  metadata: {{team: team-{team}, tier: 2}}
"""
# The small shape: what a team writes for most sessions (a task, a label, some tags), so
# per-session fixed costs weigh most against the bytes read.
SMALL_SESSION_DOC = """\
---
apiVersion: reconciler/v1
kind: Session
name: session-{n}
spec:
  task: Triage service {n}
  label: S {n}
  tags: [triage, team-{team}]
"""
LOOP_LINE = (
    "  loop: {goal: Inbox zero, maxIterations: 20, autoContinue: true, allowDetached: true}\n"
)
# Session documents by shape: the benchmark's own, and the small one.
SHAPES: dict[str, str] = {"full": SESSION_DOC, "small": SMALL_SESSION_DOC}


def bare_parse(paths: Sequence[Path]) -> int:
    """libyaml's bare parse of ``paths`` (the lower bound of reading manifests): documents."""
    count = 0
    for path in paths:
        with open(path, "rb") as handle:
            count += sum(1 for _ in yaml.load_all(handle, Loader=yaml.CSafeLoader))
    return count


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def generate_manifests(
    root: Path, sessions: int, *, per_file: int = 50, shape: str = "full"
) -> list[Path]:
    """``sessions`` Session documents (and one Project) in files of ``per_file``:
    ``full`` sessions use most spec fields (a loop, skills, a repo, a reference under
    env), ``small`` ones a task, a label and tags."""
    template = SHAPES[shape]
    root.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    files = max(1, ceil_div(sessions, per_file))
    n = 0
    for index in range(files):
        parts = [PROJECT_DOC.format(project=PROJECT)] if index == 0 else []
        for _ in range(per_file):
            if n >= sessions:
                break
            loop = n % 4 == 1
            parts.append(
                template.format(
                    n=n,
                    mode="loop" if loop else "standard",
                    loop=LOOP_LINE if loop else "",
                    team=n % 7,
                )
            )
            n += 1
        path = root / f"sessions-{index:04d}.yaml"
        path.write_text("".join(parts), encoding="utf-8")
        paths.append(path)
    return paths


def seed_database(
    db_path: Path,
    *,
    manifests: Path | None,
    unmanaged: int,
    org: str = ORG,
    user: str = USER,
) -> int:
    """Create in ``db_path`` what ``apply`` would for ``manifests``, plus unmanaged ones.

    Written through the hub's own store (no HTTP), so setting up 10,000 sessions takes
    seconds; the bodies are the planner's create bodies, resolved as apply resolves
    them, so a plan afterwards has no changes. Returns the number of sessions created.
    A database already there is refused: seeding it again would double every session
    (each a duplicate the plan archives), and the figures would measure that instead.
    """
    if db_path.exists():
        raise FileExistsError(f"{db_path} exists: seed a new database, not one in use")
    store = HubStore(str(db_path))
    created = 0
    try:
        if manifests is not None:
            loaded = load_manifests([str(manifests)], environ=ENVIRON)
            for action in plan(loaded.project, loaded.sessions, ()).actions:
                assert action.kind == "create" and action.body is not None
                body = resolve(dict(action.body), ENVIRON)
                store.create_session(org, user, parse_create(body))
                created += 1
        for i in range(unmanaged):
            body = {"task": f"Ad-hoc investigation {i}", "label": f"adhoc {i}", "tags": ["adhoc"]}
            store.create_session(org, user, parse_create(body))
            created += 1
    finally:
        store.close()
    return created


@contextmanager
def served_hub(workdir: Path, *, extra_args: Sequence[str] = ()) -> Iterator[HubProcess]:
    """``reconciler hub serve`` on ``workdir/hub.sqlite3`` with the benchmark token."""
    with start_hub(workdir, extra_args=extra_args, tokens={TOKEN: (ORG, USER)}) as hub:
        yield hub


@contextmanager
def seeded_hub(
    workdir: Path, sessions: int, *, per_file: int, shape: str = "full"
) -> Iterator[tuple[HubProcess, Path, dict[str, str]]]:
    """A served hub holding ``sessions`` managed sessions, all as declared in the
    manifests written under ``workdir/manifests`` (a plan has no changes): the hub, that
    folder, and the environment a child ``reconciler`` needs to reach the hub."""
    manifests = workdir / "manifests"
    generate_manifests(manifests, sessions, per_file=per_file, shape=shape)
    seed_database(workdir / "hub.sqlite3", manifests=manifests, unmanaged=0)
    with served_hub(workdir) as hub:
        env = {
            **os.environ,
            **ENVIRON,
            "AGENTUITY_SDK_KEY": hub.token,
            "AGENTUITY_ORG_ID": hub.org_id,
            "NO_COLOR": "1",
        }
        yield hub, manifests, env


def options_for(hub: HubProcess | None, *, local_db: Path | None = None) -> GlobalOptions:
    """Global options as the CLI would build them for the served hub (or `local`)."""
    if hub is None:
        assert local_db is not None
        return GlobalOptions(api_url="local", local_db=str(local_db), environ=dict(ENVIRON))
    environ = {**ENVIRON, "AGENTUITY_SDK_KEY": hub.token, "AGENTUITY_ORG_ID": hub.org_id}
    return GlobalOptions(api_url=hub.url, environ=environ)


def measured_child(argv: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Run ``argv`` (a module or script and its arguments) through the ``_peak.py``
    launcher: its CPU seconds (user + system, from ``wait4``: the children it waited
    for included), peak RSS (MiB), exit status (0 or 2, else the benchmark stops) and
    stdout."""
    with tempfile.TemporaryDirectory() as tmp:
        peak, out = Path(tmp) / "peak", Path(tmp) / "out"
        launcher = [sys.executable, str(HERE / "_peak.py"), str(peak)]
        with out.open("wb") as stdout:
            process = subprocess.Popen(
                launcher + argv, env=env, stdout=stdout, stderr=subprocess.PIPE
            )
            assert process.stderr is not None
            try:
                errors = process.stderr.read()
                _pid, status, usage = os.wait4(process.pid, 0)
            except BaseException:  # SIGTERM or Ctrl-C: the measured process stops too
                process.terminate()
                process.wait()
                raise
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 2):
            raise SystemExit(f"error: {argv[:2]} exited {code}: {errors.decode()}")
        return usage.ru_utime + usage.ru_stime, float(peak.read_text()), code, out.read_text()
