"""The two test tiers hold (tests/conftest.py): the fast one never starts a Python process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import conftest
import pytest
from hypothesis import given
from hypothesis import strategies as st


def test_an_unmarked_test_cannot_start_python() -> None:
    # Refused before anything is started: no process, no wait.
    with pytest.raises(RuntimeError, match="without the `subprocess` marker"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    # Any Python script (the console scripts), known by its shebang.
    script = Path(sys.executable).with_name("reconciler")
    with pytest.raises(RuntimeError, match="without the `subprocess` marker"):
        subprocess.run([str(script), "--version"], check=False)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_an_unmarked_test_may_run_a_quick_tool() -> None:
    # plan records the manifests' git commit: git starts in milliseconds.
    done = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("git version")


class Item:
    """What the collection hook reads of a test item."""

    def __init__(self, obj: Any, fixturenames: tuple[str, ...] = ()) -> None:
        self.obj, self.fixturenames, self.markers = obj, fixturenames, set[str]()

    def add_marker(self, marker: pytest.MarkDecorator) -> None:
        self.markers.add(marker.name)


def _plain() -> None:
    pass


@given(st.integers())
def _property(n: int) -> None:
    pass


def test_collection_puts_served_hub_users_and_property_tests_in_their_tiers() -> None:
    items = [Item(_plain, ("tmp_path",)), Item(_plain, ("served_hub", "tenant")), Item(_property)]
    conftest.pytest_collection_modifyitems(items)  # type: ignore[arg-type]
    assert [i.markers for i in items] == [set(), {"subprocess"}, {"slow"}]


def test_a_tool_ci_installs_fails_when_missing_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    import tools

    monkeypatch.setitem(tools.INSTALLED_BY, "no-such-tool-x", "the test extra")
    monkeypatch.setattr(tools, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="no-such-tool-x is missing under CI=true"):
        tools.require_tool("no-such-tool-x")
    monkeypatch.setattr(tools, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="the test extra installs it"):
        tools.require_tool("no-such-tool-x")
