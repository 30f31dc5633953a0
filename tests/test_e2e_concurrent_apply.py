"""Two `reconciler apply` runs of the same 200 sessions started together leave 200.

Against a served hub the second run's creates race the first's; each run then settles
the markers it wrote (the oldest kept, the others archived). On one embedded hub the
database lock makes the second run wait for the first. Either way both exit 0 and the
next plan is clean (not refused by maxDestroyPercent).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from clihub import numbered_manifests
from hubproc import child_environ, free_port, marker_counts, start_hub

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

N = 200
_TIMEOUT_S = 120


def _write_manifests(root: Path) -> Path:
    return numbered_manifests(root, "twice", N)


def _env(token: str | None = None) -> dict[str, str]:
    env = child_environ()
    if token is not None:
        env["AGENTUITY_SDK_KEY"] = token
    return env


def _together(argv: list[str], env: dict[str, str]) -> list[tuple[int, dict[str, Any], str]]:
    """Start two identical runs at once; their exit codes, JSON reports and stderr."""
    runs = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    done = []
    for run in runs:
        out, err = run.communicate(timeout=_TIMEOUT_S)
        report = json.loads(out) if out.strip() else {}
        done.append((run.returncode, report, err.decode(errors="replace")))
    return done


def _created(report: dict[str, Any]) -> int:
    return sum(1 for r in report["results"] if r["kind"] == "create" and r["sessionId"])


def test_two_applies_at_once_against_a_served_hub_leave_one_session_per_name(
    tmp_path: Path,
) -> None:
    manifests = _write_manifests(tmp_path)
    # Latency and a low parallelism stretch the creates to about 2.5 s, far longer than
    # the two processes' start-up skew, so each run lists before the other's are done.
    with start_hub(tmp_path, extra_args=["--latency-ms", "50"]) as hub:
        cli = [sys.executable, "-m", "reconciler", "--api-url", hub.url]
        env = _env(hub.token)
        apply = ["apply", str(manifests), "--yes", "--parallelism", "4", "--format", "json"]
        runs = _together([*cli, *apply], env)
        for code, _, err in runs:
            assert code == 0, err[-3000:]
        created = sum(_created(report) for _, report, _ in runs)
        archived = [d for _, report, _ in runs for d in report["duplicates"]]
        assert created > N  # the race happened: both runs created some of the names
        # Both runners may archive the same duplicate: one does, the other finds it done.
        assert len({d["sessionId"] for d in archived}) == created - N
        assert {d["outcome"] for d in archived} <= {"succeeded", "noop"}
        assert all(d["kind"] == "archive" and d["reason"].startswith("duplicate") for d in archived)
        assert "made by a concurrent apply" in runs[0][2] + runs[1][2]
        markers = marker_counts(hub)
        assert len(markers) == N and set(markers.values()) == {1}
        plan = subprocess.run(
            [*cli, "plan", str(manifests), "--detailed-exitcode"],
            env=env,
            capture_output=True,
            timeout=_TIMEOUT_S,
        )
        assert plan.returncode == 0, plan.stderr.decode()[-2000:]


def test_three_applies_of_loop_sessions_at_once_leave_one_running_loop_per_name(
    tmp_path: Path,
) -> None:
    # A loop session runs from its creation, so every race copy is live: under the
    # default protectLive each was left, three loops ran per name, and every later plan
    # was refused. A copy made while an apply ran is the race's, and that apply archives it.
    manifests = tmp_path / "loops"
    manifests.mkdir()
    (manifests / "project.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: loops\n"
    )
    for name in ("l1", "l2", "l3"):
        (manifests / f"{name}.yaml").write_text(
            f"apiVersion: reconciler/v1\nkind: Session\nname: {name}\nspec:\n  task: Loop {name}\n"
            "  workflowMode: loop\n  loop: {goal: G, maxIterations: 5}\n"
        )
    with start_hub(tmp_path, extra_args=["--latency-ms", "300"]) as hub:
        cli = [sys.executable, "-m", "reconciler", "--api-url", hub.url]
        env = _env(hub.token)
        argv = [*cli, "apply", str(manifests), "--yes", "--format", "json"]
        runs = [
            subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(3)
        ]
        created = 0
        for run in runs:
            out, err = run.communicate(timeout=_TIMEOUT_S)
            assert run.returncode == 0, err.decode()[-3000:]
            created += _created(json.loads(out))
        assert created > 3  # the race happened
        markers = marker_counts(hub)
        assert len(markers) == 3 and set(markers.values()) == {1}, markers
        plan = subprocess.run(
            [*cli, "plan", str(manifests), "--detailed-exitcode"],
            env=env,
            capture_output=True,
            timeout=_TIMEOUT_S,
        )
        assert plan.returncode == 0, plan.stderr.decode()[-2000:]


def test_two_applies_at_once_on_one_embedded_hub_take_turns(tmp_path: Path) -> None:
    manifests = _write_manifests(tmp_path)
    db = tmp_path / "local" / "hub.sqlite3"
    cli = [sys.executable, "-m", "reconciler", "--api-url", "local", "--local-db", str(db)]
    runs = _together([*cli, "apply", str(manifests), "--yes", "--format", "json"], _env())
    for code, _, err in runs:
        assert code == 0, err[-3000:]
    # One run created everything; the other, after it, found nothing to do.
    assert sorted(_created(report) for _, report, _ in runs) == [0, N]
    assert all(report["duplicates"] == [] for _, report, _ in runs)
    listed = subprocess.run(
        [*cli, "sessions", "list", "--all", "--format", "json"],
        env=_env(),
        capture_output=True,
        timeout=_TIMEOUT_S,
    )
    assert listed.returncode == 0, listed.stderr.decode()
    assert len(json.loads(listed.stdout)["sessions"]["websocket"]) == N
    plan = subprocess.run(
        [*cli, "plan", str(manifests), "--detailed-exitcode"],
        env=_env(),
        capture_output=True,
        timeout=_TIMEOUT_S,
    )
    assert plan.returncode == 0, plan.stderr.decode()[-2000:]


def test_apply_against_a_closed_port_says_the_hub_is_unreachable_in_seconds(
    tmp_path: Path,
) -> None:
    manifests = _write_manifests(tmp_path)
    cli = [sys.executable, "-m", "reconciler", "--api-url", f"http://127.0.0.1:{free_port()}"]
    started = time.monotonic()
    run = subprocess.run(
        [*cli, "apply", str(manifests), "--yes"],
        env=_env("any-token"),
        capture_output=True,
        timeout=_TIMEOUT_S,
    )
    elapsed = time.monotonic() - started
    err = run.stderr.decode()
    assert run.returncode == 1, err[-2000:]
    assert "hub unreachable: cannot connect" in err and "nothing was sent" in err
    assert "outcome unknown" not in err
    assert elapsed < 15, elapsed
