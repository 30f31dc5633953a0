"""Saved plans: round trip, checksum, schema, format version, and no secret values."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import pytest
from planner_fixtures import desired, project, sample_plan_inputs

from reconciler.errors import PlanFileError, UsageError
from reconciler.model import Plan
from reconciler.planfile import (
    PlanInputs,
    SavedPlan,
    checksum,
    credential_difference,
    credential_fingerprint,
    first_difference,
    read_plan,
    read_saved_plan,
    validate_plan_document,
    write_plan,
)
from reconciler.planner import plan


def sample() -> Plan:
    proj, ds, observed, details = sample_plan_inputs()
    result = plan(proj, ds, observed, details=details, commit="0123abc")
    return dataclasses.replace(result, endpoint="http://127.0.0.1:8787", org_id="org_x")


def test_round_trip(tmp_path: Path) -> None:
    p = sample()
    path = tmp_path / "plans" / "plan.json"
    digest = write_plan(p, path)
    assert digest.startswith("sha256:")
    assert read_plan(path) == p
    document = json.loads(path.read_text())
    validate_plan_document(document)
    assert document["checksum"] == digest == checksum(document)
    assert (document["endpoint"], document["org"], document["project"]) == (
        "http://127.0.0.1:8787",
        "org_x",
        "platform",
    )
    assert all("precondition" in a for a in document["actions"])
    assert path.stat().st_mode & 0o077 == 0


def test_left_out_round_trips_and_older_plans_without_it_still_read(tmp_path: Path) -> None:
    targeted = dataclasses.replace(sample(), left_out=2)
    path = tmp_path / "plan.json"
    write_plan(targeted, path)
    assert read_plan(path).left_out == 2
    # A plan saved before `leftOut` existed: no such member, its own checksum.
    document = json.loads(path.read_text())
    del document["leftOut"]
    document["checksum"] = checksum(document)
    path.write_text(json.dumps(document))
    assert read_plan(path) == dataclasses.replace(targeted, left_out=0)


def test_create_bodies_keep_references_unresolved(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(sample(), path)
    create = json.loads(path.read_text())["actions"][0]
    assert create["body"]["env"] == {"GITHUB_TOKEN": "${env:GITHUB_TOKEN}"}


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(sample(), path)
    document = json.loads(path.read_text())
    document["actions"][0]["body"]["task"] = "something else"
    path.write_text(json.dumps(document))
    with pytest.raises(PlanFileError, match="checksum"):
        read_plan(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"formatVersion": 99}', "format version 99"),
        ("{}", r"not a plan `reconciler plan --out` wrote \(no formatVersion\)"),
        ('{"formatVersion": 1}', "no checksum"),
    ],
)
def test_bad_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(PlanFileError, match=message):
        read_plan(path)


def test_schema_checked_even_with_a_matching_checksum(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(sample(), path)
    document = json.loads(path.read_text())
    document["actions"][0]["kind"] = "explode"
    document["checksum"] = checksum(document)
    path.write_text(json.dumps(document))
    with pytest.raises(PlanFileError, match="schema"):
        read_plan(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        read_plan(tmp_path / "nope.json")


def test_resolved_values_never_reach_the_file(tmp_path: Path) -> None:
    # The planner compares resolved values; the file must hold only what was written.
    canary = "canary-9f2c1e-resolved"
    spec_ref = "${env:LABEL_VALUE}"
    d = desired("alpha", label=spec_ref, env={"TOKEN": "${env:CANARY_TOKEN}"})
    d = dataclasses.replace(d, resolved={**d.spec, "label": spec_ref, "env": {"TOKEN": canary}})
    path = tmp_path / "plan.json"
    write_plan(plan(project(), [d], []), path)
    text = path.read_text()
    assert canary not in text
    assert "${env:CANARY_TOKEN}" in text


# -- what apply --plan checks: what the plan was made from, and the first difference ----


def test_inputs_round_trip_and_a_file_without_them_cannot_be_applied(tmp_path: Path) -> None:
    inputs = PlanInputs(
        paths=("sessions/",),
        project_name="platform",
        targets=("api-fix",),
        excludes=("nightly",),
        selectors=("tag=docs",),
        replace=("worker",),
        destroy=True,
    )
    path = tmp_path / "plan.json"
    written = write_plan(sample(), path, inputs)
    assert written.startswith("sha256:") and len(written) == len("sha256:") + 64
    assert read_saved_plan(path) == SavedPlan(sample(), inputs, written)
    document = json.loads(path.read_text())
    validate_plan_document(document)
    del document["inputs"]  # as `plan --out` wrote it before it recorded them
    document["checksum"] = checksum(document)
    path.write_text(json.dumps(document))
    assert read_plan(path) == sample()  # `show` still reads it
    with pytest.raises(PlanFileError, match="does not record what it was made from"):
        read_saved_plan(path)


def _edited(p: Plan, index: int, **changes: object) -> Plan:
    actions = list(p.actions)
    actions[index] = dataclasses.replace(actions[index], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(p, actions=tuple(actions))


@pytest.mark.parametrize(
    ("saved", "expected"),
    [
        (sample(), None),
        (
            dataclasses.replace(sample(), endpoint="local (.reconciler/hub.sqlite3)"),
            "it was made against local (.reconciler/hub.sqlite3), and this run is against "
            "http://127.0.0.1:8787",
        ),
        (
            dataclasses.replace(sample(), org_id=None),
            "it was made for the token's organisation, and this run is for org org_x",
        ),
        (
            dataclasses.replace(sample(), project="other"),
            "it was made for project other, and the manifests are project platform",
        ),
        (
            _edited(sample(), 0, body={**(sample().actions[0].body or {}), "label": "pwned"}),
            "its action 1, `create api-fix`, differs from a fresh plan's in body.label",
        ),
        (
            _edited(sample(), 1, precondition="0" * 16),
            "its action 2, `update docs-bot`, differs from a fresh plan's in precondition",
        ),
        (
            _edited(sample(), 1, kind="archive"),
            "its action 2 is `archive docs-bot`, where a fresh plan would `update docs-bot`",
        ),
        (
            dataclasses.replace(sample(), actions=sample().actions[:-1]),
            f"a fresh plan would also `{sample().actions[-1].kind} {sample().actions[-1].name}`, "
            "which it does not hold",
        ),
        (
            dataclasses.replace(sample(), actions=(*sample().actions, sample().actions[0])),
            f"its action {len(sample().actions) + 1}, `create api-fix`, is not in a fresh plan "
            f"({len(sample().actions)} actions now: applied already?)",
        ),
    ],
)
def test_first_difference(saved: Plan, expected: str | None) -> None:
    assert first_difference(saved, sample()) == expected


def test_an_action_more_or_less_is_named_wherever_it_falls() -> None:
    # Compared pair by pair, a plan partly applied (its first action done) was told as
    # "its action 1 is `create a`, where a fresh plan would `create b`", and a session
    # changed since (an action more in the middle) by the pair where it fell.
    full = sample()
    assert len(full.actions) >= 3
    first, middle = full.actions[0], full.actions[1]
    partly = dataclasses.replace(full, actions=full.actions[1:])
    assert first_difference(full, partly) == (
        f"its action 1, `{first.kind} {first.name}`, is not in a fresh plan "
        f"({len(partly.actions)} actions now: applied already?)"
    )
    without = dataclasses.replace(full, actions=(first, *full.actions[2:]))
    assert first_difference(without, full) == (
        f"a fresh plan would also `{middle.kind} {middle.name}`, which it does not hold"
    )


def test_commit_and_counts_are_not_actions() -> None:
    fresh = sample()
    moved = dataclasses.replace(fresh, commit="fedcba9", managed_count=99, left_out=3)
    assert first_difference(moved, fresh) is None


def test_the_token_fingerprint_is_salted_slow_and_checks_the_token() -> None:
    token = "canary-token-4b1e9d77aa"  # noqa: S105 - a test value
    first, second = credential_fingerprint(token), credential_fingerprint(token)
    assert first is not None and second is not None
    # Salted: two plans made with one token do not show it (CI keeps plans as artifacts).
    assert first != second and first.startswith("pbkdf2-sha256:")
    assert token not in first
    assert credential_difference(first, token) is None
    assert credential_difference(second, token) is None
    assert credential_difference(first, token + "x") is not None
    assert credential_difference(first, None) is not None
    assert credential_difference(None, token) is not None
    assert credential_difference(None, None) is None
    # A plan an older version wrote (unsalted) is still read, and still checked.
    legacy = (
        "sha256:"
        + hashlib.sha256(b"coder-reconciler saved plan credential\0" + token.encode()).hexdigest()[
            :16
        ]
    )
    assert credential_difference(legacy, token) is None
    assert credential_difference(legacy, "another-token-1234") is not None
    # A fingerprint changed by hand matches no token.
    forged = first[:-1] + ("0" if first[-1] != "0" else "1")
    assert credential_difference(forged, token) is not None
    assert credential_difference("md5:whatever", token) is not None


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("{" + '"formatVersion": 1, "x": ' + "[" * 200_000 + "]" * 200_000 + "}", "too deeply"),
        ('{"formatVersion": 1, "checksum": "sha256:00", "x": "\\ud800"}', "holds text no plan"),
        ("{not json", "is not JSON"),
    ],
    ids=["deep", "lone-surrogate", "not-json"],
)
def test_a_file_no_plan_could_be_is_refused_as_a_file_never_a_crash(
    tmp_path: Path, text: str, said: str
) -> None:
    """Refused with exit 4 as a file not to trust (`PlanFileError`): nesting deeper than
    the parser's recursion, or text no JSON encoder writes back (a lone surrogate), were a
    traceback and a misleading 'not UTF-8' usage error."""
    path = tmp_path / "plan.json"
    path.write_text(text, encoding="ascii")
    with pytest.raises(PlanFileError) as refused:
        read_saved_plan(path)
    assert said in str(refused.value)
    assert refused.value.exit_code == 4


def test_a_plan_file_that_is_not_a_regular_file_is_refused_without_waiting(
    tmp_path: Path,
) -> None:
    """A FIFO with no writer blocked the open, one whose writer never finishes (or a
    device: `/dev/zero`) the read, inside the event loop, past every signal: `apply
    --plan FIFO` ignored SIGTERM. Refused at once (64), saying to give a file."""
    fifo = tmp_path / "plan.fifo"
    os.mkfifo(fifo)
    read_end, write_end = os.pipe()  # a writer holding it open, as `<(sleep 8)` does
    try:
        for path in (fifo, f"/dev/fd/{read_end}", "/dev/zero", tmp_path):
            for read in (read_saved_plan, read_plan):
                with pytest.raises(UsageError, match="cannot read saved plan") as refused:
                    read(path)
                assert refused.value.exit_code == 64
                assert path == tmp_path or "not a regular file" in str(refused.value)
    finally:
        os.close(read_end)
        os.close(write_end)
