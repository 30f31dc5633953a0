"""Shared fixtures. Every test runs with a scrubbed environment (no real tokens, no CI)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

_SCRUBBED_PREFIXES = ("AGENTUITY_", "CODER_", "RECONCILER_")
_SCRUBBED = ("CI", "NO_COLOR", "GITHUB_STEP_SUMMARY")


@pytest.fixture(autouse=True)
def _scrub_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(_SCRUBBED_PREFIXES) or name in _SCRUBBED:
            monkeypatch.delenv(name, raising=False)
    yield
