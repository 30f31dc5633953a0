"""A changed long text is a word diff, in plans (text and Markdown)."""

from __future__ import annotations

from reconciler.model import Action, FieldChange, Plan
from reconciler.render import render_plan_markdown, render_plan_text
from reconciler.render.worddiff import is_long_text, word_diff

BEFORE = (
    "Triage every issue opened in acme/api since yesterday: label it, link duplicates, "
    "and ask for a reproduction when one is missing."
)
AFTER = BEFORE.replace("yesterday", "last week").replace("missing.", "missing or unclear.")


def test_word_diff_marks_only_the_changed_words() -> None:
    assert word_diff(BEFORE, AFTER) == (
        "… opened in acme/api since [-yesterday:-] {+last week:+} label it, link "
        "duplicates, … reproduction when one is [-missing.-] {+missing or unclear.+}"
    )
    assert word_diff("one two", "one three") == "one [-two-] {+three+}"
    assert word_diff("a  b", "a b") == "(whitespace only)"
    assert word_diff("", "new words") == "{+new words+}"


def test_only_long_strings_are_word_diffed() -> None:
    assert is_long_text(BEFORE, AFTER)
    assert not is_long_text("short", "also short")
    assert not is_long_text(BEFORE, None)
    assert not is_long_text(["x" * 80], ["y" * 80])


def test_plans_show_a_changed_task_as_a_word_diff() -> None:
    action = Action(
        kind="replace",
        name="triage",
        reason="create-only fields changed: task",
        session_id="codesess_1",
        changes=(FieldChange("task", before=BEFORE, after=AFTER),),
        replace_with="archive",
    )
    plan = Plan(project="demo", actions=(action,))
    text = render_plan_text(plan)
    assert f"      task: {word_diff(BEFORE, AFTER)}\n" in text
    assert BEFORE not in text
    assert word_diff(BEFORE, AFTER) in render_plan_markdown(plan)
    short = Plan(
        project="demo",
        actions=(Action(kind="update", name="t", session_id="s", changes=(
            FieldChange("label", before="Old", after="New"),)),),
    )  # fmt: skip
    assert '      label: "Old" -> "New"\n' in render_plan_text(short)
