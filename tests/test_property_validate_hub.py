"""What `validate` accepts, the hub accepts; `validate` and `plan` agree on every input.

Manifest sets are drawn around the hub's rules (reconciler.apifacts): blank and missing
tasks, defaults that fill or spoil a field, loop settings in standard mode, empty skill
ids, iteration counts at the edge, metadata nested near the depth limit, tasks near the
body-size limit. Each set goes through `validate`, `plan` and, when valid, `apply`
against the embedded hub in-process: no create may come back 400 or 413.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from clihub import invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.apifacts import (
    BODY_ALLOWANCE_BYTES,
    MAX_BODY_BYTES,
    MAX_BODY_DEPTH,
    MAX_ITERATIONS,
    VISIBILITIES,
    VISIBILITY_ALIASES,
    WORKFLOW_MODES,
)

TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from(" \t\n\u3000"),
    max_size=12,
)
BLANKISH = st.sampled_from(["", " ", "\t", "\n \n", "\u3000", "\u00a0"])
SIZE_EDGE = MAX_BODY_BYTES - BODY_ALLOWANCE_BYTES


def test_the_allowance_covers_what_the_tool_adds_to_a_create_body() -> None:
    from reconciler.planner.body import RECORD_BUDGET_BYTES

    # The record of the declared form, plus the lineage (a source path of up to 4 KiB,
    # names, commit, replaced id), the lifecycle and the marker tag.
    assert RECORD_BUDGET_BYTES + 8 * 1024 <= BODY_ALLOWANCE_BYTES


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


@st.composite
def task(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["text", "text", "text", "blank", "missing", "big"]))
    if kind == "text":
        return draw(TEXT)
    if kind == "blank":
        return draw(BLANKISH)
    if kind == "big":
        return "x" * (SIZE_EDGE + draw(st.integers(-600, 200)))
    return None


@st.composite
def spec(draw: st.DrawFn, *, defaults: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not defaults or draw(st.booleans()):
        value = draw(task())
        if value is not None:
            out["task"] = value
    if draw(st.booleans()):
        out["label"] = draw(TEXT)
    if draw(st.booleans()):
        out["agent"] = draw(TEXT)
    if draw(st.booleans()):
        out["visibility"] = draw(st.sampled_from([*VISIBILITIES, *VISIBILITY_ALIASES]))
    if draw(st.booleans()):
        out["workflowMode"] = draw(st.sampled_from(WORKFLOW_MODES))
    if draw(st.booleans()):
        loop: dict[str, Any] = {}
        if draw(st.booleans()):
            loop["maxIterations"] = draw(
                st.sampled_from([1, 7, MAX_ITERATIONS, MAX_ITERATIONS + 1, 2**63])
            )
        if draw(st.booleans()):
            loop["goal"] = draw(TEXT)
        out["loop"] = loop
    if draw(st.booleans()):
        out["tags"] = draw(
            st.lists(
                TEXT.filter(lambda t: not t.startswith("reconciler:")), max_size=3, unique=True
            )
        )
    if draw(st.booleans()):
        out["skills"] = draw(
            st.lists(
                st.fixed_dictionaries({"skillId": TEXT, "repo": TEXT}),
                max_size=2,
            )
        )
    if draw(st.booleans()):
        depth = draw(
            st.sampled_from([0, 1, 5, MAX_BODY_DEPTH - 2, MAX_BODY_DEPTH - 1, MAX_BODY_DEPTH + 3])
        )
        out["metadata"] = {"m": nested(depth)}
    if draw(st.booleans()):
        out["env"] = {"A": draw(TEXT)}
    return out


@st.composite
def manifests(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    project: dict[str, Any] = {"apiVersion": "reconciler/v1", "kind": "Project", "name": "prop"}
    if draw(st.booleans()):
        project["defaults"] = draw(spec(defaults=True))
    count = draw(st.integers(1, 3))
    sessions = [
        {
            "apiVersion": "reconciler/v1",
            "kind": "Session",
            "name": f"s{i}",
            "spec": draw(spec()),
        }
        for i in range(count)
    ]
    return project, sessions


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return invoke(capsys, *args)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(manifests())
def test_validate_accepts_only_what_the_hub_accepts(
    capsys: pytest.CaptureFixture[str], drawn: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    project, sessions = drawn
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "m"
        folder.mkdir()
        (folder / "project.yaml").write_text(yaml.safe_dump(project, allow_unicode=True))
        (folder / "sessions.yaml").write_text(
            yaml.safe_dump_all(sessions, allow_unicode=True, width=2**20)
        )
        hub = ["--api-url", "local", "--local-db", str(Path(tmp) / "hub.sqlite3")]
        valid, _, valid_err = _run(capsys, "validate", str(folder))
        planned, _, plan_err = _run(capsys, *hub, "plan", str(folder))
        assert valid in (0, 65) and planned in (0, 65), (valid_err, plan_err)
        assert valid == planned, (valid_err, plan_err)
        if valid != 0:
            assert "error: " in valid_err and "Traceback" not in valid_err + plan_err
            return
        applied, out, err = _run(capsys, *hub, "apply", "--yes", "--format", "json", str(folder))
        assert applied == 0, err
        report = json.loads(out)
        failed = [r for r in report["results"] if r["outcome"] != "succeeded"]
        assert failed == [], failed
