"""Secrets cannot leave through fields (manifest.secrecy): where ${env:NAME} may resolve.

Every field but `env` is readable by the whole organisation: a reference there must
name a variable the Project declares plain (`plainEnv`), and the tool's own credential
variables may be referenced nowhere, nor declared plain. Each refusal is located
(file:line:col), names the field and the variable, says how to declare it plain, and
stops validate, plan and apply (exit 65) before any request; no canary value is shown.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clihub import invoke, local_hub

from reconciler.manifest.secrecy import holds_token, token_sources, token_spans
from reconciler.masking import CREDENTIAL_VARIABLES

CANARY = "canarySECRET-71c4be09"  # the credentials' value: the API token
# SECRET's value: a secret that is not the token. Both start with CANARY_MARK, which
# no output may hold.
SECRET_VALUE = "canarySECRET-2f5d9a43"
CANARY_MARK = "canarySECRET"
PROJECT = "apiVersion: reconciler/v1\nkind: Project\nname: leaky\n"
SESSION = "---\napiVersion: reconciler/v1\nkind: Session\nname: s\nspec:\n  task: t\n"
# Line of the first spec line after `task` in PROJECT + SESSION.
SPEC_LINE = 10


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return invoke(capsys, *args)


@pytest.fixture(autouse=True)
def _canaries(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*CREDENTIAL_VARIABLES, "SECRET", "GIT_BRANCH"):
        monkeypatch.setenv(name, {"GIT_BRANCH": "main", "SECRET": SECRET_VALUE}.get(name, CANARY))


# (spec lines, where the error points: line offset, column; field; variable)
REFUSED = [
    ('  label: "${env:SECRET}"\n', 0, 10, "spec.label", "SECRET"),
    ("  tags: [ok, 'x-${env:SECRET}']\n", 0, 14, "spec.tags[1]", "SECRET"),
    ('  label: "${env:AGENTUITY_SDK_KEY}"\n', 0, 10, "spec.label", "AGENTUITY_SDK_KEY"),
    ("  skills: [{skillId: a, repo: '${env:SECRET}'}]\n", 0, 31, "spec.skills[0].repo", "SECRET"),
    ("  repo: {fullName: a/b, branch: '${env:SECRET}'}\n", 0, 33, "spec.repo.branch", "SECRET"),
    ("  metadata:\n    who: ${env:SECRET}\n", 1, 10, "spec.metadata.who", "SECRET"),
    ("  loop: {goal: '${env:SECRET:-x}'}\n", 0, 16, "spec.loop.goal", "SECRET"),
    ("  metadata: {env: '${env:SECRET}'}\n", 0, 19, "spec.metadata.env", "SECRET"),
    # Under env: any variable but the tool's credentials.
    ('  env: {T: "${env:AGENTUITY_SDK_KEY}"}\n', 0, 12, "spec.env.T", "AGENTUITY_SDK_KEY"),
    ("  env: {T: 'a${env:AGENTUITY_CLI_KEY}'}\n", 0, 12, "spec.env.T", "AGENTUITY_CLI_KEY"),
    ("  env: {T: '${env:CODER_HUB_TOKENS}'}\n", 0, 12, "spec.env.T", "CODER_HUB_TOKENS"),
]


@pytest.mark.parametrize(("spec", "offset", "column", "field", "name"), REFUSED)
def test_a_reference_that_would_leave_through_a_field_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    spec: str,
    offset: int,
    column: int,
    field: str,
    name: str,
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(PROJECT + SESSION + spec)
    db = tmp_path / "hub.sqlite3"
    code, out, err = _run(capsys, "validate", str(path))
    assert code == 65, err
    where = f"{path}:{SPEC_LINE + offset}:{column}: {field}: ${{env:{name}}}"
    assert f"error: {where}" in err
    if name in CREDENTIAL_VARIABLES:
        assert "holds a credential of the tool itself" in err
        assert "not even under env" in err
    else:
        assert f"declare it in the Project (plainEnv: [{name}])" in err
    local = ["--api-url", "local", "--local-db", str(db)]
    for command in (["plan"], ["apply", "--yes"]):
        code, out, err = _run(capsys, *local, *command, str(path))
        assert code == 65, err
        assert where in err
        assert not db.exists()  # nothing was sent: the embedded hub was never opened
    code, out, err = _run(capsys, "validate", "--format", "json", str(path))
    assert code == 65 and json.loads(out)["errors"][0]["message"].startswith(field)
    assert CANARY_MARK not in out + err


def test_a_file_checked_without_its_project_leaves_plain_references_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the Project's plainEnv says whether a variable may be written outside env: a
    file checked alone (a pre-commit hook's changed files) is warned, not refused, as a
    plan of the folder checks it; named with --project (a Project with no plainEnv),
    or holding a credential, it is refused all the same."""
    path = tmp_path / "s.yaml"
    path.write_text(SESSION.removeprefix("---\n") + '  label: "${env:GIT_BRANCH}"\n')
    code, out, err = _run(capsys, "validate", str(path))
    assert code == 0, err
    assert (
        f"warning: {path}:6:10: spec.label: ${{env:GIT_BRANCH}} is allowed outside spec.env "
        "only when the Project declares GIT_BRANCH in plainEnv, and no Project was read: "
        "not checked here (a plan of the folder checks it)"
    ) in err
    code, out, _ = _run(capsys, "validate", "--format", "json", str(path))
    document = json.loads(out)
    assert code == 0 and document["valid"] and document["notes"], document
    assert [w["line"] for w in document["warnings"]] == [6]
    code, _, err = _run(capsys, "--api-url", "local", "validate", "--project", "p", str(path))
    assert code == 65 and "declare it in the Project (plainEnv: [GIT_BRANCH])" in err
    # Listed as refusals are: the first 100 places, then one line for the rest.
    many = tmp_path / "many.yaml"
    many.write_text(
        "".join(
            SESSION.replace("name: s", f"name: s{i}") + '  label: "${env:GIT_BRANCH}"\n'
            for i in range(150)
        )
    )
    code, _, err = _run(capsys, "validate", str(many))
    warned = [line for line in err.splitlines() if line.startswith("warning:")]
    assert code == 0 and len(warned) == 101, err
    assert warned[-1].endswith("more references are left unchecked like these (not listed)")
    many.unlink()
    # Unjudged, it is left as written: a Policy's message never shows its value.
    path.write_text(SESSION.removeprefix("---\n") + '  label: "${env:SECRET}"\n')
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "apiVersion: reconciler/v1\nkind: Policy\nname: shows\nspec:\n  action: warn\n"
        "  rules:\n    - expression: 'false'\n"
        "      messageExpression: '\"label is \" + session.spec.label'\n"
    )
    code, out, err = _run(capsys, "validate", str(policy), str(path))
    assert code == 0 and "label is ${env:SECRET}" in err, err
    assert CANARY_MARK not in out + err
    policy.unlink()
    path.write_text(SESSION.removeprefix("---\n") + '  label: "${env:AGENTUITY_SDK_KEY}"\n')
    code, _, err = _run(capsys, "validate", str(path))
    assert code == 65 and "holds a credential of the tool itself" in err
    assert CANARY_MARK not in out + err


def test_a_copy_of_the_token_under_another_name_is_refused_even_under_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Referencing AGENTUITY_SDK_KEY under env is refused by name; a variable holding its
    # value (or holding it inside) would send the token into the session all the same.
    monkeypatch.setenv("COPY", f"x{CANARY}")
    path = tmp_path / "m.yaml"
    path.write_text(
        PROJECT + "defaults:\n  env: {D: '${env:COPY}'}\n" + SESSION + "  env: {X: '${env:COPY}'}\n"
    )
    db = tmp_path / "hub.sqlite3"
    local = ["--api-url", "local", "--local-db", str(db)]
    for command in (["validate"], [*local, "plan"], [*local, "apply", "--yes"]):
        code, out, err = _run(capsys, *command, str(path))
        assert code == 65, err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert errors == [
            f"error: {path}:{line}:{column}: {field}: ${{env:COPY}}: COPY holds the API token "
            "(the value of AGENTUITY_SDK_KEY or AGENTUITY_CLI_KEY); a manifest may never "
            "send it, not even under env"
            for line, column, field in ((5, 12, "defaults.env.D"), (12, 12, "spec.env.X"))
        ]
        assert CANARY_MARK not in out + err
    assert not db.exists()  # nothing was sent
    # A secret that is not the token stays where secrets belong.
    monkeypatch.setenv("COPY", SECRET_VALUE)
    assert _run(capsys, "validate", str(path))[0] == 0


def test_a_saved_plan_never_sends_a_copy_of_the_token_set_only_where_apply_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COPY", SECRET_VALUE)
    path = tmp_path / "m.yaml"
    path.write_text(PROJECT + SESSION + "  env: {X: '${env:COPY}'}\n")
    db = tmp_path / "hub.sqlite3"
    local = ["--api-url", "local", "--local-db", str(db)]
    saved = tmp_path / "plan.json"
    assert _run(capsys, *local, "plan", "--out", str(saved), str(path))[0] == 0
    monkeypatch.setenv("COPY", CANARY)  # where apply runs, COPY is the token
    code, out, err = _run(capsys, *local, "apply", "--plan", str(saved), str(path), "--yes")
    # Refused as apply would refuse it, not as a forged plan: the file is what was made.
    assert code == 65, err
    assert err.startswith(
        "error: environment variable(s) that hold the API token (the value of "
        "AGENTUITY_SDK_KEY or AGENTUITY_CLI_KEY), alone or put together, are never sent, not "
        f"even under env: COPY (used by create s at {path}:5)"
    )
    assert CANARY_MARK not in out + err
    code, out, _ = _run(capsys, *local, "sessions", "list", "--format", "json")
    assert json.loads(out)["total"] == 0  # nothing was created


def test_every_leaking_reference_is_reported_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(PROJECT + SESSION + "".join(spec for spec, *_ in REFUSED[1:3]))
    code, _, err = _run(capsys, "validate", str(path))
    assert code == 65
    fields = [line.split(": ")[2] for line in err.splitlines() if line.startswith("error:")]
    assert fields == ["spec.tags[1]", "spec.label"]


def test_project_defaults_and_org_id_follow_the_same_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    project = PROJECT + (
        "orgId: ${env:SECRET}\n"
        "defaults:\n"
        "  tags: ['${env:SECRET}']\n"
        "  env: {OK: '${env:SECRET}', NO: '${env:AGENTUITY_SDK_KEY}'}\n"
    )
    path.write_text(project + SESSION)
    code, _, err = _run(capsys, "validate", str(path))
    assert code == 65
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines[0].startswith(f"error: {path}:4:8: orgId: ${{env:SECRET}} would put")
    assert lines[1].startswith(f"error: {path}:6:10: defaults.tags[0]: ${{env:SECRET}}")
    assert lines[2].startswith(f"error: {path}:7:34: defaults.env.NO: ${{env:AGENTUITY_SDK_KEY}}")
    assert len(lines) == 3  # defaults.env.OK is a secret where secrets belong
    assert CANARY_MARK not in err


def test_a_credential_can_never_be_declared_plain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(PROJECT + "plainEnv: [GIT_BRANCH, AGENTUITY_SDK_KEY]\n" + SESSION)
    code, _, err = _run(capsys, "validate", str(path))
    assert code == 65
    assert err.startswith(
        f"error: {path}:4:24: plainEnv[1]: AGENTUITY_SDK_KEY holds a credential of the tool "
        "itself; it can never be declared plain"
    )


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        (CANARY, True),  # a copy of the token under another name
        (f"team {CANARY}", True),  # the token inside it
        ("canary", False),  # a harmless value
        (CANARY.lower(), True),  # lower-cased: the same token to whoever reads it
        (f"team-{CANARY[:16].upper()}", True),  # 16 of its 21 characters in a row
        (f"team-{CANARY[-15:]}", False),  # 15 characters: short of a long part
    ],
)
def test_a_variable_holding_the_token_can_never_be_declared_plain(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    refused: bool,
) -> None:
    # Referencing AGENTUITY_SDK_KEY is refused by name; a plain variable holding its
    # value would put the token in a label, a plan and a saved plan file all the same.
    monkeypatch.setenv("TEAM_NAME", value)
    path = tmp_path / "m.yaml"
    path.write_text(
        PROJECT
        + "plainEnv: [GIT_BRANCH, TEAM_NAME]\n"
        + SESSION
        + "  label: 'T ${env:TEAM_NAME}'\n"
    )
    for command in ("validate", "plan"):
        hub = local_hub(tmp_path / "hub.sqlite3")
        code, out, err = _run(capsys, *hub, command, str(path))
        assert CANARY_MARK not in out + err
        if refused:
            assert code == 65
            assert (
                f"error: {path}:4:24: plainEnv[1]: TEAM_NAME holds the API token (the value of "
                "AGENTUITY_SDK_KEY or AGENTUITY_CLI_KEY); it can never be declared plain\n"
            ) in err
        else:
            assert code == 0, err


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("${env:PA}${env:PB}", {"PA", "PB"}),  # pieces put together
        ("x ${env:COPY} y", {"COPY"}),  # a copy under another name
        # Only the variables whose values make up the token, not their neighbours.
        ("${env:PA}${env:PB}@${env:REGION}.example", {"PA", "PB"}),
        # The token written in an unused default excuses nothing.
        ("${env:PA}${env:PB} ${env:NOTE:-tok-1234567890}", {"PA", "PB"}),
        # The manifest's own text, a default used included: no variable's doing.
        ("${env:NOPE:-tok-12345}67890", set()),
        ("${env:NOPE:-tok-1234567890}", set()),
        ("tok-1234567890 ${env:NOTE}", set()),
        # A variable that completes the text written beside it puts it together.
        ("tok-12345${env:PB}", {"PB"}),
        ("${env:PA} ${env:PB}", set()),  # apart, no token
    ],
)
def test_the_variables_that_make_up_the_token_are_named(text: str, named: set[str]) -> None:
    environ = {"PA": "tok-12345", "PB": "67890", "COPY": "tok-1234567890", "REGION": "eu"}
    environ["NOTE"] = "hello"
    assert token_sources(text, environ, ("tok-1234567890",)) == named


LONG_TOKEN = "sk_live_" + "9fQ2xK7mW4pZ1cV8bN3hJ6tR0yL5dG2s"  # 40 characters


@pytest.mark.parametrize(
    ("environ", "text", "named"),
    [
        # Half the token or more, in a row, in any letter case: as good as all of it.
        ({"P": LONG_TOKEN[:20]}, "x ${env:P}", {"P"}),
        ({"P": LONG_TOKEN[-25:].lower()}, "${env:P} y", {"P"}),
        ({"P": LONG_TOKEN.upper()}, "${env:P}", {"P"}),
        # Two halves in two texts (tags): each is judged, and each is a long part.
        ({"P": LONG_TOKEN[:20]}, "${env:P}", {"P"}),
        ({"P": LONG_TOKEN[20:]}, "${env:P}", {"P"}),
        # Less than half, or pieces apart: no token to whoever reads them.
        ({"P": LONG_TOKEN[:19]}, "${env:P}", set()),
        ({"P": LONG_TOKEN[:12], "Q": LONG_TOKEN[12:24]}, "${env:P} ${env:Q}", set()),
        # Pieces put together into a long part name each piece.
        ({"P": LONG_TOKEN[:12], "Q": LONG_TOKEN[12:24]}, "${env:P}${env:Q}", {"P", "Q"}),
        # A long part written in the manifest itself: no variable's doing.
        ({"P": "eu"}, LONG_TOKEN[:30] + " ${env:P}", set()),
    ],
)
def test_a_long_part_of_the_token_in_any_case_is_the_token(
    environ: dict[str, str], text: str, named: set[str]
) -> None:
    assert token_sources(text, environ, (LONG_TOKEN,)) == named


def test_a_short_placeholder_token_is_looked_for_whole() -> None:
    # `dummy-token` (11 characters) is sought whole (in any case), never its parts:
    # `dummy` is a word that may well be in a label.
    environ = {"P": "dummy-tok", "Q": "DUMMY-TOKEN"}
    assert token_sources("${env:P}", environ, ("dummy-token",)) == set()
    assert token_sources("${env:Q}", environ, ("dummy-token",)) == {"Q"}


def test_a_text_repeating_the_token_is_judged_in_bounded_time() -> None:
    environ = {"P": LONG_TOKEN[:20] * 50_000}  # a megabyte of one long part, repeated
    assert token_sources("${env:P}", environ, (LONG_TOKEN,)) == {"P"}


def test_a_text_putting_the_token_together_thousands_of_times_is_judged_in_one_pass() -> None:
    # Each occurrence and each variable's span are visited in one sweep (this took
    # seconds when every occurrence scanned every span).
    environ = {"P1": "tok-12345", "P2": "67890", "R": "eu"}
    text = "${env:R}:" + "${env:P1}${env:P2} " * 4000 + "${env:R}"
    assert token_sources(text, environ, ("tok-1234567890",)) == {"P1", "P2"}


@pytest.fixture
def split_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token (CANARY) in two plain-able variables, P1 and P2: each half is no token."""
    half = len(CANARY) // 2
    monkeypatch.setenv("P1", CANARY[:half])
    monkeypatch.setenv("P2", CANARY[half:])


@pytest.mark.usefixtures("split_token")
def test_the_token_put_together_from_plain_variables_is_refused_at_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The label puts the halves together.
    path = tmp_path / "m.yaml"
    path.write_text(
        PROJECT + "plainEnv: [P1, P2]\n" + SESSION + "  label: 'L ${env:P1}${env:P2}'\n"
    )
    saved = tmp_path / "p.json"
    code, out, err = _run(
        capsys, *local_hub(tmp_path / "hub.sqlite3"), "plan", str(path), "--out", str(saved)
    )
    assert code == 65 and not saved.exists()
    assert (
        f"error: {path}:11:10: spec.label: its references put the API token (the value of "
        "AGENTUITY_SDK_KEY or AGENTUITY_CLI_KEY) together in it; it can never be shown\n"
    ) in err
    assert CANARY_MARK not in out + err


@pytest.mark.usefixtures("split_token")
def test_the_token_written_in_an_unused_default_excuses_no_put_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # NOTE is set, so its default (the token, written) is never used: the label would
    # still show the token the halves put together.
    monkeypatch.setenv("NOTE", "hello")
    path = tmp_path / "m.yaml"
    label = f"  label: 'L ${{env:P1}}${{env:P2}} ${{env:NOTE:-{CANARY}}}'\n"
    path.write_text(PROJECT + "plainEnv: [P1, P2, NOTE]\n" + SESSION + label)
    code, out, err = _run(capsys, "validate", str(path))
    assert code == 65, err
    assert f"error: {path}:11:10: spec.label: its references put the API token" in err
    assert CANARY_MARK not in out


@pytest.mark.usefixtures("split_token")
def test_the_token_put_together_under_env_is_refused_at_load_as_apply_refuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One rule (secrecy.token_sources) at load and at apply: the halves under env are
    # refused before any request, each at its reference; a copy is refused where the same
    # text also stands in a label (read once per place kind, not once per text).
    monkeypatch.setenv("COPY", CANARY)
    path = tmp_path / "m.yaml"
    spec = "  label: '${env:COPY}'\n  env: {X: '${env:P1}${env:P2}', Y: '${env:COPY}'}\n"
    path.write_text(PROJECT + SESSION + spec)
    code, out, err = _run(capsys, "validate", str(path))
    assert code == 65, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors[0].startswith(f"error: {path}:10:10: spec.label: ${{env:COPY}} would put")
    assert errors[1:] == [
        f"error: {path}:11:12: spec.env.X: ${{env:{name}}}: the value of {name} and of the "
        "references beside it put the API token (the value of AGENTUITY_SDK_KEY or "
        "AGENTUITY_CLI_KEY) together; a manifest may never send it, not even under env"
        for name in ("P1", "P2")
    ] + [
        f"error: {path}:11:37: spec.env.Y: ${{env:COPY}}: COPY holds the API token (the "
        "value of AGENTUITY_SDK_KEY or AGENTUITY_CLI_KEY); a manifest may never send it, "
        "not even under env"
    ]
    assert CANARY_MARK not in out + err


@pytest.mark.usefixtures("split_token")
def test_the_token_put_together_in_org_id_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # orgId names the org in every request and in the plan: the same rule as a field.
    path = tmp_path / "m.yaml"
    project = PROJECT + "orgId: '${env:P1}${env:P2}'\nplainEnv: [P1, P2]\n"
    path.write_text(project + SESSION)
    code, out, err = _run(capsys, *local_hub(tmp_path / "hub.sqlite3"), "plan", str(path))
    assert code == 65
    assert f"error: {path}:4:8: orgId: its references put the API token" in err
    assert CANARY_MARK not in out + err


def test_a_token_written_as_text_beside_a_reference_is_not_the_references_doing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A placeholder token that is a word (`changeme`) in text a person wrote: the plain
    # reference beside it adds nothing of the token.
    monkeypatch.setenv("AGENTUITY_SDK_KEY", "changeme")
    monkeypatch.setenv("TEAM", "core")
    path = tmp_path / "m.yaml"
    body = SESSION + "  task: 'Rotate changeme-now for ${env:TEAM}'\n"
    path.write_text(PROJECT + "plainEnv: [TEAM]\n" + body.replace("  task: t\n", "", 1))
    code, _, err = _run(capsys, *local_hub(tmp_path / "hub.sqlite3"), "validate", str(path))
    assert code == 0, err


def test_a_short_placeholder_token_refuses_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `AGENTUITY_SDK_KEY=dummy` where the token is not used (the embedded hub): a plain
    # variable that happens to hold the same word is no copy of a token.
    monkeypatch.setenv("AGENTUITY_SDK_KEY", "stable")
    monkeypatch.setenv("CHANNEL", "stable")
    path = tmp_path / "m.yaml"
    path.write_text(PROJECT + "plainEnv: [CHANNEL]\n" + SESSION + "  label: '${env:CHANNEL}'\n")
    code, _, err = _run(capsys, *local_hub(tmp_path / "hub.sqlite3"), "validate", str(path))
    assert code == 0, err


def test_a_session_set_cannot_assemble_a_reference_around_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        PROJECT
        + "---\napiVersion: reconciler/v1\nkind: SessionSet\nname: sneaky\n"
        + "generator: {items: [AGENTUITY_SDK_KEY, SECRET]}\n"
        + 'template:\n  name: "s-{{ index }}"\n  spec:\n'
        + "    task: t\n"
        + "    label: \"{{ '${' ~ 'env:' ~ item ~ '}' }}\"\n"
        + "    env: {T: \"{{ '$' ~ '{env:' ~ item ~ '}' }}\"}\n"
    )
    code, _, err = _run(capsys, "validate", str(path))
    assert code == 65
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == [
        f"error: {path}:13:12: spec.label: ${{env:AGENTUITY_SDK_KEY}}: AGENTUITY_SDK_KEY holds "
        "a credential of the tool itself; a manifest may never reference it, not even under "
        "env (SessionSet 'sneaky', item 1)",
        f"error: {path}:13:12: spec.label: ${{env:SECRET}} would put the value of SECRET where "
        "the whole organisation can read it (and plans show it); if it is not secret, declare "
        "it in the Project (plainEnv: [SECRET]), else pass it to the session under spec.env "
        "(SessionSet 'sneaky', item 2)",
        f"error: {path}:14:14: spec.env.T: ${{env:AGENTUITY_SDK_KEY}}: AGENTUITY_SDK_KEY holds "
        "a credential of the tool itself; a manifest may never reference it, not even under "
        "env (SessionSet 'sneaky', item 1)",
    ]
    assert CANARY_MARK not in err


def test_a_plain_variable_is_shown_resolved_in_plans_and_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        PROJECT
        + "plainEnv: [GIT_BRANCH]\n"
        + SESSION
        + '  label: "Review ${env:GIT_BRANCH}"\n'
        + "  tags: ['${env:GIT_BRANCH}']\n"
        + "  env: {T: '${env:SECRET}'}\n"
    )
    local = ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3")]
    assert _run(capsys, "validate", str(path))[0] == 0
    for fmt in ("text", "markdown"):
        code, out, err = _run(capsys, *local, "plan", "--format", fmt, str(path))
        assert code == 0, err
        assert "Review main" in out and "${env:GIT_BRANCH}" not in out
        assert CANARY_MARK not in out + err
    code, out, _ = _run(capsys, *local, "plan", "--format", "json", str(path))
    body = json.loads(out)["actions"][0]["body"]
    assert (body["label"], body["tags"][0], body["env"]) == (
        "Review main",
        "main",
        {"T": "(sensitive)"},
    )
    saved = tmp_path / "plan.json"
    assert _run(capsys, *local, "plan", "--out", str(saved), str(path))[0] == 0
    assert "Review main" in saved.read_text() and CANARY not in saved.read_text()
    code, out, err = _run(capsys, *local, "apply", "--plan", str(saved), str(path), "--yes")
    assert code == 0, err
    code, out, _ = _run(capsys, *local, "sessions", "list", "--format", "json")
    (session,) = json.loads(out)["sessions"]["websocket"]
    assert session["label"] == "Review main" and "main" in session["tags"]


def test_a_plain_variable_changed_updates_a_label_and_never_replaces_for_a_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # secrets.md: the marker hash covers the reference as written, so the session keeps
    # the task it was created with; the label follows the variable.
    path = tmp_path / "m.yaml"
    path.write_text(
        PROJECT
        + "plainEnv: [GIT_BRANCH]\n"
        + "---\napiVersion: reconciler/v1\nkind: Session\nname: s\nspec:\n"
        + '  task: "Review ${env:GIT_BRANCH}"\n'
        + '  label: "On ${env:GIT_BRANCH}"\n'
    )
    local = ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3")]
    code, _, err = _run(capsys, *local, "apply", "--yes", str(path))
    assert code == 0, err
    monkeypatch.setenv("GIT_BRANCH", "dev")
    code, out, err = _run(capsys, *local, "plan", "--format", "json", str(path))
    assert code == 0, err
    (action,) = json.loads(out)["actions"]
    assert (action["kind"], [c["field"] for c in action["changes"]]) == ("update", ["label"])
    assert action["body"]["label"] == "On dev" and "task" not in action["body"]
    code, _, err = _run(capsys, *local, "apply", "--yes", str(path))
    assert code == 0, err
    code, out, _ = _run(capsys, *local, "sessions", "list", "--format", "json")
    (listed,) = json.loads(out)["sessions"]["websocket"]
    code, out, _ = _run(capsys, *local, "sessions", "get", listed["sessionId"], "--format", "json")
    session = json.loads(out)
    assert (session["task"], session["label"]) == ("Review main", "On dev")


@pytest.mark.parametrize(
    "documents",
    [
        PROJECT + SESSION + '  visibility: "${env:AGENTUITY_SDK_KEY}"\n',
        PROJECT + SESSION + "  workflowMode: ${env:SECRET}\n",
        PROJECT + "defaults: {visibility: '${env:SECRET}'}\n" + SESSION,
        PROJECT
        + "---\napiVersion: reconciler/v1\nkind: SessionSet\nname: set\n"
        + "generator: {items: [a]}\n"
        + 'template:\n  name: "s-{{ item }}"\n  spec:\n    task: t\n'
        + "    workflowMode: \"{{ '$' ~ '{env:SECRET}' }}\"\n",
    ],
    ids=["token-in-visibility", "workflowMode", "project-defaults", "session-set"],
)
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_reference_that_resolves_outside_an_enum_never_shows_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], documents: str, fmt: str
) -> None:
    # visibility and workflowMode may hold a reference (their value is one of a few
    # words), so the check that it resolves to one of them runs on the value: the error
    # it gives names the field and the reference, never what the variable holds.
    path = tmp_path / "m.yaml"
    path.write_text(documents)
    for args in (["validate"], ["--api-url", "local", "plan"]):
        code, out, err = _run(capsys, *args, str(path), "--format", fmt)
        assert code == 65, (args, out, err)
        assert "resolves to a value that is not one of" in out + err
        assert str(path) in out + err  # still located
        assert CANARY_MARK not in out + err, (args, out, err)


def test_a_reference_repeated_across_sessions_is_judged_at_every_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each text is read once per check, where it is secret and where not; every
    session that holds it still gets its own error, and the same text under env and in
    a label is judged as each place asks."""
    monkeypatch.setenv("COPY", CANARY)
    monkeypatch.delenv("UNSET_ONE", raising=False)
    sessions = "".join(
        f"---\napiVersion: reconciler/v1\nkind: Session\nname: s{i}\nspec:\n  task: t\n  {where}\n"
        for i, where in enumerate(
            [
                "env: {X: '${env:COPY}'}",
                "env: {X: '${env:COPY}'}",
                "label: '${env:COPY}'",
                "env: {Y: '${env:UNSET_ONE}'}",
                "env: {Y: '${env:UNSET_ONE}'}",
            ]
        )
    )
    path = tmp_path / "m.yaml"
    path.write_text(PROJECT + sessions)
    code, out, err = _run(capsys, "validate", str(path))
    assert code == 65, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {path}:10:12: spec.env.X: ${{env:COPY}}: COPY holds the API token "
        "(the value of AGENTUITY_SDK_KEY or AGENTUITY_CLI_KEY); a manifest may never "
        "send it, not even under env",
        f"error: {path}:17:12: spec.env.X: ${{env:COPY}}: COPY holds the API token "
        "(the value of AGENTUITY_SDK_KEY or AGENTUITY_CLI_KEY); a manifest may never "
        "send it, not even under env",
        f"error: {path}:24:10: spec.label: ${{env:COPY}} would put the value of COPY "
        "where the whole organisation can read it (and plans show it); if it is not "
        "secret, declare it in the Project (plainEnv: [COPY]), else pass it to the "
        "session under spec.env",
    ]
    assert CANARY_MARK not in out + err
    # The sessions that only reference an unset variable: each place counted, the
    # variable warned of once, at its first reference.
    unset_only = sessions.split("---\n")[-2:]
    path.write_text(PROJECT + "".join(f"---\n{doc}" for doc in unset_only))
    code, out, err = _run(capsys, "validate", str(path))
    assert code == 0, err
    warned = [line for line in err.splitlines() if "UNSET_ONE" in line]
    assert warned == [
        f"warning: {path}:10:12: ${{env:UNSET_ONE}} is not set (an apply that sends it will "
        "stop; a plan does not need it); 1 more reference to it"
    ]


def test_repeats_of_a_piece_of_the_token_hide_no_long_part_after_them() -> None:
    # Found by a review: 1,001 copies of the token's first 16 characters (each too short
    # to be a long part) used up the occurrences looked at, and the 20 that followed (a
    # long part) passed. Such a text is taken to hold the token, all of it.
    token = LONG_TOKEN
    text = (token[:16] + "x") * 1001 + token[:20]
    environ = {"NOTE": text, "R": "eu"}
    assert token_sources("${env:R} ${env:NOTE}", environ, (token,)) >= {"NOTE"}
    assert holds_token(text, (token,))
    # Far fewer copies are looked at one by one, and the part after them found there.
    few = (token[:16] + "x") * 50 + token[:20]
    assert token_spans(few, (token,)) == [(len(few) - 20, len(few))]


def test_case_is_folded_a_character_at_a_time() -> None:
    # Found by a review: str.lower turns Σ into σ or ς by its neighbours, so the token
    # folded alone and the text folded whole differed, and the token passed.
    token = "abcdefgΣ"
    assert token_spans("abcdefgΣx", (token,)) == [(0, 8)]
    assert token_spans("ABCDEFGσ", (token,)) == [(0, 8)]
    assert token_spans("xxABCDEFGς", (token,)) == [(2, 10)]
    assert token_sources("${env:A}${env:B}", {"A": token, "B": "x"}, (token,)) == {"A"}
