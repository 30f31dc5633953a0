"""The official Agentuity CLI and SDK, at their pinned versions, against `hub serve`.

tests/official_clients.py is the check (also runnable by hand); this runs it. The npm
packages are installed once into pytest's cache directory and reused while their
versions match. Skipped, saying why, when they cannot be installed here (no npm, no
registry, not Linux x86-64).
"""

from __future__ import annotations

from pathlib import Path

import official_clients
import pytest


def _prefix(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    return (cache.mkdir("official-clients") if cache is not None else tmp_path) / "npm"


@pytest.mark.slow  # installs npm packages once, then about 90 client runs
@pytest.mark.subprocess  # `reconciler hub serve`
def test_the_official_cli_and_sdk_pass_every_check(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    prefix = _prefix(request, tmp_path)
    if not official_clients.installed(prefix):
        reason = official_clients.unavailable_reason()
        if reason is not None:
            pytest.skip(f"the official clients cannot be installed: {reason}")
        official_clients.install(prefix)
    workdir = tmp_path / "run"
    workdir.mkdir()
    cli, sdk = official_clients.run_all(prefix, workdir)
    report = official_clients.report("CLI", cli) + "\n" + official_clients.report("SDK", sdk)
    assert len(cli) == len(official_clients.CLI_CHECKS), report
    assert len(sdk) > 1, report  # one result only: the SDK script did not run its checks
    assert all(r.ok for r in cli + sdk), report


def test_without_npm_the_reason_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    reason = official_clients.unavailable_reason()
    assert reason is not None and ("npm is not installed" in reason or "Bun binary" in reason)
