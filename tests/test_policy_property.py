"""Property: a plan that a deny Policy refuses sends no write, whatever the sessions.

Random sessions against the five Policies of examples/policies.yaml, with and without
``--override-policy``: `apply --yes` runs in-process against the embedded hub, whose
ASGI app is wrapped to record every request (tests/asgiserve.py's RequestLog). An
independent oracle (the five rules written again in Python) says whether the plan must
be refused: then the exit code is 3 and the hub saw only the listing's GETs; otherwise
every session was created.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from asgiserve import RequestLog
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reconciler.cli.main import run
from reconciler.hub import local

ROOT = Path(__file__).resolve().parent.parent
ORGS = ("acme", "acme-labs", "evil")
VISIBILITIES = ("private", "organization", "collaborate")
CLONES = ("none", "own", "own.git", "elsewhere")  # the first three comply (``_clone_url``)


session = st.fixed_dictionaries(
    {
        "iterations": st.integers(1, 100),
        "owner": st.booleans(),
        "org": st.sampled_from(ORGS),
        "visibility": st.sampled_from(VISIBILITIES),
        "env": st.booleans(),
        "clone": st.sampled_from(CLONES),
    }
)
# Sessions that break no session rule, so that half the plans or so are allowed.
compliant = st.fixed_dictionaries(
    {
        "iterations": st.integers(1, 50),
        "owner": st.just(True),
        "org": st.sampled_from(ORGS[:2]),
        "visibility": st.sampled_from(VISIBILITIES[:2]),
        "env": st.booleans(),
        "clone": st.sampled_from(CLONES[:3]),
    }
)


@st.composite
def manifests(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Compliant sessions (up to 24: max-creates allows 20) and maybe any one more."""
    found = draw(st.lists(compliant, min_size=0, max_size=24))
    if draw(st.booleans()) or not found:
        found.insert(draw(st.integers(0, len(found))), draw(session))
    return found


def _refused(sessions: list[dict[str, Any]], overrides: set[str]) -> bool:
    """The five example rules, in Python: is any deny broken and not lifted?"""
    broken = set()
    for s in sessions:
        if not s["owner"]:
            broken.add("owner-tag")
        if s["iterations"] > 50:
            broken.add("loop-budget")
        if s["org"] not in ("acme", "acme-labs") or s["clone"] == "elsewhere":
            broken.add("team-repositories")
        if s["env"] and s["visibility"] == "collaborate":
            broken.add("secrets-stay-close")
    if len(sessions) > 20:
        broken.add("max-creates")
    return bool(broken - overrides)


def _clone_url(index: int, s: dict[str, Any]) -> str:
    """The repository's cloneUrl: none, its own on GitHub (with or without .git), or one
    elsewhere under the same fullName (which fullName alone would let through)."""
    own = f"https://github.com/{s['org']}/repo{index}"
    return {
        "none": "",
        "own": f", cloneUrl: '{own}'",
        "own.git": f", cloneUrl: '{own}.git'",
        "elsewhere": f", cloneUrl: 'https://evil.example/{s['org']}/repo{index}.git'",
    }[s["clone"]]


def _manifest(index: int, s: dict[str, Any]) -> str:
    tags = '[team, "owner:team"]' if s["owner"] else "[team]"
    text = (
        f"apiVersion: reconciler/v1\nkind: Session\nname: s{index}\nspec:\n"
        f"  task: task {index}\n  tags: {tags}\n  visibility: {s['visibility']}\n"
        f"  loop: {{goal: g, maxIterations: {s['iterations']}}}\n"
        f"  repo: {{fullName: {s['org']}/repo{index}{_clone_url(index, s)}}}\n"
    )
    if s["env"]:
        text += "  env: {TOKEN: '${env:TOKEN}'}\n"
    return text


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sessions=manifests(),
    overrides=st.sets(st.sampled_from(["loop-budget", "max-creates"])),
)
def test_a_plan_refused_by_policy_sends_no_write(
    sessions: list[dict[str, Any]],
    overrides: set[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs: list[RequestLog] = []
    original: Callable[[str], Any] = local.local_app

    def recorded(db: str) -> RequestLog:
        logs.append(RequestLog(original(db)))
        return logs[-1]

    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        root = Path(tmp) / "m"
        root.mkdir()
        shutil.copy(ROOT / "examples" / "policies.yaml", root / "policies.yaml")
        (root / "project.yaml").write_text("apiVersion: reconciler/v1\nkind: Project\nname: p\n")
        (root / "sessions.yaml").write_text(
            "---\n".join(_manifest(i, s) for i, s in enumerate(sessions))
        )
        patch.setenv("TOKEN", "t0ken")
        patch.setattr(local, "local_app", recorded)
        args = ["--api-url", "local", "--local-db", str(Path(tmp) / "hub.sqlite3")]
        args += ["apply", str(root), "--yes"]
        for name in sorted(overrides):
            args += ["--override-policy", name]
        code = run(args)
        _, err = capsys.readouterr()
    seen = [request for log in logs for request in log.requests]
    methods = [method for method, _ in seen]
    refused = _refused(sessions, overrides)
    event("refused" if refused else "applied")
    if refused:
        assert code == 3, err
        assert "refused by policy" in err
        assert set(methods) == {"GET"}, seen
    else:
        assert code == 0, err
        assert methods.count("POST") == len(sessions)
