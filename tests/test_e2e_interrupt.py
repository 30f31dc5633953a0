"""Ctrl-C for real: `reconciler apply` as a subprocess gets SIGINT half way through.

No new action starts, the running ones finish, the report is printed, exit 130; the next
apply finishes the work and leaves one session per name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from clihub import numbered_manifests
from hubproc import HubProcess, child_environ, marker_counts, start_hub

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

N = 24


def _write_manifests(root: Path) -> Path:
    return numbered_manifests(root, "ctrlc", N, width=2)


def _cli(hub: HubProcess, *args: str) -> list[str]:
    return [sys.executable, "-m", "reconciler", "--api-url", hub.url, *args]


def _env(hub: HubProcess) -> dict[str, str]:
    env = child_environ()
    env["AGENTUITY_SDK_KEY"] = hub.token
    return env


def _signalled(
    hub: HubProcess, argv: list[str], at: str, *signals: signal.Signals
) -> tuple[int, str, str]:
    """Run ``argv``; when a stderr line starts with ``at`` (an action's result line),
    send ``signals``, 0.3 s apart. Its exit code, stdout and whole stderr."""
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(hub), text=True
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(at):
            for index, signum in enumerate(signals):
                if index:
                    time.sleep(0.3)
                process.send_signal(signum)
            break
    out, rest = process.communicate(timeout=60)
    return process.returncode, out, "".join(lines) + rest


def in_background(argv: list[str], *, ignoring: str = "SIGINT") -> list[str]:
    """``argv`` as a shell starts a background job (`cmd &` in a script): with SIGINT
    ignored (or ``ignoring`` another signal), which the process inherits."""
    start = f"import os, signal, sys; signal.signal(signal.{ignoring}, signal.SIG_IGN); "
    return [sys.executable, "-c", start + "os.execv(sys.argv[1], sys.argv[1:])", *argv]


@pytest.mark.parametrize(
    ("stop", "background"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGTERM, True)],
    ids=["ctrl-c", "sigterm", "sigterm-to-a-background-job"],
)
def test_sigint_stops_new_actions_prints_the_report_and_the_next_apply_finishes(
    tmp_path: Path, stop: signal.Signals, background: bool
) -> None:
    # SIGTERM (a runner cancelling the job, a pod stopping) is handled as Ctrl-C, also
    # by a job started in the background, whose SIGINT is ignored.
    manifests = _write_manifests(tmp_path)
    with start_hub(tmp_path, extra_args=["--latency-ms", "150"]) as hub:
        argv = _cli(hub, "apply", str(manifests), "--yes", "--parallelism", "2")
        if background:
            argv = in_background(argv)
        # Wait for the first finished action, then press Ctrl-C.
        code, _, stderr = _signalled(hub, argv, "[1/", stop)
        assert code == 130, stderr
        created = [line for line in stderr.splitlines() if " created codesess_" in line]
        assert 1 <= len(created) < N, stderr  # stopped early, after what was running
        assert "not started: interrupted" in stderr and "Apply interrupted:" in stderr
        made = marker_counts(hub, include_archived=True)
        assert 1 <= len(made) < N and set(made.values()) == {1}

        again = subprocess.run([*argv], capture_output=True, text=True, env=_env(hub), timeout=120)
        assert again.returncode == 0, again.stderr
        made = marker_counts(hub, include_archived=True)
        assert len(made) == N and set(made.values()) == {1}
        check = subprocess.run(
            _cli(hub, "plan", str(manifests), "--detailed-exitcode"),
            capture_output=True,
            text=True,
            env=_env(hub),
            timeout=60,
        )
        assert check.returncode == 0, check.stdout + check.stderr


def test_a_signal_once_every_action_is_done_lets_the_settlement_finish(tmp_path: Path) -> None:
    # After the last action the run settles duplicates (a listing, a second away here):
    # SIGTERM then lets it finish and the report is printed; everything was applied.
    manifests = numbered_manifests(tmp_path, "late", 2, width=1)
    with start_hub(tmp_path, extra_args=["--latency-ms", "1000"]) as hub:
        argv = _cli(hub, "apply", str(manifests), "--yes")
        code, _, stderr = _signalled(hub, argv, "[2/2]", signal.SIGTERM)
        assert code == 0, stderr
        assert "Apply complete: 2 succeeded, 0 failed, 0 skipped" in stderr
        assert "Aborted." not in stderr


@pytest.mark.parametrize(
    ("command", "ignoring"), [("plan", "SIGINT"), ("status", "SIGINT"), ("plan", "SIGTERM")]
)
def test_sigterm_stops_a_read_in_the_background_exit_130(
    tmp_path: Path, command: str, ignoring: str
) -> None:
    # A background job ignores SIGINT: SIGTERM was re-raised as SIGINT, so it was lost;
    # the read ran to its end and exited 0 as if never stopped. A SIGTERM its parent
    # ignored stops it too, as it stops `watch` and `hub serve`.
    manifests = _write_manifests(tmp_path)
    with start_hub(tmp_path, extra_args=["--latency-ms", "4000"]) as hub:
        process = subprocess.Popen(
            in_background(_cli(hub, command, str(manifests)), ignoring=ignoring),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(hub),
            text=True,
        )
        time.sleep(2)  # started, and waiting 4 s for the listing's first page
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 130, out + err
        assert "Traceback" not in err and "No changes" not in out


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal")
@pytest.mark.parametrize(
    ("stop", "background"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGTERM, True)],
    ids=["ctrl-c", "sigterm", "sigterm-with-sigint-ignored"],
)
def test_an_interrupt_at_the_prompt_aborts_at_once_and_applies_nothing(
    tmp_path: Path, stop: signal.Signals, background: bool
) -> None:
    # asyncio's Ctrl-C handler cancels the task at its next await: the prompt waited for
    # an answer, and a `y` typed after Ctrl-C applied the plan, then said "Aborted.".
    import pty
    import select

    manifests = numbered_manifests(tmp_path, "prompt", 1, width=1)
    db = tmp_path / "hub.sqlite3"
    argv = [sys.executable, "-m", "reconciler", "--api-url", "local", "--local-db", str(db)]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command on a terminal
        if background:  # SIGINT ignored, as a shell's background job has it
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.execve(sys.executable, [*argv, "apply", str(manifests)], child_environ())
    seen = b""

    def read_until(done: Callable[[bytes], bool], seconds: float) -> None:
        nonlocal seen
        deadline = time.monotonic() + seconds
        while not done(seen) and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child closed the terminal
                    return
                if not chunk:
                    return
                seen += chunk

    try:
        read_until(lambda out: b"action?" in out, 60)
        assert b"Apply this 1 action?" in seen, seen
        os.kill(pid, stop)
        read_until(lambda out: b"Aborted." in out, 30)
        with contextlib.suppress(OSError):
            os.write(fd, b"y\n")  # an answer after the interrupt changes nothing
        read_until(lambda out: False, 2)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 130, seen
    assert b"Aborted." in seen and b"created" not in seen
    listed = subprocess.run(
        [*argv, "sessions", "list"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "0 of 0 sessions" in listed.stdout + listed.stderr


def test_an_interrupted_saved_plan_says_to_plan_again_and_is_refused_after(
    tmp_path: Path,
) -> None:
    # It said "apply again", and `apply --plan` of the same file was refused (exit 4):
    # the saved plan is partly applied, so it is not what a fresh plan does.
    manifests = _write_manifests(tmp_path)
    saved = tmp_path / "plan.json"
    with start_hub(tmp_path, extra_args=["--latency-ms", "150"]) as hub:
        made = subprocess.run(
            _cli(hub, "plan", str(manifests), "--out", str(saved)),
            capture_output=True,
            text=True,
            env=_env(hub),
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        argv = _cli(hub, "apply", "--plan", str(saved), str(manifests), "--parallelism", "2")
        code, _, stderr = _signalled(hub, argv, "[1/", signal.SIGTERM)
        assert code == 130, stderr
        assert "this saved plan is now partly applied and `apply --plan` refuses it" in stderr
        assert "apply again" not in stderr
        again = subprocess.run(argv, capture_output=True, text=True, env=_env(hub), timeout=60)
        assert again.returncode == 4, again.stderr  # as the message said
        fresh = subprocess.run(
            _cli(hub, "apply", str(manifests), "--yes"),
            capture_output=True,
            text=True,
            env=_env(hub),
            timeout=120,
        )
        assert fresh.returncode == 0, fresh.stderr
        made_now = marker_counts(hub, include_archived=True)
        assert len(made_now) == N and set(made_now.values()) == {1}


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_second_interrupt_abandons_the_running_actions_and_still_reports(
    tmp_path: Path, second: signal.Signals
) -> None:
    # A CI runner's cancel sends SIGINT, then SIGTERM seconds later: the second signal
    # cancelled the run and its report was lost (stdout held only an error document).
    manifests = _write_manifests(tmp_path)
    with start_hub(tmp_path, extra_args=["--latency-ms", "1500"]) as hub:
        argv = _cli(hub, "apply", str(manifests), "--yes", "--parallelism", "4")
        # The first done, three more under way: Ctrl-C, then the second signal.
        code, out, stderr = _signalled(
            hub, [*argv, "--format", "json"], "[1/", signal.SIGINT, second
        )
        assert code == 130, stderr
        assert "interrupted twice: running actions abandoned" in stderr
        report = json.loads(out)  # the report, not an error document
        outcomes = {r["name"]: (r["outcome"], r.get("error") or "") for r in report["results"]}
        abandoned = [n for n, (_, e) in outcomes.items() if e.startswith("abandoned while")]
        assert abandoned and all(outcomes[n][0] == "failed" for n in abandoned), outcomes
        assert any(o == "succeeded" for o, _ in outcomes.values())
        assert len(outcomes) == N  # every action is in the report
        # The next apply finishes the work: one session per name, whatever was abandoned.
        again = subprocess.run(argv, capture_output=True, text=True, env=_env(hub), timeout=180)
        assert again.returncode == 0, again.stderr
        made = marker_counts(hub, include_archived=False)
        assert len(made) == N and set(made.values()) == {1}
