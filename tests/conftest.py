"""Shared fixtures and the two test tiers.

Every test runs with a scrubbed environment (no real tokens, no CI).

Tiers: ``-m "not subprocess and not slow"`` is the fast tier, in-process. A test that
starts a Python process (``reconciler hub serve``, the CLI, the benchmarks) carries the
``subprocess`` marker, or it fails: an audit hook refuses such launches from unmarked
tests, so the fast tier cannot quietly start waiting on subprocesses. Tests that use
``served_hub`` are marked automatically, and so are hypothesis tests as ``slow``.

``served_hub`` is one ``reconciler hub serve --admin`` per test process (per xdist
worker), shared by every test that can be isolated by tenant: each takes its own org
and tokens with the ``tenant`` fixture. Tests that restart a hub, turn fault knobs or
need particular flags start their own with ``hubproc.start_hub``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from hubproc import HubProcess, Tenant, TenantPool, all_tokens, is_scrubbed, start_hub

_running: list[pytest.Item] = []


def _starts_python(executable: Any, args: Any) -> bool:
    """Whether a launch runs the interpreter or a Python script such as `reconciler` or
    `lint-imports` (0.5 s or more to start); tools such as git (plan records the
    commit) start in milliseconds."""
    argv = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)
    program = os.fsdecode(executable if executable is not None else argv[0])
    program = program.split(" ", 1)[0]
    if program == sys.executable or os.path.basename(program).startswith("python"):
        return True
    path = shutil.which(program)
    try:
        with open(path or program, "rb") as script:
            first = script.readline(256)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def _refuse_python_processes_in_unmarked_tests(event: str, args: tuple[Any, ...]) -> None:
    if event != "subprocess.Popen" or not _running:
        return
    item = _running[-1]
    if item.get_closest_marker("subprocess") is None and _starts_python(args[0], args[1]):
        raise RuntimeError(
            f"{item.nodeid} starts a Python process without the `subprocess` marker: "
            "mark it @pytest.mark.subprocess, or keep it in-process (the fast tier)"
        )


# Installed once, when pytest imports this file; an audit hook stays for the process.
sys.addaudithook(_refuse_python_processes_in_unmarked_tests)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.pop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "served_hub" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.subprocess)
        # Property and fuzz tests run hundreds of examples each: the full suite's job.
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _scrub_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if is_scrubbed(name):
            monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture(autouse=True)
def _watch_settles_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A test writes its manifests and reconciles at once: an in-process watcher does not
    # wait for them to settle (tests/test_watch.py checks the wait with its own setting).
    # Imported here only when the test already loaded the watcher.
    cycle = sys.modules.get("reconciler.watch.cycle")
    if cycle is not None:
        monkeypatch.setattr(cycle, "SETTLE_S", 0.0)


@pytest.fixture(scope="session")
def served_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One ``reconciler hub serve --admin`` for this test process, knowing every tenant."""
    tmp = tmp_path_factory.mktemp("served-hub")
    with start_hub(tmp, extra_args=("--admin",), tokens=all_tokens()) as hub:
        yield hub


@pytest.fixture(scope="session")
def tenant_pool() -> TenantPool:
    """Tenants of this test process; the served hub knows them all."""
    return TenantPool()


@pytest.fixture
def tenant(tenant_pool: TenantPool) -> Tenant:
    """An org and tokens of this test's own: nothing it does is seen by another test."""
    return tenant_pool.take()
