"""`reconciler apply` on a real pseudo-terminal: the question, the answer, the progress bar.

The interactive path is the one people take by hand and the one CliRunner cannot reach
(its streams are never terminals). Here the tool runs as a subprocess whose stdin,
stdout and stderr are the slave side of a pty; the test answers the question on the
master side and reads everything the terminal would show.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hubproc import child_environ

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a POSIX pseudo-terminal"),
]

CANARY = "canary-env-value-7f3a91"

PROJECT = """\
apiVersion: reconciler/v1
kind: Project
name: tty
"""
MANIFEST = """\
apiVersion: reconciler/v1
kind: Session
name: {name}
spec:
  task: Triage {name}
  label: {name}
  env: {{DEPLOY_TOKEN: "${{env:DEPLOY_TOKEN}}"}}
"""


def _manifests(root: Path, names: list[str]) -> Path:
    root.mkdir()
    (root / "project.yaml").write_text(PROJECT, encoding="utf-8")
    for name in names:
        (root / f"{name}.yaml").write_text(MANIFEST.format(name=name), encoding="utf-8")
    return root


def _run_on_a_terminal(
    args: list[str], answer: bytes | None, *, timeout: float = 60
) -> tuple[int, str]:
    """Run ``reconciler ARGS`` on a pty; type ``answer`` at the first question."""
    master, slave = os.openpty()
    env = child_environ()
    env.update({"DEPLOY_TOKEN": CANARY, "TERM": "xterm", "COLUMNS": "100"})
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    seen = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the slave side is closed, the tool has exited
                    break
                if not chunk:
                    break
                seen += chunk
                if answer is not None and b"? [y/N]" in seen:
                    os.write(master, answer)
                    answer = None
            elif process.poll() is not None:
                break
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return code, seen.decode("utf-8", "replace")


def test_apply_asks_on_the_terminal_and_draws_a_bar(tmp_path: Path) -> None:
    names = ["alpha", "bravo", "charlie"]
    manifests = _manifests(tmp_path / "m", names)
    db = tmp_path / "hub.sqlite3"
    common = ["--api-url", "local", "--local-db", str(db)]

    code, screen = _run_on_a_terminal([*common, "apply", str(manifests)], b"y\n")

    assert code == 0, screen
    assert "Apply these 3 actions? [y/N]" in screen
    # One line per finished action, each starting by clearing the bar's line...
    for name in names:
        assert re.search(rf"\r\x1b\[K\[\d/3\] \+ {name} created codesess_\w+", screen), name
    # ...the bar redrawn below them up to full, then cleared before the summary.
    assert "[" + "#" * 30 + "] 3/3" in screen
    assert re.search(r"\r\x1b\[KApply complete: 3 succeeded", screen)
    assert CANARY not in screen

    # A second apply has nothing to do and asks nothing.
    code, screen = _run_on_a_terminal([*common, "apply", str(manifests)], None)
    assert code == 0 and "No changes" in screen and "[y/N]" not in screen


def test_answering_no_on_the_terminal_changes_nothing(tmp_path: Path) -> None:
    manifests = _manifests(tmp_path / "m", ["delta"])
    common = ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3")]

    code, screen = _run_on_a_terminal([*common, "apply", str(manifests)], b"n\n")

    assert code == 0, screen
    assert "Apply this 1 action? [y/N]" in screen
    assert "Apply cancelled; nothing changed." in screen
    code, screen = _run_on_a_terminal([*common, "plan", str(manifests)], None)
    assert code == 0 and "Plan: 1 to create" in screen  # still to be created
    assert "\x1b[" in screen  # a terminal gets colour
    assert CANARY not in screen
