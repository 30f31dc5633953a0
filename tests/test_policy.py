"""kind: Policy: CEL rules checked by validate (offline), plan and apply; overrides.

Through the CLI against the embedded hub (a SQLite file per test), asserting exit codes
and the lines users read.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli.main import run
from reconciler.model import DesiredSession, Plan, PolicyFinding, SourceLocation
from reconciler.planfile import plan_from_dict, plan_to_dict, validate_plan_document
from reconciler.policy.variables import Judged, session_value, spec_fields

PROJECT = "apiVersion: reconciler/v1\nkind: Project\nname: pol\n"
LOOP = (
    "apiVersion: reconciler/v1\nkind: Session\nname: {name}\nspec:\n"
    "  task: t {name}\n  label: L {name}\n  tags: {tags}\n"
    "  loop: {{goal: g, maxIterations: {n}}}\n"
)
BUDGET = """apiVersion: reconciler/v1
kind: Policy
name: loop-budget
spec:
  action: {action}
  overridable: {overridable}
  rules:
    - expression: "!has(session.spec.loop) || session.spec.loop.maxIterations <= 50"
      message: loops run at most 50 iterations
      messageExpression: "session.name + ' loops ' + string(session.spec.loop.maxIterations)"
"""


def _policy(name: str, expression: str, *, extra: str = "", scope: str = "session") -> str:
    return (
        f"apiVersion: reconciler/v1\nkind: Policy\nname: {name}\nspec:\n  scope: {scope}\n"
        f"{extra}  rules:\n    - expression: '{expression}'\n"
    )


class Repo:
    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = tmp_path / "m"
        self.root.mkdir()
        (self.root / "project.yaml").write_text(PROJECT)
        self.db = tmp_path / "hub.sqlite3"
        self.capsys = capsys

    def write(self, name: str, *docs: str) -> Path:
        path = self.root / name
        path.write_text("---\n".join(docs))
        return path

    def run(self, *args: str, hub: bool = True) -> tuple[int, str, str]:
        self.capsys.readouterr()
        prefix = ["--api-url", "local", "--local-db", str(self.db)] if hub else []
        code = run([*prefix, *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def requests(self) -> int:
        """Sessions on the hub (the database exists only once a request was served)."""
        if not self.db.exists():
            return 0
        with sqlite3.connect(self.db) as db:
            return int(db.execute("select count(*) from sessions").fetchone()[0])

    def lineage(self) -> dict[str, dict[str, object]]:
        with sqlite3.connect(self.db) as db:
            rows = db.execute("select metadata_json from sessions").fetchall()
        records = [json.loads(r[0])["reconciler"] for r in rows]
        return {str(r["name"]): r for r in records}


@pytest.fixture
def repo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Repo:
    return Repo(tmp_path, capsys)


# -- deny and warn -------------------------------------------------------------------


def test_a_runs_env_judgments_follow_each_sessions_plain_variables() -> None:
    # One run judges each env value once; the same text is secret or not by the
    # Project's plainEnv, which the judgment is kept under.
    env = {"CH": "${env:CH:-beta}", "PW": "hunter-${env:X}"}
    spec = {"task": "t", "env": env}
    plain = DesiredSession("a", spec, spec, plain_env=frozenset({"CH"}))
    secret = DesiredSession("b", spec, spec)
    judged: Judged = {}
    shown = [session_value(d, None, judged)["spec"]["env"] for d in (plain, secret)]
    assert shown == [
        {"CH": "${env:CH:-beta}", "PW": "(sensitive)"},
        {"CH": "(sensitive)", "PW": "(sensitive)"},
    ]
    assert shown == [session_value(d)["spec"]["env"] for d in (plain, secret)]
    assert len(judged) == 4


def test_a_deny_refuses_plan_and_apply_with_exit_3_naming_policy_rule_and_session(
    repo: Repo,
) -> None:
    repo.write("policies.yaml", BUDGET.format(action="deny", overridable="false"))
    repo.write(
        "sessions.yaml",
        LOOP.format(name="ok", tags="[a]", n=20),
        LOOP.format(name="greedy", tags="[a]", n=60),
    )
    code, out, err = repo.run("plan", str(repo.root))
    assert code == 3
    root = repo.root
    expected = (
        f"error: refused by policy loop-budget ({root}/policies.yaml:8): greedy loops 60: "
        f"greedy ({root}/sessions.yaml:10) (--force cannot lift it)"
    )
    assert expected in err.splitlines()
    # The refused plan is still shown, its findings under the summary.
    assert (
        f"  deny loop-budget ({root}/policies.yaml:8): greedy ({root}/sessions.yaml:10): "
        "greedy loops 60" in out.splitlines()
    )
    # The Markdown plan opens with it, counted as a refusal (not as a safety rule).
    code, out, _ = repo.run("plan", str(repo.root), "--format", "markdown")
    assert code == 3 and "**Refused: apply would stop here (1 refusal).**" in out
    for command in (["plan", "--force"], ["apply", "--yes", "--force"]):
        code, _, err = repo.run(*command, str(repo.root))
        assert code == 3, err
    assert repo.requests() == 0


def test_a_warn_is_shown_in_text_markdown_and_json_and_keeps_the_exit_code(repo: Repo) -> None:
    repo.write("policies.yaml", BUDGET.format(action="warn", overridable="false"))
    repo.write("sessions.yaml", LOOP.format(name="greedy", tags="[a]", n=60))
    code, out, _ = repo.run("plan", str(repo.root))
    assert code == 0
    assert "Policies: 1 warn" in out
    assert "  warn loop-budget (" in out
    code, out, _ = repo.run("plan", str(repo.root), "--format", "markdown")
    assert code == 0 and "**Policies: 1 warn**" in out and "- `warn loop-budget (" in out
    code, out, _ = repo.run("plan", str(repo.root), "--format", "json")
    document = json.loads(out)
    validate_plan_document(document)
    [finding] = document["policyFindings"]
    assert finding["action"] == "warn" and finding["session"] == "greedy"
    assert finding["message"] == "greedy loops 60"
    assert finding["rule"]["line"] == 8 and finding["sessionSource"]["line"] == 1
    code, _, err = repo.run("apply", str(repo.root), "--yes")
    assert code == 0, err
    assert repo.requests() == 1
    # What a message holds shows as written, never rendered: a code span.
    repo.write(
        "policies.yaml",
        BUDGET.format(action="warn", overridable="false")
        .replace("loops run at most 50 iterations", "see ![x](https://evil.example/x.png) @team")
        .split("      messageExpression")[0],
    )
    code, out, _ = repo.run("plan", str(repo.root), "--format", "markdown")
    [line] = [x for x in out.splitlines() if "evil" in x]
    assert line.startswith("- `warn loop-budget (") and line.endswith("`"), line


def test_a_plan_scope_rule_sees_counts_and_the_tags_of_archived_sessions(repo: Repo) -> None:
    creates = _policy("max-creates", "plan.counts.creates <= 2", scope="plan")
    prod = _policy(
        "keep-prod",
        'plan.archives.all(a, !("prod" in a.tags)) && size(plan.deletes) == 0',
        scope="plan",
    )
    repo.write("policies.yaml", creates, prod)
    three = [LOOP.format(name=f"s{i}", tags="[a]", n=1) for i in range(3)]
    repo.write("sessions.yaml", *three)
    code, _, err = repo.run("apply", str(repo.root), "--yes")
    assert code == 3
    assert "refused by policy max-creates" in err and ": the plan (--force" in err
    assert repo.requests() == 0

    repo.write("sessions.yaml", three[0], LOOP.format(name="p", tags="[prod]", n=1))
    code, _, err = repo.run("apply", str(repo.root), "--yes")
    assert code == 0, err
    repo.write("sessions.yaml", three[0])  # p is no longer declared: prune archives it
    code, out, err = repo.run("plan", str(repo.root))
    assert code == 3
    assert "- p [" in out and "refused by policy keep-prod" in err


def test_live_and_change_are_what_the_hub_holds_and_what_the_plan_does(repo: Repo) -> None:
    rule = (
        'change == null || change.kind != "update" || !("label" in change.fields) || '
        'live.label.startsWith("L ")'
    )
    repo.write("policies.yaml", _policy("label-moves", rule))
    repo.write("sessions.yaml", LOOP.format(name="s", tags="[a]", n=1))
    assert repo.run("apply", str(repo.root), "--yes")[0] == 0
    edited = LOOP.format(name="s", tags="[a]", n=1).replace("label: L s", "label: New")
    repo.write("sessions.yaml", edited)
    assert repo.run("plan", str(repo.root))[0] == 0  # live.label is "L s": allowed
    assert repo.run("apply", str(repo.root), "--yes")[0] == 0
    edited = edited.replace("label: New", "label: Newer")
    repo.write("sessions.yaml", edited)
    code, _, err = repo.run("plan", str(repo.root))
    assert code == 3 and "refused by policy label-moves" in err
    # validate has no hub: a rule reading change or live is left to plan.
    assert repo.run("validate", str(repo.root), hub=False)[0] == 0


def test_live_is_found_under_the_project_s_old_name_as_the_plan_finds_it(repo: Repo) -> None:
    # Applied under `old`; the Project is then renamed with `previously: [old]`: the
    # plan re-tags those sessions as its own, and a rule reading `live` sees them too.
    (repo.root / "project.yaml").write_text(PROJECT.replace("name: pol", "name: old"))
    repo.write("sessions.yaml", LOOP.format(name="s", tags="[a]", n=1))
    assert repo.run("apply", str(repo.root), "--yes")[0] == 0
    (repo.root / "project.yaml").write_text(PROJECT + "previously: [old]\n")
    repo.write("policies.yaml", _policy("on-the-hub", "live != null"))
    code, out, err = repo.run("plan", str(repo.root))
    assert code == 0, out + err
    assert "renamed" in out and "refused" not in err


def test_match_narrows_a_session_rule_to_names_tags_and_sets(repo: Repo) -> None:
    tagged = _policy("tagged", "false", extra="  match: {tags: [team-a]}\n")
    named = _policy("named", "false", extra="  match: {names: [n1]}\n")
    both = _policy("both", "false", extra="  match: {names: [n1], tags: [team-b]}\n")
    repo.write("policies.yaml", tagged, named, both)
    repo.write(
        "sessions.yaml",
        LOOP.format(name="n1", tags="[team-a]", n=1),
        LOOP.format(name="n2", tags="[team-a]", n=1),
        LOOP.format(name="n3", tags="[team-b]", n=1),
    )
    code, out, _ = repo.run("validate", str(repo.root), "--format", "json", hub=False)
    assert code == 3
    found = {(f["policy"], f["session"]) for f in json.loads(out)["policyFindings"]}
    assert found == {("tagged", "n1"), ("tagged", "n2"), ("named", "n1")}


def test_exclude_leaves_the_sessions_it_chooses_alone_for_good(repo: Repo) -> None:
    # A lasting, reviewed exception lives in the policy's own file: later plans, and
    # `watch`, which takes no override, are not refused for it.
    excluded = BUDGET.format(action="deny", overridable="false").replace(
        "  rules:", "  match: {tags: [a]}\n  exclude: {names: [legacy]}\n  rules:"
    )
    repo.write("policies.yaml", excluded)
    repo.write(
        "sessions.yaml",
        LOOP.format(name="legacy", tags="[a]", n=60),
        LOOP.format(name="other", tags="[b]", n=60),
    )
    for command in ("validate", "apply", "plan"):
        args = [command, str(repo.root), *(["--yes"] if command == "apply" else [])]
        code, out, err = repo.run(*args, hub=command != "validate")
        assert code == 0, (command, out + err)
    # Chosen as match chooses: every list given must match one of its entries.
    repo.write("sessions.yaml", LOOP.format(name="legacy", tags="[a]", n=60))
    repo.write(
        "policies.yaml", excluded.replace("{names: [legacy]}", "{names: [legacy], tags: [z]}")
    )
    code, _, err = repo.run("validate", str(repo.root), hub=False)
    assert code == 3 and "refused by policy loop-budget" in err and ": legacy (" in err


# -- validate: offline ---------------------------------------------------------------


def test_validate_evaluates_session_rules_offline_and_warns(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTUITY_SDK_KEY", "")
    repo.write("policies.yaml", BUDGET.format(action="warn", overridable="false"))
    repo.write("sessions.yaml", LOOP.format(name="greedy", tags="[a]", n=60))
    code, out, err = repo.run("validate", str(repo.root), hub=False)
    assert code == 0
    assert "warning: policy: warn loop-budget (" in err and out.startswith("OK:")
    repo.write("policies.yaml", BUDGET.format(action="deny", overridable="false"))
    code, out, err = repo.run("validate", str(repo.root), hub=False)
    assert code == 3 and "refused by policy loop-budget" in err
    # The JSON says what the exit code says: not valid, and why.
    code, out, err = repo.run("validate", str(repo.root), "--format", "json", hub=False)
    doc = json.loads(out)
    assert (code, doc["valid"]) == (3, False)
    assert [r["rule"].split(" (")[0] for r in doc["refusals"]] == ["policy loop-budget"]


def test_a_rule_ending_in_a_comment_never_hides_the_rule_after_it(repo: Repo) -> None:
    # Every applicable rule runs in one evaluation, joined with `&&`: a `//` comment at
    # the end of one must not comment out the join and fold the next rule into it.
    repo.write(
        "policies.yaml",
        _policy("a-harmless", "true // always holds", extra="  action: warn\n"),
        "apiVersion: reconciler/v1\nkind: Policy\nname: no-collaborate\nspec:\n"
        "  rules:\n    - expression: |-\n"
        '        session.spec.visibility != "collaborate"\n        == true\n',
    )
    repo.write(
        "sessions.yaml",
        "apiVersion: reconciler/v1\nkind: Session\nname: s1\n"
        "spec: {task: t, visibility: collaborate}\n",
    )
    code, _, err = repo.run("validate", str(repo.root), hub=False)
    assert code == 3, err
    assert "refused by policy no-collaborate" in err


# -- bad rules: located, exit 65, nothing sent ---------------------------------------


@pytest.mark.parametrize(
    ("expression", "where", "detail"),
    [
        # Line 7, the value starts at column 19 (its quote): CEL's column, mapped.
        ("session.name ==", ":7:35", "does not compile: Syntax error"),
        ("session.nme == 1 && foo(1)", ":7:43", "undeclared reference to 'foo'"),
        ("1 + 2", ":7:19", "evaluates to int, not a boolean"),
        ("session.spec.label", ":7:19", "gave str 'L s', not a boolean on session s ("),
        ("session.spec.workspaceId == 1", ":7:19", "failed (NOT_FOUND: Key not found"),
    ],
    ids=["syntax", "undeclared", "int", "string-at-runtime", "missing-key"],
)
def test_a_bad_rule_is_a_located_manifest_error(
    repo: Repo, expression: str, where: str, detail: str
) -> None:
    repo.write("policies.yaml", _policy("bad", expression))
    repo.write("sessions.yaml", LOOP.format(name="s", tags="[a]", n=1))
    for command in ("validate", "plan", "apply"):
        args = [command, str(repo.root), *(["--yes"] if command == "apply" else [])]
        code, _, err = repo.run(*args)
        assert code == 65, (command, err)
        [line] = [x for x in err.splitlines() if "policy bad" in x]
        assert line.startswith(f"error: {repo.root}/policies.yaml{where}: policy bad: "), line
        assert detail in line
    # No request at all: the hub's database is made by the first one it serves. A rule
    # failing on the declarations was found after the listing (GET) had gone out.
    assert not repo.db.exists()


@pytest.mark.parametrize(
    ("written", "where"),
    [
        # The bad call, foo(1), is on the expression's last line (9 in a block scalar),
        # its "(" (where CEL points) at column 12, however the lines are written.
        (">-\n        session.name == 'a' &&\n        foo(1)", ":9:12"),
        ("|\n        session.name == 'a' &&\n        foo(1)", ":9:12"),
        # A plain or quoted one starts on the key's line: foo(1) is on line 8.
        ("session.name == 'a' &&\n        foo(1)", ":8:12"),
        ("\"session.name == 'a' &&\n        foo(1)\"", ":8:12"),
        # Further in: the columns add up as written.
        (">-\n        session.name == 'a' &&\n        true && foo(1)", ":9:20"),
        # An escape hides the text as written: the scalar's first line and column.
        ('"session.name == \\"a\\" &&\n        foo(1)"', ":7:19"),
        # An anchor or a tag before the text: the text is placed, not them.
        ("&e \"session.name == 'a' &&\n        foo(1)\"", ":8:12"),
        ("!!str session.name == 'a' &&\n        foo(1)", ":8:12"),
        # An escape on a later line: the lines before it are still placed exactly.
        ("'(true) && foo(1) &&\n        size(''ab'') == 2'", ":7:33"),
    ],
    ids=[
        "folded",
        "literal",
        "plain",
        "double-quoted",
        "mid-line",
        "escaped",
        "anchored",
        "tagged",
        "escaped-later",
    ],
)
def test_a_bad_rule_written_across_lines_is_located_at_its_line(
    repo: Repo, written: str, where: str
) -> None:
    policy = _policy("bad", "true").replace("'true'", written)
    repo.write("policies.yaml", policy)
    repo.write("sessions.yaml", LOOP.format(name="s", tags="[a]", n=1))
    code, _, err = repo.run("validate", str(repo.root), hub=False)
    assert code == 65, err
    [line] = [x for x in err.splitlines() if "policy bad" in x]
    assert line.startswith(f"error: {repo.root}/policies.yaml{where}: policy bad: "), line
    assert "undeclared reference to 'foo'" in line


def test_a_rule_in_a_file_with_carriage_returns_only_is_located_at_its_line(repo: Repo) -> None:
    written = ">-\n        session.name == 'a' &&\n        foo(1)"
    policy = _policy("bad", "true").replace("'true'", written).replace("\n", "\r")
    (repo.root / "policies.yaml").write_bytes(policy.encode())
    repo.write("sessions.yaml", LOOP.format(name="s", tags="[a]", n=1))
    code, _, err = repo.run("validate", str(repo.root), hub=False)
    assert code == 65, err
    [line] = [x for x in err.splitlines() if "policy bad" in x]
    assert line.startswith(f"error: {repo.root}/policies.yaml:9:12: policy bad: "), line


def test_a_rule_past_cels_iteration_budget_is_a_located_error_not_a_crash(repo: Repo) -> None:
    hundred = "[" + ", ".join(map(str, range(100))) + "]"
    expression = f"{hundred}.all(a, {hundred}.all(b, a + b >= 0))"
    repo.write("policies.yaml", _policy("costly", expression))
    repo.write("sessions.yaml", LOOP.format(name="s", tags="[a]", n=1))
    code, _, err = repo.run("validate", str(repo.root), hub=False)
    assert code == 65, err
    assert "policy costly: spec.rules[0].expression failed (INTERNAL: Iteration budget" in err
    assert "bug" not in err


def test_a_rules_message_or_expression_never_acts_on_a_terminal_or_a_ci_log(repo: Repo) -> None:
    # A message (or an expression CEL echoes) holding escapes, a carriage return or a
    # line of its own: shown escaped, on the one `error:` line it belongs to.
    hostile = "bad\\u001b]0;TITLE\\u0007\\r\\n::error::forged\\n::add-mask::Plan"
    policy = _policy("evil", "false").replace(
        "'false'\n", f"'false'\n      message: \"{hostile}\"\n"
    )
    repo.write("policies.yaml", policy)
    repo.write("sessions.yaml", LOOP.format(name="s", tags="[a]", n=1))
    code, _, err = repo.run("validate", str(repo.root), hub=False)
    assert code == 3, err
    assert "\x1b" not in err and "\x07" not in err and "\r" not in err
    assert all(line.startswith("error: ") for line in err.splitlines()), err
    assert "bad\\u001b]0;TITLE\\u0007\\u000d\\u000a::error::forged" in err
    # YAML's own escapes (\e, \a) put them in the expression; CEL echoes it.
    echoed = _policy("evil", "true").replace("'true'", '"session.name == \\"\\e]0;X\\a"')
    repo.write("policies.yaml", echoed)
    code, _, err = repo.run("validate", str(repo.root), hub=False)
    assert code == 65 and "\x1b" not in err and "\\u001b]0;X\\u0007" in err


def test_policy_documents_are_checked_like_the_other_kinds(repo: Repo) -> None:
    repo.write(
        "policies.yaml",
        _policy("twice", "true"),
        _policy("twice", "true"),
        _policy("plan-match", "true", scope="plan", extra="  match: {names: [s]}\n"),
        _policy("plan-exclude", "true", scope="plan", extra="  exclude: {tags: [s]}\n"),
        _policy("empty-exclude", "true", extra="  exclude: {}\n"),
        "apiVersion: reconciler/v1\nkind: Policy\nname: odd\nspec: {action: block, rules: []}\n",
    )
    code, _, err = repo.run("validate", str(repo.root), hub=False)
    assert code == 65
    assert "duplicate Policy name 'twice'" in err
    assert "spec.match: a plan-scope policy sees the whole plan" in err
    assert "spec.exclude: a plan-scope policy sees the whole plan; exclude is for" in err
    assert "spec.exclude: {} should be non-empty" in err
    assert "spec.action: 'block' is not one of deny, warn" in err


# -- overrides -----------------------------------------------------------------------


def test_an_override_lifts_only_an_overridable_policy_and_is_recorded(repo: Repo) -> None:
    repo.write("policies.yaml", BUDGET.format(action="deny", overridable="true"))
    repo.write(
        "sessions.yaml",
        LOOP.format(name="ok", tags="[a]", n=20),
        LOOP.format(name="greedy", tags="[a]", n=60),
    )
    code, _, err = repo.run("apply", str(repo.root), "--yes")
    assert code == 3 and "[--override-policy loop-budget lifts it]" in err
    code, out, _ = repo.run("plan", str(repo.root), "--format", "json")
    # What lifts it, said in the JSON too (`overridable` is about --force only).
    [refusal] = json.loads(out)["refusals"]
    assert (refusal["overridable"], refusal["liftedBy"]) == (
        False,
        "--override-policy loop-budget",
    )
    code, _, err = repo.run("apply", str(repo.root), "--yes", "--override-policy", "loop-budgit")
    assert code == 64
    assert "no such policy; did you mean loop-budget?" in err
    code, out, err = repo.run(
        "apply", str(repo.root), "--yes", "--override-policy", "loop-budget", "--format", "json"
    )
    assert code == 0, err
    assert json.loads(out)["policyOverrides"] == ["loop-budget"]
    assert "Policies overridden for this apply (--override-policy): loop-budget" in err
    lineage = repo.lineage()
    assert lineage["greedy"]["policyOverrides"] == ["loop-budget"]
    assert "policyOverrides" not in lineage["ok"]
    # The record is not part of the marker hash: the next plan has no changes.
    code, out, _ = repo.run("plan", str(repo.root), "--override-policy", "loop-budget")
    assert code == 0 and "No changes." in out and "overridden loop-budget" in out


def test_a_policy_that_is_not_overridable_cannot_be_lifted(repo: Repo) -> None:
    repo.write("policies.yaml", BUDGET.format(action="deny", overridable="false"))
    repo.write("sessions.yaml", LOOP.format(name="greedy", tags="[a]", n=60))
    code, _, err = repo.run("apply", str(repo.root), "--yes", "--override-policy", "loop-budget")
    assert code == 64
    assert "is not overridable; only a policy that declares `overridable: true`" in err
    assert repo.requests() == 0


def test_a_saved_plan_is_applied_as_it_is_without_overrides(repo: Repo) -> None:
    repo.write("policies.yaml", BUDGET.format(action="deny", overridable="true"))
    repo.write("sessions.yaml", LOOP.format(name="ok", tags="[a]", n=2))
    saved = str(repo.root.parent / "plan.json")
    assert repo.run("plan", str(repo.root), "--out", saved)[0] == 0
    code, _, err = repo.run(
        "apply", "--plan", saved, str(repo.root), "--override-policy", "loop-budget"
    )
    assert code == 4
    assert (
        f"it was made from {repo.root}, and this apply gives {repo.root} --override-policy "
        "loop-budget:"
    ) in err
    assert repo.requests() == 0


def test_a_saved_plan_keeps_its_overrides_when_apply_plans_again(repo: Repo) -> None:
    repo.write("policies.yaml", BUDGET.format(action="deny", overridable="true"))
    repo.write("sessions.yaml", LOOP.format(name="greedy", tags="[a]", n=60))
    saved = str(repo.root.parent / "plan.json")
    code, out, err = repo.run(
        "plan", str(repo.root), "--out", saved, "--override-policy", "loop-budget"
    )
    assert code == 0, err
    assert "overridden loop-budget" in out
    # The file cannot lift a deny alone: anyone who can edit it can write an override
    # into its inputs and make its checksum again. The apply says the same override.
    code, _, err = repo.run("apply", "--plan", saved, str(repo.root))
    assert code == 4
    assert (
        f"it was made from {repo.root} --override-policy loop-budget, and this apply gives "
        f"{repo.root}:"
    ) in err
    hub = f"--api-url local --local-db {repo.db}"  # as these runs give it
    assert (
        f"`reconciler {hub} apply --plan {saved} {repo.root} --override-policy loop-budget`"
    ) in err
    assert repo.requests() == 0
    # apply --plan plans again with the overrides the file records: the same deny is
    # lifted, the fresh plan equals the saved one, the override is recorded.
    code, out, err = repo.run(
        "apply",
        "--plan",
        saved,
        str(repo.root),
        "--format",
        "json",
        "--override-policy",
        "loop-budget",
    )
    assert code == 0, err
    assert json.loads(out)["policyOverrides"] == ["loop-budget"]
    assert repo.lineage()["greedy"]["policyOverrides"] == ["loop-budget"]


def test_a_saved_plan_never_lifts_a_deny_it_did_not_show(repo: Repo) -> None:
    repo.write("policies.yaml", BUDGET.format(action="deny", overridable="true"))
    repo.write("sessions.yaml", LOOP.format(name="greedy", tags="[a]", n=40))
    assert repo.run("apply", str(repo.root), "--yes")[0] == 0
    # An update (its body records no override): only the findings can tell.
    repo.write("sessions.yaml", LOOP.format(name="greedy", tags="[a, b]", n=40))
    saved = str(repo.root.parent / "plan.json")
    code, out, err = repo.run(
        "plan", str(repo.root), "--out", saved, "--override-policy", "loop-budget"
    )
    assert code == 0, err
    assert "update" in out and "overridden" not in out  # nothing lifted when reviewed
    # The rule tightened after review: the recorded override would now lift a deny the
    # reviewed plan never showed.
    repo.write(
        "policies.yaml",
        BUDGET.format(action="deny", overridable="true").replace("<= 50", "<= 30"),
    )
    code, _, err = repo.run(
        "apply", "--plan", saved, str(repo.root), "--override-policy", "loop-budget"
    )
    assert code == 4, err
    assert "lifts the deny of policy loop-budget for greedy, which it does not show" in err
    code, out, _ = repo.run("plan", str(repo.root))
    assert "update" in out  # nothing was applied


# -- secrets, the plan document, laziness -------------------------------------------


def test_rules_see_env_references_never_secret_values(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "canary-7f3e-secret-value"
    monkeypatch.setenv("TOKEN", canary)
    rule = "apiVersion: reconciler/v1\nkind: Policy\nname: leak\nspec:\n  action: warn\n"
    rule += "  rules:\n    - expression: 'false'\n      messageExpression: >-\n"
    rule += "        session.spec.env.TOKEN + ' ' + session.spec.env.LITERAL + ' ' +\n"
    rule += "        session.spec.env.DEFAULTED + ' ' + session.spec.env.BESIDE\n"
    repo.write("policies.yaml", rule)
    # A reference (its value is the canary), and secrets written literally: whole, as a
    # reference's default, and as text beside a reference.
    session = LOOP.format(name="s", tags="[a]", n=1)
    session += f"  env: {{TOKEN: '${{env:TOKEN}}', LITERAL: {canary}-literal,\n"
    session += f"    DEFAULTED: '${{env:PW:-{canary}-default}}',\n"
    session += f"    BESIDE: 'postgres://app:{canary}-beside@${{env:HOST}}/app'}}\n"
    repo.write("sessions.yaml", session)
    outputs = []
    for fmt in ("text", "json", "markdown"):
        code, out, err = repo.run("plan", str(repo.root), "--format", fmt)
        assert code == 0
        outputs.append(out + err)
    shown = "${env:TOKEN} (sensitive) (sensitive) (sensitive)\n"
    assert "sessions.yaml:1): " + shown in outputs[0]
    assert all(canary not in text for text in outputs)


def test_rules_judge_a_plain_variable_as_the_hub_will_hold_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reference to a plain variable is judged by its value (or default), an alias in
    its long form, as the plan sends it: judged as written, `${env:VIS:-collaborate}`
    passed a rule on visibility, and the session was created with it."""
    monkeypatch.delenv("VIS", raising=False)
    monkeypatch.delenv("TEAM", raising=False)
    repo = Repo(tmp_path, capsys)
    (repo.root / "project.yaml").write_text(PROJECT + "plainEnv: [VIS, TEAM]\n")
    repo.write(
        "policies.yaml",
        _policy("no-collab", 'session.spec.visibility != "collaborate"', extra="  action: deny\n"),
        _policy(
            "team-tag",
            'session.tags.all(t, t != "team-x")',
            extra="  action: deny\n  match: {tags: [team-x]}\n",
        ),
    )
    session = (
        "apiVersion: reconciler/v1\nkind: Session\nname: s\nspec:\n  task: t\n"
        "  visibility: '${env:VIS:-collab}'\n  tags: ['${env:TEAM:-team-y}']\n"
    )
    repo.write("sessions.yaml", session)
    for command in (["validate"], ["plan"], ["apply", "--yes"]):
        code, out, err = repo.run(*command, str(repo.root))
        assert code == 3, out + err
        assert "no-collab" in out + err
    assert repo.requests() == 0
    monkeypatch.setenv("VIS", "private")
    code, out, err = repo.run("apply", "--yes", str(repo.root))
    assert code == 0, out + err
    assert repo.requests() == 1
    # The match and the rule see the tags resolved too.
    monkeypatch.setenv("TEAM", "team-x")
    code, out, err = repo.run("plan", str(repo.root))
    assert code == 3 and "team-tag" in out + err, out + err


@pytest.mark.parametrize(
    ("expression", "fields"),
    [
        # Words inside a string are text: the message does not read the whole session.
        ('"session " + session.name + " has no owner tag"', frozenset()),
        ("'spec' + string(session.spec.loop.maxIterations)", frozenset({"loop"})),
        (r"'it\'s ' + session.spec.label", frozenset({"label"})),
        # A field is read where it is selected from the spec; the session's own tags
        # are not the spec's, and a field named in a string is read only by a whole read.
        ('has(session.spec.repo) && "task" != ""', frozenset({"repo"})),
        ('session.tags.exists(t, t.startsWith("owner:"))', frozenset()),
        ("session.spec . loop.maxIterations <= 50", frozenset({"loop"})),
        ("session.spec.repos.all(r, r.fullName != '')", frozenset({"repos"})),
        ('session.spec["task"] != ""', None),
        ("session.spec.?task.orValue('') != ''", None),
        # The whole spec or session read: every field.
        ("size(session.spec) > 0", None),
        ('session["spec"].task != ""', None),
        # An escaped backslash ends no string early: size(session) is code.
        (r'"\\" + string(size(session)) + "\\"', None),
        # Raw and triple-quoted strings are not told apart: every field, to be sure.
        ('r"session " + session.name', None),
        ('"""session""" + session.name', None),
        # A comment is no code: between a name and its call it still makes a call, and
        # a quote or `//` inside one or the other is what it is.
        ('!session.spec.exists // any key\n(k, k.startsWith("lo"))', None),
        ("session.spec.size // c\n() == 5", None),
        ("session.spec // c\n.loop != null", frozenset({"loop"})),
        ('"//" + session.spec.task != ""', frozenset({"task"})),
        ('// a "quote\nsession.spec.label != ""', frozenset({"label"})),
    ],
)
def test_only_the_spec_fields_a_rule_can_read_are_passed(
    expression: str, fields: frozenset[str] | None
) -> None:
    assert spec_fields([expression]) == fields


def test_findings_round_trip_through_the_plan_document() -> None:
    finding = PolicyFinding(
        policy="p",
        action="deny",
        message="m",
        rule_source=SourceLocation("policies.yaml", 9, 20),
        session="s",
        session_source=SourceLocation("sessions.yaml", 1),
        overridable=True,
        overridden=True,
    )
    plan = Plan(project="pol", actions=(), findings=(finding,))
    document = plan_to_dict(plan)
    validate_plan_document(document)
    assert plan_from_dict(document) == plan
    assert "policyFindings" not in plan_to_dict(Plan(project="pol", actions=()))


@pytest.mark.subprocess  # a fresh interpreter: what `validate` imports
def test_without_policies_validate_never_imports_the_cel_package() -> None:
    examples = Path(__file__).resolve().parent.parent / "examples"
    script = (
        "import sys\nfrom reconciler.cli.main import run\n"
        f"code = run(['validate', {str(examples / 'project.yaml')!r}])\n"
        "assert code == 0, code\n"
        "print('loaded:', 'cel_expr_python' in sys.modules, 'reconciler.policy' in sys.modules)\n"
        f"code = run(['validate', {str(examples)!r}])\n"
        "print('loaded:', 'cel_expr_python' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = [line for line in done.stdout.splitlines() if line.startswith("loaded:")]
    assert loaded == ["loaded: False False", "loaded: True"]


def test_a_deny_refuses_a_plan_without_changes_too(repo: Repo) -> None:
    repo.write("sessions.yaml", LOOP.format(name="greedy", tags="[a]", n=60))
    assert repo.run("apply", str(repo.root), "--yes")[0] == 0
    # A policy added later: the session on the hub, in sync, breaks it.
    repo.write("policies.yaml", BUDGET.format(action="deny", overridable="false"))
    for command in (["plan"], ["apply", "--yes"]):
        code, out, err = repo.run(*command, str(repo.root))
        assert code == 3, (command, out, err)
        assert "refused by policy loop-budget" in err


def test_a_gate_on_changes_needs_its_override_once(repo: Repo) -> None:
    # docs/concepts/policies.md: a rule that reads `change` judges only what a plan
    # changes, so an override opens it for one apply and later plans go through.
    gate = BUDGET.format(action="deny", overridable="true").replace(
        '"!has(session.spec.loop)',
        "\"change == null || !(change.kind in ['create', 'replace']) || !has(session.spec.loop)",
    )
    repo.write("policies.yaml", gate)
    repo.write("sessions.yaml", LOOP.format(name="greedy", tags="[a]", n=60))
    code, _, err = repo.run("apply", str(repo.root), "--yes")
    assert code == 3 and "refused by policy loop-budget" in err
    code, _, err = repo.run("apply", str(repo.root), "--yes", "--override-policy", "loop-budget")
    assert code == 0, err
    code, out, err = repo.run("plan", str(repo.root), "--detailed-exitcode")
    assert code == 0, err
    assert "No changes." in out
    code, _, _ = repo.run("validate", str(repo.root), hub=False)
    assert code == 0  # it reads `change`: validate leaves it to plan
    # An update of the session (its tags) is not what the gate is about: it applies.
    repo.write("sessions.yaml", LOOP.format(name="greedy", tags="[b]", n=60))
    code, _, err = repo.run("apply", str(repo.root), "--yes")
    assert code == 0, err
    # A replacement is: it needs the override again.
    repo.write("sessions.yaml", LOOP.format(name="greedy", tags="[b]", n=70))
    code, _, err = repo.run("plan", str(repo.root))
    assert code == 3 and "refused by policy loop-budget" in err
    # A declaration being let go is not judged: forgetting it needs no override.
    repo.write(
        "sessions.yaml", LOOP.format(name="greedy", tags="[b]", n=70) + "  state: forgotten\n"
    )
    code, out, err = repo.run("apply", str(repo.root), "--yes")
    assert code == 0, err
    assert "declared state: forgotten" in out


def test_findings_keep_one_order_when_declaration_rules_run_before_the_hub_is_read(
    repo: Repo,
) -> None:
    # Rules reading only `session` run before the listing; those reading `change` or
    # `live` after the plan. The findings read as one evaluation: by session as
    # declared, then by rule as written, whichever phase found them.
    rules = (
        "apiVersion: reconciler/v1\nkind: Policy\nname: mixed\nspec:\n  action: warn\n"
        "  rules:\n"
        "    - {expression: 'session.name == \"never\"', message: first}\n"
        "    - {expression: 'change == null', message: second}\n"
        "    - {expression: 'session.name == \"nor\"', message: third}\n"
    )
    repo.write("policies.yaml", rules)
    repo.write(
        "sessions.yaml",
        LOOP.format(name="b", tags="[a]", n=1),
        LOOP.format(name="a", tags="[a]", n=1),
    )
    code, out, err = repo.run("plan", str(repo.root), "--format", "json")
    assert code == 0, err
    found = [(f["session"], f["message"]) for f in json.loads(out)["policyFindings"]]
    assert found == [
        ("b", "first"),
        ("b", "second"),
        ("b", "third"),
        ("a", "first"),
        ("a", "second"),
        ("a", "third"),
    ]


def test_a_rule_repeated_through_an_alias_keeps_its_place_among_the_findings(
    repo: Repo,
) -> None:
    # Both copies share the anchor's location; ordered by it, the second copy's finding
    # came before the rule between them.
    rules = (
        "apiVersion: reconciler/v1\nkind: Policy\nname: pa\nspec:\n  action: warn\n"
        "  rules:\n"
        "    - &r {expression: 'session.name == \"zzz\"', message: offline-rule}\n"
        "    - {expression: 'change == null', message: online-rule}\n"
        "    - *r\n"
    )
    repo.write("policies.yaml", rules)
    repo.write("sessions.yaml", LOOP.format(name="a", tags="[a]", n=1))
    code, out, err = repo.run("plan", str(repo.root), "--format", "json")
    assert code == 0, err
    found = [f["message"] for f in json.loads(out)["policyFindings"]]
    assert found == ["offline-rule", "online-rule", "offline-rule"]


def test_the_example_loop_budget_is_a_gate_an_override_opens_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/policies.yaml's loop-budget judges creates and replacements only: once an
    override lets a 60-iteration loop in, the next plan (and watch) is not refused for
    it, as a rule judging every session would be until the manifest changed."""
    import shutil

    examples = tmp_path / "examples"
    shutil.copytree(Path(__file__).resolve().parent.parent / "examples", examples)
    maintenance = examples / "maintenance.yaml"
    maintenance.write_text(
        maintenance.read_text().replace("maxIterations: 20", "maxIterations: 60", 1)
    )
    monkeypatch.setenv("RELEASE_GITHUB_TOKEN", "x")
    monkeypatch.setenv("NPM_TOKEN", "y")
    hub = ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3")]
    assert run([*hub, "plan", str(examples)]) == 3
    assert "deny loop-budget" in capsys.readouterr().out
    assert run([*hub, "apply", str(examples), "--yes", "--override-policy", "loop-budget"]) == 0
    capsys.readouterr()
    assert run([*hub, "plan", str(examples), "--detailed-exitcode"]) == 0
    assert "No changes." in capsys.readouterr().out
