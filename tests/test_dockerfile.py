"""The container image: the Dockerfile's shape, hadolint, its CMD run outside a container,
and a real build when a Docker daemon answers (skipped otherwise, saying why)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from hubproc import child_environ, free_port
from tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
# Read at import (collection), before the autouse scrub of RECONCILER_* in conftest.py
# removes it from each test's environment.
DOCKER_BUILD_OPT_IN = os.environ.get("RECONCILER_DOCKER_BUILD") == "1"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def test_slim_base_non_root_user_and_the_watch_cmd() -> None:
    steps = _instructions()
    [base] = [args for word, args in steps if word == "FROM"]
    # Pinned to one Python release on one Debian release, never a floating tag.
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    [cmd] = [args for word, args in steps if word == "CMD"]
    assert json.loads(cmd) == [
        "reconciler",
        "watch",
        "/manifests",
        # The server the HEALTHCHECK asks: the image is healthy as it comes.
        "--metrics-port",
        "9090",
        "--metrics-host",
        "0.0.0.0",
    ]
    assert not [args for word, args in steps if word == "ENTRYPOINT"]
    # The locked dependencies, hashes required; then the tree, resolving nothing more.
    installs = [args for word, args in steps if word == "RUN" and "pip install" in args]
    assert [re.sub(r"\s+", " ", a).split(" && ")[0] for a in installs] == [
        "pip install --no-cache-dir --require-hashes -r requirements.lock",
        "pip install --no-cache-dir --no-deps --no-build-isolation .",
    ]


def test_the_image_exposes_the_watch_server_and_checks_its_health() -> None:
    steps = _instructions()
    assert [args for word, args in steps if word == "EXPOSE"] == ["9090"]
    [check] = [args for word, args in steps if word == "HEALTHCHECK"]
    assert "http://127.0.0.1:9090/healthz" in check
    assert "--metrics-port 9090" in (ROOT / "docs" / "how-to" / "kubernetes.md").read_text()


def test_what_the_image_copies_is_not_ignored() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        source for word, args in _instructions() if word == "COPY" for source in args.split()[:-1]
    ]
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), source
        clean = source.rstrip("/")
        assert not any(fnmatch.fnmatch(clean, pattern) for pattern in ignored), source
    assert {".git", ".venv", "tests"} <= set(ignored)


def test_hadolint_accepts_the_dockerfile() -> None:
    done = subprocess.run(
        [require_tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.subprocess
def test_the_cmd_runs_outside_a_container_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The image's CMD, with /manifests a copy of the examples and the embedded hub."""
    [cmd] = [json.loads(args) for word, args in _instructions() if word == "CMD"]
    manifests = tmp_path / "manifests"
    shutil.copytree(ROOT / "examples", manifests, ignore=shutil.ignore_patterns("ci"))
    # Outside a container: on 127.0.0.1 and a free port (tests serve nowhere else).
    port = free_port()
    where = {"/manifests": str(manifests), "9090": str(port), "0.0.0.0": "127.0.0.1"}
    argv = [where.get(a, a) for a in cmd]
    argv = [sys.executable, "-m", "reconciler", *argv[1:], "--interval", "1s"]
    env = child_environ()
    env["CODER_API_URL"] = "local"
    log = tmp_path / "watch.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and "reconcile 1:" not in log.read_text():
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
        assert re.search(r"reconcile 1: out of sync: \d+ to create", log.read_text())
        # What the HEALTHCHECK asks, answered.
        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4)
        assert health.status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert log.read_text().rstrip().endswith("stopped")


def _docker_unavailable(docker: str | None) -> str | None:
    if docker is None:
        return "no docker command"
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        return "the Docker daemon does not answer (`docker info` failed)"
    if not DOCKER_BUILD_OPT_IN:
        return "a build takes minutes: set RECONCILER_DOCKER_BUILD=1 to run it"
    return None


def _build_and_check(docker: str) -> None:
    """Build the image from the tree and check its user and command."""
    tag = "coder-reconciler:test"
    subprocess.run([docker, "build", "-t", tag, str(ROOT)], check=True, timeout=900)
    who = subprocess.run(
        [docker, "run", "--rm", tag, "id", "-u"], capture_output=True, text=True, check=True
    )
    assert who.stdout.strip() == "10001"
    helped = subprocess.run(
        [docker, "run", "--rm", tag, "reconciler", "watch", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--self-heal" in helped.stdout


@pytest.mark.slow
def test_the_image_builds_and_runs_as_non_root() -> None:
    docker = shutil.which("docker")
    why = _docker_unavailable(docker)
    if why:
        pytest.skip(why)
    assert docker is not None
    _build_and_check(docker)


# A docker that answers `info`, records every command line and plays the image's part:
# `id -u` as the Dockerfile's USER, `reconciler ...` run from this tree.
FAKE_DOCKER = """
import json, subprocess, sys
args = sys.argv[1:]
with open(sys.argv[0] + ".calls", "a", encoding="utf-8") as calls:
    calls.write(json.dumps(args) + "\\n")
if args[:2] == ["run", "--rm"] and args[3:] == ["id", "-u"]:
    print(10001)
elif args[:2] == ["run", "--rm"] and args[3] == "reconciler":
    sys.exit(subprocess.run([sys.executable, "-m", "reconciler", *args[4:]]).returncode)
"""


@pytest.mark.subprocess  # the fake docker is Python, and runs the CLI
def test_the_opt_in_build_runs_when_asked_with_the_expected_command_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The opt-in survives the environment scrub, and the build's command lines are right
    (a fake docker; the real build needs a daemon and RECONCILER_DOCKER_BUILD=1)."""
    fake = tmp_path / "docker"
    fake.write_text(f"#!{sys.executable}\n{FAKE_DOCKER}")
    fake.chmod(0o755)
    monkeypatch.setattr(sys.modules[__name__], "DOCKER_BUILD_OPT_IN", True)
    assert _docker_unavailable(str(fake)) is None
    _build_and_check(str(fake))
    calls = [json.loads(line) for line in (tmp_path / "docker.calls").read_text().splitlines()]
    tag = "coder-reconciler:test"
    assert calls == [
        ["info"],
        ["build", "-t", tag, str(ROOT)],
        ["run", "--rm", tag, "id", "-u"],
        ["run", "--rm", tag, "reconciler", "watch", "--help"],
    ]
