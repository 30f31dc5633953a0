"""A plan refused by a safety rule sends no write, even when most of it is harmless.

Each case is a mixed plan: creates beside the refused destroy. The hub is served on
127.0.0.1 behind a wrapper that records every request; after the setup apply, the
refused apply may list (GET) but must send no POST, PATCH, PUT or DELETE.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from asgiserve import RequestLog, serve_app

from reconciler.cli.main import run
from reconciler.hub.app import create_app
from reconciler.hub.config import HubConfig, TokenGrant

TOKEN = "safety-writes-token"

PROJECT = """\
apiVersion: reconciler/v1
kind: Project
name: guarded
policy: {prune: archive, maxDestroyPercent: 30, protectLive: true}
"""


def session(name: str, task: str = "Do the thing", extra: str = "") -> str:
    return (
        f"---\napiVersion: reconciler/v1\nkind: Session\nname: {name}\n"
        f"spec: {{task: {task}}}\n{extra}"
    )


def loop_session(name: str) -> str:
    """A loop session: the hub starts its loop running, so it is live."""
    return (
        f"---\napiVersion: reconciler/v1\nkind: Session\nname: {name}\n"
        "spec: {task: Work the queue, workflowMode: loop, loop: {goal: Empty queue}}\n"
    )


BASE = [session(f"s{i}") for i in range(10)]
NEW = [session("new-a"), session("new-b")]
CASES = {
    # 4 of 10 archived: above maxDestroyPercent (30).
    "over-max-destroy": ([*BASE], [*BASE[4:], *NEW], ()),
    # The task of a preventDestroy session edited (a replacement): refused even forced.
    "prevent-destroy": (
        [*BASE[:3], session("kept", extra="lifecycle: {preventDestroy: true}\n")],
        [*BASE[:3], session("kept", "Another task", "lifecycle: {preventDestroy: true}\n"), *NEW],
        ("--force",),
    ),
    # A live session (its loop runs) no longer declared: protectLive.
    "protect-live": (
        [*BASE[:9], loop_session("live")],
        [*BASE[:9], *NEW],
        (),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_refused_mixed_plan_sends_no_write(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before, after, flags = CASES[case]
    monkeypatch.setenv("AGENTUITY_SDK_KEY", TOKEN)
    manifests = tmp_path / "m"
    manifests.mkdir()
    sessions = manifests / "sessions.yaml"
    (manifests / "project.yaml").write_text(PROJECT)
    log = RequestLog(
        create_app(
            HubConfig(
                db_path=str(tmp_path / "hub.sqlite3"),
                tokens={TOKEN: TokenGrant("org_guard", "user_guard")},
            )
        )
    )
    with serve_app(log) as url:
        sessions.write_text("".join(before))
        assert run(["--api-url", url, "apply", "--yes", str(manifests)]) == 0
        assert len(log.writes()) == len(before)  # the setup: one create each
        log.requests.clear()
        sessions.write_text("".join(after))
        capsys.readouterr()
        code = run(["--api-url", url, "apply", "--yes", *flags, str(manifests)])
        err = capsys.readouterr().err
        assert code == 3, err
        assert log.requests, "the refused apply did not even list"
        assert log.writes() == [], f"{case}: writes sent by a refused apply"
        # The harmless part of the plan is there, and was held back with the rest.
        assert run(["--api-url", url, "plan", "--detailed-exitcode", str(manifests)]) == 3
