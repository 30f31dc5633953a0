"""Renderers: exact text, colour only when asked, JSON validated by the schema, Markdown."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from golden_util import assert_golden
from jsonschema import Draft202012Validator
from planner_fixtures import desired, project, remote_for, sample_plan_inputs

from reconciler.model import Action, ActionResult, ApplyReport, Plan
from reconciler.planfile import plan_from_dict, plan_schema, plan_to_dict
from reconciler.planner import plan
from reconciler.render import (
    render_plan_markdown,
    render_plan_text,
    render_report_text,
    report_to_dict,
)


@pytest.fixture
def sample() -> Plan:
    proj, ds, observed, details = sample_plan_inputs()
    result = plan(proj, ds, observed, details=details, commit="0123abc")
    return dataclasses.replace(result, endpoint="local")


def validate(document: object) -> None:
    Draft202012Validator(plan_schema()).validate(document)


def test_text_exact(sample: Plan) -> None:
    assert render_plan_text(sample, color=False) == (
        "Project platform, org org_test, endpoint local\n"
        "\n"
        "  + api-fix: create (declared, not on the hub)\n"
        '      task: "Fix the flaky API test"\n'
        '      label: "Triage"\n'
        '      agent: "claude-code"\n'
        '      visibility: "organization"\n'
        '      tags: ["triage"]\n'
        '      repo: {"branch": "main", "fullName": "acme/api"}\n'
        "      env: GITHUB_TOKEN (sensitive)\n"
        '      metadata: {"team": "platform"}\n'
        "  ~ docs-bot [codesess_docs]: update (manifest: label; drift: tags)\n"
        '      label: "Docs" -> "Docs bot"\n'
        "      tags: + new, - old\n"
        "-/+ nightly [codesess_nightly]: replace, then archive the old session "
        "(create-only fields changed: task, env)\n"
        '      task: "Triage issues" -> "Triage every issue"\n'
        "      env: + B, - A (sensitive)\n"
        "  - old-report [codesess_old]: archive (no longer declared)\n"
        "  > worker [codesess_worker]: resume (paused)\n"
        "\n"
        "Plan: 1 to create, 1 to update, 1 to replace, 1 to resume, 1 to archive, 0 to delete.\n"
    )
    assert_golden("sample_plan.txt", render_plan_text(sample, color=False))


def test_colour_only_when_asked(sample: Plan) -> None:
    plain = render_plan_text(sample, color=False)
    coloured = render_plan_text(sample, color=True)
    assert "\x1b[" not in plain
    assert "\x1b[32m  +\x1b[0m api-fix" in coloured
    assert "\x1b[35m-/+\x1b[0m nightly" in coloured


def test_no_changes_message() -> None:
    d = desired("alpha")
    result = plan(project(), [d], [remote_for(d, "s1")])
    assert render_plan_text(result) == (
        "Project platform, org org_test\n"
        "\n"
        "No changes. The hub matches the manifests (1 managed session).\n"
    )
    assert "**No changes." in render_plan_markdown(result)
    validate(plan_to_dict(result))


def test_env_values_never_rendered() -> None:
    d = desired("alpha", env={"SECRET": "literal-canary-value"})
    result = plan(project(), [d], [])
    for out in (
        render_plan_text(result),
        render_plan_markdown(result),
        json.dumps(plan_to_dict(result)),
    ):
        assert "literal-canary-value" not in out
        assert "(sensitive)" in out


def test_json_golden_and_schema(sample: Plan) -> None:
    document = plan_to_dict(sample)
    validate(document)
    assert_golden("sample_plan.json", json.dumps(document, indent=2, sort_keys=True) + "\n")
    assert document["summary"]["text"] == sample.summary()
    assert [a["kind"] for a in document["actions"]] == [
        "create",
        "update",
        "replace",
        "archive",
        "resume",
    ]


def test_json_round_trip_unmasked(sample: Plan) -> None:
    assert plan_from_dict(plan_to_dict(sample, mask_env=False)) == sample


def test_markdown_golden(sample: Plan) -> None:
    md = render_plan_markdown(sample)
    assert md.count("<details>") == len(sample.actions)
    assert "| `-/+` | replace | 1 |" in md
    assert_golden("sample_plan.md", md)


def test_markdown_is_cut_under_the_limit() -> None:
    ds = [desired(f"s{i:04d}", task="x" * 400) for i in range(400)]
    result = plan(project(), ds, [])
    md = render_plan_markdown(result)
    assert len(md) < 60_000
    assert "**Cut:**" in md
    shown = md.count("<details>")
    assert 0 < shown < 400
    assert f"{400 - shown} of 400 actions are not shown" in md
    assert result.summary() in md


def test_markdown_fence_survives_backticks() -> None:
    d = desired("alpha", task="run ```rm``` carefully")
    md = render_plan_markdown(plan(project(), [d], []))
    assert "````text" in md


def test_report_text_and_dict() -> None:
    create = Action(kind="create", name="alpha", reason="new")
    archive = Action(kind="archive", name="beta", session_id="s2")
    report = ApplyReport(
        results=(
            ActionResult(create, "succeeded", session_id="s1", duration_s=0.25),
            ActionResult(archive, "failed", duration_s=1.0, error="HTTP 500"),
        ),
        interrupted=True,
    )
    assert render_report_text(report) == (
        "  + alpha: create succeeded (s1, 0.2s)\n"
        "  - beta: archive failed (s2, 1.0s): HTTP 500\n"
        "\n"
        "Apply: 1 succeeded, 0 adopted, 1 failed, 0 skipped, 0 noop.\n"
        "Interrupted: actions not yet started were skipped.\n"
    )
    document = report_to_dict(report)
    assert document["summary"]["failed"] == 1
    assert document["results"][0]["sessionId"] == "s1"


BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
RAW_CONTROLS = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]"
)


@pytest.mark.parametrize("kind", ["create", "update"])
def test_bidi_and_control_characters_are_escaped_in_text_and_markdown(kind: str) -> None:
    label = "Deploy \u202egnp.exe\u202c now"
    tag = "ok\u2066\x1b[31mred\u2069"
    d = desired("alpha", label=label, tags=[tag, BIDI])
    own = d.marker_tag(project().name)
    observed = [remote_for(d, "s\u202e1", label="Old", tags=["x\x85", own])]
    observed = observed if kind == "update" else []
    result = dataclasses.replace(plan(project(), [d], observed), endpoint="local\u200f")
    text = render_plan_text(result) + render_plan_text(result, color=True).replace("\x1b[", "")
    markdown = render_plan_markdown(result)
    for out in (text, markdown):
        assert not RAW_CONTROLS.search(out), repr(out)
        assert "\\u202egnp.exe\\u202c" in out
        assert "\\u2066\\u001b[31mred\\u2069" in out
        assert "local\\u200f" in out
    if kind == "update":
        assert "s\\u202e1" in text and "- x\\u0085" in text


def test_report_text_escapes_what_the_hub_said() -> None:
    archive = Action(kind="archive", name="beta", session_id="s\u202e2")
    report = ApplyReport(results=(ActionResult(archive, "failed", error="no \u2067such\x1b[2J"),))
    out = render_report_text(report)
    assert not RAW_CONTROLS.search(out)
    assert "s\\u202e2" in out and "no \\u2067such\\u001b[2J" in out


def test_a_plan_against_a_hub_always_names_its_organisation(sample: Plan) -> None:
    unnamed = dataclasses.replace(sample, org_id=None, endpoint="https://api.test")
    text = render_plan_text(unnamed)
    assert text.splitlines()[0] == (
        "Project platform, the token's organisation, endpoint https://api.test"
    )
    markdown = render_plan_markdown(unnamed)
    assert "the token's organisation · endpoint `https://api.test` · commit `0123abc`" in markdown
    # A plan made without a hub (a library caller's) has neither to name.
    alone = dataclasses.replace(sample, org_id=None, endpoint=None)
    assert render_plan_text(alone).splitlines()[0] == "Project platform"


def test_texts_alike_on_screen_but_not_in_code_points_are_shown_escaped() -> None:
    # A file saved by another editor (NFD): the task is replaced, and the plan must show
    # why, not "Résumé" -> "Résumé".
    import unicodedata

    from reconciler.model import FieldChange
    from reconciler.render.text import _change_line

    nfc = "Résumé the café work"
    nfd = unicodedata.normalize("NFD", nfc)
    line = _change_line(FieldChange("task", before=nfc, after=nfd))
    assert line == (
        'task: "R\\u00e9sum\\u00e9 the caf\\u00e9 work" -> '
        '"Re\\u0301sume\\u0301 the cafe\\u0301 work" (the same text in another Unicode form)'
    )
    tags = _change_line(FieldChange("tags", added=(nfd, "new"), removed=(nfc,)))
    assert '+ "Re\\u0301sume\\u0301' in tags and "+ new" in tags
    assert tags.endswith("(the same text in another Unicode form)")
    assert _change_line(FieldChange("label", before="Café", after="Cafe")) == (
        'label: "Café" -> "Cafe"'
    )
