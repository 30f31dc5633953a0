"""Phases and the progress text: exact lines."""

from __future__ import annotations

from reconciler.applier.steps import build_phases
from reconciler.model import Action, ActionResult, ApplyReport
from reconciler.render.progress import format_bar, format_result, format_summary


def test_replacement_spans_the_create_and_archive_phases() -> None:
    actions = (
        Action("delete", "d", session_id="1"),
        Action("replace", "r", session_id="2", replace_with="archive"),
        Action("replace", "q", session_id="3", replace_with="delete"),
        Action("resume", "p", session_id="4"),
        Action("update", "u", session_id="5"),
        Action("create", "c"),
    )
    phases = build_phases(actions)
    as_pairs = [[(s.index, s.operation, s.last) for s in phase] for phase in phases]
    assert as_pairs == [
        [(1, "create", False), (2, "create", False), (5, "create", True)],
        [(3, "resume", True), (4, "update", True)],
        [(1, "archive", True)],
        [(0, "delete", True), (2, "delete", True)],
    ]


def test_result_lines() -> None:
    create = Action("create", "nightly-triage")
    assert (
        format_result(ActionResult(create, "succeeded", "codesess_9f2", 0.42), 3, 40)
        == "[3/40] + nightly-triage created codesess_9f2 0.4s"
    )
    assert (
        format_result(ActionResult(create, "adopted", "codesess_9f2", 1.0), 4, 40)
        == "[4/40] + nightly-triage created (adopted after a lost answer) codesess_9f2 1.0s"
    )
    assert (
        format_result(ActionResult(create, "failed", None, 0.0, "HTTP 400"), 5, 40)
        == "[5/40] + nightly-triage FAILED: HTTP 400 0.0s"
    )
    archive = Action("archive", "old", session_id="codesess_1")
    assert (
        format_result(ActionResult(archive, "noop", "codesess_1", 0.1), 6, 40)
        == "[6/40] - old already archived codesess_1 0.1s"
    )
    replace = Action("replace", "r", session_id="codesess_1")
    assert (
        format_result(ActionResult(replace, "skipped", "codesess_1", 0, "skipped: x"), 7, 40)
        == "[7/40] -/+ r skipped: x 0.0s"
    )


def test_bar_and_summary() -> None:
    assert format_bar(0, 4, width=8) == "[........] 0/4"
    assert format_bar(3, 4, width=8) == "[######..] 3/4"
    assert format_bar(0, 0, width=4) == "[####] 0/0"
    a = Action("create", "a")
    report = ApplyReport(
        (
            ActionResult(a, "succeeded"),
            ActionResult(a, "adopted"),
            ActionResult(a, "failed"),
            ActionResult(a, "skipped"),
        )
    )
    assert format_summary(report, 2.04) == (
        "Apply finished with failures: 1 succeeded, 1 adopted, 1 failed, 1 skipped "
        "(4 actions, 2.0s)."
    )
    assert format_summary(ApplyReport((), interrupted=True), 0) == (
        "Apply interrupted: 0 succeeded, 0 failed, 0 skipped (0 actions, 0.0s)."
    )


def test_a_hub_error_with_control_and_bidi_characters_is_escaped() -> None:
    # The error text comes from the network: printed raw, it could reorder the line.
    action = Action("update", "alpha", session_id="s1")
    result = ActionResult(action, "failed", error="bad \u202eeulav\x1b[2J")
    line = format_result(result, 1, 1)
    assert "\u202e" not in line and "\x1b" not in line
    assert "\\u202e" in line and "\\u001b" in line
