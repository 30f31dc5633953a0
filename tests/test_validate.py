"""`reconciler validate` through the CLI: exit codes and exact located lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from clihub import invoke

from reconciler.cli.main import run
from reconciler.cli.validate import NO_PROJECT_NOTE
from reconciler.errors import ManifestError
from reconciler.manifest.yamlread import iter_documents

SESSION = """\
apiVersion: reconciler/v1
kind: Session
name: s1
spec:
  task: Do the thing
"""
PROJECT = """\
apiVersion: reconciler/v1
kind: Project
name: team
"""

# (name, file content, expected line, message fragment). Each is one invalid input.
INVALID: list[tuple[str, str, int, str]] = [
    # An unclosed construct is located where it opened (libyaml notices it later).
    ("yaml-syntax", "apiVersion: reconciler/v1\nkind: [Session\n", 2, "(noticed at line 3)"),
    ("yaml-no-colon", SESSION + "  label x\n  tags: [a]\n", 6, "expected ':'"),
    ("yaml-tab-indent", SESSION + "\tlabel: x\n", 6, "(a tab: YAML indents with spaces only)"),
    ("yaml-tab-cr", SESSION.replace("\n", "\r") + "\tlabel: x\r", 6, "indents with spaces"),
    (
        "yaml-tab-opens-block",
        SESSION + "  label: |\n    \tx\n",
        7,
        "(a tab opens the block scalar's first line: give its indentation with an indicator, `|2`)",
    ),
    # Under a sequence entry's key, the indicator counts from the key.
    (
        "yaml-tab-entry-key-block",
        SESSION + "  skills:\n    - skillId: |\n        \tx\n      repo: o/r\n",
        8,
        "with an indicator, `|2`)",
    ),
    (
        "yaml-tab-entry-key-indent",
        SESSION + "  skills:\n    - skillId: |\n      \tx\n",
        8,
        "spaces only)",
    ),
    # An anchor before the indicator is no key: the entry's dash counts.
    ("yaml-tab-anchored-entry", SESSION + "  tags:\n    - &t |\n       \tx\n", 8, "`|3`)"),
    # The header alone on its line: its key is elsewhere, so no indicator is guessed.
    ("yaml-tab-header-own-line", SESSION + "  label:\n    |\n     \tx\n", 8, "spaces only)"),
    # At the key's own indentation (or before it) no indicator can make the tab content.
    ("yaml-tab-at-key-indent", SESSION + "  label: |\n  \tb\n", 7, "spaces only)"),
    ("yaml-tab-at-line-start", SESSION + "  label: >-\n\tb\n", 7, "spaces only)"),
    # A tab in the indentation of a later line, or beside an indicator already written:
    # an indicator does not mend it.
    ("yaml-tab-later-block-line", SESSION + "  label: |\n    a\n  \tb\n", 8, "spaces only)"),
    ("yaml-tab-after-indicator", SESSION + "  label: |2\n  \tb\n", 7, "spaces only)"),
    # A comma missing inside a multi-line flow collection: libyaml's mark is the mistake.
    ("yaml-flow-comma", SESSION + '  tags: [\n    "a",\n    "b"\n    "c",\n  ]\n', 9, "YAML:"),
    (
        "yaml-flow-map-comma",
        SESSION + "  metadata: {\n    a: 1,\n    b: 2\n    c: 3\n  }\n",
        9,
        "YAML:",
    ),
    ("yaml-unclosed-quote", SESSION + "  label: 'abc\n  tags: [a]\n  agent: x\n", 6, "quoted"),
    ("yaml-bad-indent", SESSION + "  label: x\n label: y\n", 7, "YAML:"),
    ("yaml-tab", "apiVersion: reconciler/v1\n\tkind: Session\n", 2, "YAML:"),
    ("duplicate-key-top", SESSION + "name: s2\n", 6, "duplicate key 'name'"),
    ("duplicate-key-spec", SESSION + "  task: again\n", 6, "duplicate key 'task'"),
    ("duplicate-key-env", SESSION + "  env: {A: x, A: y}\n", 6, "duplicate key 'A'"),
    ("unknown-top-field", SESSION + "labels: [x]\n", 6, "unknown field 'labels'"),
    ("unknown-spec-field", SESSION + "  prompt: x\n", 6, "spec: unknown field 'prompt'"),
    ("unknown-loop-field", SESSION + "  loop: {goal: g, max: 3}\n", 6, "unknown field 'max'"),
    ("unknown-repo-field", SESSION + "  repo: {fullName: a/b, brnch: x}\n", 6, "'brnch'"),
    ("unknown-skill-field", SESSION + "  skills: [{skillId: a, repo: b, v: 1}]\n", 6, "'v'"),
    ("unknown-lifecycle-field", SESSION + "lifecycle: {prevent: true}\n", 6, "'prevent'"),
    ("unknown-policy-field", PROJECT + "policy: {purge: delete}\n", 4, "'purge'"),
    ("unknown-project-field", PROJECT + "spec: {}\n", 4, "unknown field 'spec'"),
    # It travels in a header: validate said OK and plan refused it (exit 64).
    ("org-id-space", PROJECT + 'orgId: "org 1"\n', 4, "orgId"),
    ("api-version", SESSION.replace("reconciler/v1", "reconciler/v2"), 1, "apiVersion"),
    ("api-version-missing", SESSION.replace("apiVersion: reconciler/v1\n", ""), 1, "apiVersion"),
    ("unknown-kind", SESSION.replace("kind: Session", "kind: Deployment"), 2, "kind"),
    ("kind-missing", SESSION.replace("kind: Session\n", ""), 1, "'kind' is a required"),
    ("not-a-mapping", "- a\n- b\n", 1, "must be a mapping"),
    ("scalar-document", "hello\n", 1, "must be a mapping"),
    ("name-missing", SESSION.replace("name: s1\n", ""), 1, "'name' is a required"),
    ("spec-missing", "apiVersion: reconciler/v1\nkind: Session\nname: s1\n", 1, "'spec'"),
    (
        "bad-session-name",
        SESSION.replace("name: s1", "name: Nightly_Triage"),
        3,
        "not a valid name",
    ),
    ("session-name-too-long", SESSION.replace("name: s1", "name: " + "a" * 64), 3, "at most 63"),
    ("bad-project-name", PROJECT.replace("name: team", "name: -team"), 3, "not a valid name"),
    ("project-name-too-long", PROJECT.replace("name: team", "name: " + "a" * 41), 3, "at most 40"),
    ("name-not-string", SESSION.replace("name: s1", "name: 12"), 3, "must be a string"),
    ("task-not-string", SESSION.replace("task: Do the thing", "task: [a]"), 5, "spec.task"),
    ("visibility-enum", SESSION + "  visibility: public\n", 6, "'public' is not one of"),
    ("workflow-enum", SESSION + "  workflowMode: batch\n", 6, "spec.workflowMode"),
    ("state-enum", SESSION + "  state: deleted\n", 6, "spec.state"),
    ("tags-not-list", SESSION + "  tags: triage\n", 6, "spec.tags: must be a list"),
    ("tags-duplicate", SESSION + "  tags: [a, a]\n", 6, "unique"),
    ("tag-not-string", SESSION + "  tags: [a, {b: c}]\n", 6, "spec.tags[1]"),
    ("max-iterations-string", SESSION + "  loop: {maxIterations: many}\n", 6, "integer"),
    ("max-iterations-zero", SESSION + "  loop: {maxIterations: 0}\n", 6, "at least 1"),
    ("loop-flag-not-bool", SESSION + "  loop: {autoContinue: sometimes}\n", 6, "boolean"),
    ("skill-missing-repo", SESSION + "  skills: [{skillId: a}]\n", 6, "'repo' is a required"),
    (
        "skills-duplicate",
        SESSION + "  skills: [{skillId: a, repo: o/r}, {repo: o/r, skillId: a}]\n",
        6,
        "spec.skills[1]: the same skill (skillId and repo) as spec.skills[0]",
    ),
    (
        "skills-same-id-and-repo",
        SESSION
        + "  skills:\n    - {skillId: a, repo: o/r}\n    - {skillId: a, repo: o/r, name: A}\n",
        7,
        "spec.skills[1]: the same skill (skillId and repo) as spec.skills[0]",
    ),
    ("repos-not-list", SESSION + "  repos: {fullName: a/b}\n", 6, "spec.repos"),
    ("env-value-number", SESSION + "  env: {PORT: 8080}\n", 6, "spec.env.PORT: must be a string"),
    ("env-bad-name", SESSION + "  env: {1BAD: x}\n", 6, "not a valid variable name"),
    ("metadata-reserved", SESSION + "  metadata: {reconciler: x}\n", 6, "reserved"),
    ("metadata-not-map", SESSION + "  metadata: [a]\n", 6, "spec.metadata: must be a mapping"),
    ("prune-enum", PROJECT + "policy: {prune: destroy}\n", 4, "policy.prune"),
    (
        "defaults-skills-duplicate",
        PROJECT + "defaults:\n  skills: [{skillId: a, repo: o/r}, {skillId: a, repo: o/r}]\n",
        5,
        "defaults.skills[1]: the same skill (skillId and repo) as defaults.skills[0]",
    ),
    ("max-destroy-range", PROJECT + "policy: {maxDestroyPercent: 150}\n", 4, "at most 100"),
    ("protect-live-type", PROJECT + "policy: {protectLive: maybe}\n", 4, "boolean"),
    ("defaults-state", PROJECT + "defaults: {state: archived}\n", 4, "unknown field 'state'"),
    ("defaults-unknown", PROJECT + "defaults: {tsk: x}\n", 4, "unknown field 'tsk'"),
    ("org-empty", PROJECT + "orgId: ''\n", 4, "must not be empty"),
    ("ignore-changes-create-only", SESSION + "lifecycle: {ignoreChanges: [task]}\n", 6, "'task'"),
    ("prevent-destroy-type", SESSION + "lifecycle: {preventDestroy: 1}\n", 6, "boolean"),
    ("env-ref-empty", SESSION + "  label: ${env:}\n", 6, "malformed reference"),
    ("env-ref-bad-name", SESSION + "  label: x ${env:1BAD} y\n", 6, "malformed reference"),
    ("env-ref-unclosed", SESSION + "  label: ${env:NAME\n", 6, "malformed reference"),
    ("env-ref-bad-default", SESSION + "  label: ${env:NAME:default}\n", 6, "malformed"),
    ("env-ref-nested", SESSION + "  label: ${env:A:-${env:B}}\n", 6, "cannot hold a reference"),
    ("env-ref-secret", SESSION + "  env: {T: '${env:'}\n", 6, "in a secret value"),
    ("infinite-float", SESSION + "  loop: {maxIterations: .inf}\n", 6, "finite"),
    # An alias across env's line would show a secret value (either way round).
    (
        "alias-env-to-label",
        SESSION + "  env: {LIT: &a canaryENV-51bd}\n  label: *a\n",
        6,
        "an alias repeats this value both under env and outside it",
    ),
    (
        "alias-label-to-env",
        SESSION + "  label: &a canaryENV-51bd\n  env: {LIT: *a}\n",
        6,
        "an alias repeats this value both under env and outside it",
    ),
    (
        "alias-env-value-as-a-key",
        SESSION + "  env: {PW: &s canaryKEY-1}\n  metadata: {*s : x}\n",
        6,
        "an alias repeats this value both under env and outside it",
    ),
    (
        "alias-key-as-an-env-value",
        SESSION + "  metadata: {&s canaryKEY-2 : x}\n  env: {PW: *s}\n",
        6,
        "an alias repeats this value both under env and outside it",
    ),
    (
        "alias-env-value-to-a-metadata-key-named-env",
        SESSION + "  env: {DB: &pw canaryALIAS-4242}\n  metadata: {env: *pw}\n",
        6,
        "an alias repeats this value both under env and outside it",
    ),
    (
        "alias-env-map-to-metadata",
        SESSION + "  env: &e {LIT: canaryENV-51bd}\n  metadata: *e\n",
        6,
        "an alias repeats this value both under env and outside it",
    ),
    # The hub holds no blank label or agent: declared blank, a plan never converged.
    ("label-empty", SESSION + "  label: ''\n", 6, "spec.label must not be empty or blank"),
    ("agent-blank", SESSION + "  agent: '  '\n", 6, "spec.agent must not be empty or blank"),
    ("custom-tag", SESSION + "  label: !vault secret\n", 6, "unsupported YAML tag"),
    ("binary-tag", SESSION + "  label: !!binary aGVsbG8=\n", 6, "unsupported YAML tag"),
    # An explicit tag on text it cannot take: located, never a traceback.
    ("int-tag-on-a-word", SESSION + "  loop: {maxIterations: !!int yes}\n", 6, "not an integer"),
    ("bool-tag-on-a-word", SESSION + "  loop: {autoContinue: !!bool maybe}\n", 6, "not a boolean"),
    (
        "label-unquoted-yes",
        SESSION + "  label: yes\n",
        6,
        "spec.label: must be a string, not a boolean; quote it for the text (YAML reads true",
    ),
    # Quoted, a value only by its tag: quoting would not help, dropping the tag does.
    (
        "label-quoted-with-a-tag",
        SESSION + '  label: !!int "42"\n',
        6,
        "spec.label: must be a string, not a number; its tag !!int makes it one: drop the tag",
    ),
    (
        "tag-quoted-with-a-tag",
        SESSION + "  tags: [!!bool 'true']\n",
        6,
        "spec.tags[0]: must be a string, not a boolean; its tag !!bool makes it one",
    ),
    ("float-tag-on-a-word", SESSION + "  metadata: {x: !!float abc}\n", 6, "not a number"),
    ("int-tag-in-env", SESSION + "  env: {T: !!int sk-live-canary}\n", 6, "a secret value"),
    ("complex-key", SESSION + "  ? [a]\n  : b\n", 6, "keys must be plain strings"),
    ("bad-merge", SESSION + "  <<: [x]\n", 6, "merge key"),
    ("recursive-alias", SESSION + "  loop: &a {goal: g, x: *a}\n", 6, "recursive alias"),
    # What the hub refuses in a create body (reconciler.apifacts), checked after the
    # Project defaults are merged.
    (
        "task-missing",
        SESSION.replace("  task: Do the thing\n", "  label: x\n"),
        1,
        "task is required",
    ),
    ("task-empty", SESSION.replace("Do the thing", "''"), 5, "spec.task must not be empty"),
    ("task-blank", SESSION.replace("Do the thing", "' \t '"), 5, "spec.task must not be empty"),
    (
        "task-from-defaults-blank",
        PROJECT
        + "defaults: {task: ' '}\n---\n"
        + SESSION.replace("  task: Do the thing\n", "  tags: []\n"),
        6,
        "(value from the Project defaults)",
    ),
    (
        "task-over-the-body-limit",
        SESSION.replace("Do the thing", "x" * (2 * 1024 * 1024)),
        5,
        "spec.task is 2097",
    ),
    (
        "metadata-too-deep",
        SESSION + "  metadata: " + "{a: " * 70 + "x" + "}" * 70 + "\n",
        6,
        "spec.metadata is nested more than 64 levels",
    ),
    (
        "loop-with-standard-mode",
        SESSION + "  workflowMode: standard\n  loop: {goal: g}\n",
        7,
        "need workflowMode loop",
    ),
    ("skill-empty-id", SESSION + "  skills: [{skillId: '', repo: b}]\n", 6, "must not be empty"),
    ("max-iterations-huge", SESSION + "  loop: {maxIterations: 2147483648}\n", 6, "at most"),
    # A name ending in a newline (YAML's `name: |`) passed Python's `$`: no plan ever
    # found the session it created, so every apply created another.
    ("name-block-newline", SESSION.replace("name: s1", "name: |\n  s1"), 3, "not a valid name"),
    ("project-name-newline", PROJECT.replace("name: team", 'name: "team\\n"'), 3, "valid name"),
    ("env-key-newline", SESSION + '  env: {"A\\n": x}\n', 6, "not a valid variable name"),
    (
        "merge-key-twice",
        "x: &a {label: a}\ny: &b {agent: b}\n"
        + SESSION.replace("  task", "  <<: *a\n  <<: *b\n  task"),
        8,
        "duplicate key '<<'",
    ),
    # A tag on a collection was dropped and the value read as a plain one.
    (
        "python-tag-on-list",
        SESSION + "  metadata: !!python/object/apply:os.system ['echo PWNED']\n",
        6,
        "unsupported YAML tag",
    ),
    ("set-tag", SESSION + "  metadata: {s: !!set {a, b}}\n", 6, "unsupported YAML tag"),
    ("local-tag-on-mapping", SESSION + "  metadata: !foo {a: 1}\n", 6, "unsupported YAML tag"),
    # Base 60 past the limit: refused before PyYAML builds it (quadratic in its length).
    ("metadata-base60-long", SESSION + "  metadata: {n: 1" + ":59" * 3000 + "}\n", 6, "characters"),
    (
        "metadata-base60-float",
        SESSION + "  metadata: {a: 1" + ":59" * 200 + ".5}\n",
        6,
        "too large",
    ),
    # Values JSON cannot carry: each went on to a traceback (exit 1) when encoded.
    ("metadata-inf", SESSION + "  metadata: {d: .inf}\n", 6, "numbers must be finite"),
    # Written in full, past a float: not called .inf, which it was not written as.
    ("metadata-float-huge", SESSION + "  metadata: {d: 1.0e+999}\n", 6, "number too large"),
    ("metadata-hex-huge", SESSION + "  metadata: {x: 0x" + "f" * 4000 + "}\n", 6, "4300 digits"),
    (
        "metadata-int-long",
        SESSION + "  metadata: {x: " + "1" * 5000 + "}\n",
        6,
        "an integer written with 5000 digits",
    ),
    (
        "defaults-nan",
        PROJECT + "defaults: {metadata: {x: .nan}}\n" + "---\n" + SESSION,
        4,
        "finite",
    ),
    (
        "set-template-inf",
        "apiVersion: reconciler/v1\nkind: SessionSet\nname: r\ngenerator:\n  items: [{n: 1}]\n"
        'template:\n  name: r-a\n  spec: {task: t, metadata: {x: "{{ 1e308 * 10 }}"}}\n',
        8,
        "spec.metadata holds a number JSON cannot carry",
    ),
    (
        "set-repo-newline",
        "apiVersion: reconciler/v1\nkind: SessionSet\nname: r\ngenerator:\n"
        '  repos: [{fullName: "c/d\\n"}]\n'
        "template:\n  name: r-{{ item.name }}\n  spec: {task: t}\n",
        5,
        "generator.repos[0]",
    ),
    (
        # Only jsonschema-rs refuses it (Python's re reads U+FEFF as \s): located all
        # the same, with its reason, where it said "does not match" at line 1.
        "set-repo-bom",
        "apiVersion: reconciler/v1\nkind: SessionSet\nname: r\ngenerator:\n"
        '  repos: ["acme/a\\ufeffb"]\n'
        "template:\n  name: r-{{ item.name }}\n  spec: {task: t}\n",
        5,
        "generator.repos[0]",
    ),
    (
        "set-name-newline",
        "apiVersion: reconciler/v1\nkind: SessionSet\nname: r\ngenerator:\n"
        "  repos: [c/d]\ntemplate:\n  name: |\n    r-{{ item.name }}\n  spec: {task: t}\n",
        7,
        "not a valid name",
    ),
    (
        "policy-name-newline",
        'apiVersion: reconciler/v1\nkind: Policy\nname: p\nspec:\n  match: {names: ["s\\n"]}\n'
        '  rules: [{expression: "true", message: m}]\n',
        5,
        "does not match",
    ),
    ("adopt-newline", SESSION + 'adopt: "codesess_abc\\n"\n', 6, "does not match"),
    ("plain-env-newline", PROJECT + 'plainEnv: ["AGENTUITY_SDK_KEY\\n"]\n', 4, "plainEnv"),
]


def _write(tmp_path: Path, content: str | bytes, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return invoke(capsys, "validate", *args)


@pytest.mark.parametrize(
    ("content", "line", "fragment"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_input_exits_65_with_located_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, line: int, fragment: str
) -> None:
    path = _write(tmp_path, content)
    code, out, err = _validate(capsys, str(path))
    assert code == 65
    assert "Traceback" not in err
    assert out == ""
    lines = err.splitlines()
    assert lines, err
    for text in lines:  # errors, and warnings (a literal env value) beside them: located
        assert re.match(rf"^(error|warning): {re.escape(str(path))}:\d+:\d+: ", text), text
    assert any(text.startswith(f"error: {path}:{line}:") and fragment in text for text in lines), (
        err
    )


def test_at_least_forty_invalid_cases() -> None:
    assert len(INVALID) >= 40


HOSTILE: list[tuple[str, bytes, str]] = [
    ("binary", b"apiVersion: reconciler/v1\n\x00\x01\x02", "binary file"),
    (
        "latin-1",
        "apiVersion: reconciler/v1\nkind: Session\nname: caf\xe9\n".encode("latin-1"),
        "not UTF-8",
    ),
    ("utf-16", "apiVersion: x\n".encode("utf-16"), "not UTF-8"),
    ("control-char", b"apiVersion: reconciler/v1\nkind: \x07Session\n", "YAML:"),
    (
        "billion-laughs",
        (
            "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n"
                for i in range(8)
            )
        ).encode(),
        "alias expansion exceeds",
    ),
]


@pytest.mark.parametrize(
    ("content", "fragment"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_files_are_refused_with_a_located_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, fragment: str
) -> None:
    path = _write(tmp_path, content)
    code, _, err = _validate(capsys, str(path))
    assert code == 65
    assert "Traceback" not in err
    assert re.search(
        rf"^error: {re.escape(str(path))}:\d+:\d+: .*{re.escape(fragment)}", err, re.M
    ), err


def test_oversized_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "# " + "x" * (5 * 1024 * 1024) + "\n")
    code, _, err = _validate(capsys, str(path))
    assert code == 65
    assert f"error: {path}: file is larger than 5 MiB" in err


def test_an_unset_variable_is_warned_of_once_with_its_count_of_references(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret every session references, unset where the manifests are validated (a
    pull request's job), is one line, not one per session. Referenced under env only, a
    plan does not need it (an apply sending it stops); in a plain field, a plan does."""
    for name in ("UNSET_A", "UNSET_B", "UNSET_C"):
        monkeypatch.delenv(name, raising=False)
    sessions = [
        SESSION.replace("s1", f"s{i}") + f"  env: {{TOKEN: '${{env:UNSET_A}}'{extra}}}\n"
        for i, extra in enumerate(["", "", ", URL: 'x${env:UNSET_A}${env:UNSET_B}'"])
    ]
    sessions.append(SESSION.replace("s1", "s3") + "  env: {C: '${env:UNSET_C}'}\n")
    sessions.append(SESSION.replace("s1", "s4") + "  label: '${env:UNSET_C}'\n")
    _write(tmp_path, PROJECT + "plainEnv: [UNSET_C]\n---\n" + "---\n".join(sessions))
    code, _, err = _validate(capsys, str(tmp_path))
    assert code == 0, err
    path = tmp_path / "m.yaml"
    unset = "is not set (an apply that sends it will stop; a plan does not need it)"
    planned = "is not set (a plan or apply that needs it will stop)"
    assert err.splitlines() == [
        f"warning: {path}:11:16: ${{env:UNSET_A}} {unset}; 3 more references to it",
        f"warning: {path}:25:39: ${{env:UNSET_B}} {unset}",
        f"warning: {path}:32:12: ${{env:UNSET_C}} {planned}; 1 more reference to it",
        f"warning: {path}:25:34: spec.env.URL holds a value written literally beside its "
        "reference (text, or a default): a secret in the manifest is in git and in the "
        'marker hash; write "${env:URL}" alone and set it where apply runs (`plan --out` '
        "refuses it)",
    ]


def test_valid_tree_prints_ok_summary_and_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, PROJECT, "project.yaml")
    _write(tmp_path, SESSION + "  env: {TOKEN: '${env:TOKEN}'}\n", "a.yaml")
    _write(tmp_path, SESSION.replace("s1", "s2") + "---\n" + SESSION.replace("s1", "s3"), "b.yml")
    code, out, err = _validate(capsys, str(tmp_path))
    assert code == 0
    assert out == "OK: 1 project, 3 sessions in 3 files\n"
    assert (
        err == f"warning: {tmp_path / 'a.yaml'}:6:16: ${{env:TOKEN}} is not set "
        "(an apply that sends it will stop; a plan does not need it)\n"
    )


def test_errors_from_several_files_are_reported_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, PROJECT + "---\n" + PROJECT, "a.yaml")
    _write(tmp_path, SESSION, "b.yaml")
    _write(tmp_path, SESSION + "  visibility: public\n", "c.yaml")
    _write(tmp_path, "kind: [\n", "d.yaml")
    code, _, err = _validate(capsys, str(tmp_path))
    assert code == 65
    a, b, c, d = (tmp_path / n for n in ("a.yaml", "b.yaml", "c.yaml", "d.yaml"))
    assert err.splitlines() == [
        f"error: {a}:5:1: more than one Project document (first at {a}:1)",
        # c.yaml's s1 fails the schema and is still a second s1: both are said at once.
        f"error: {c}:3:7: duplicate session name 's1' (first at {b}:3:7)",
        f"error: {c}:6:15: spec.visibility: 'public' is not one of private, organization, "
        "collaborate, org, collab (or a ${env:NAME} reference)",
        f"error: {d}:2:1: YAML: while parsing a flow node; did not find expected node content",
    ]


def test_duplicate_session_names_across_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, SESSION, "a.yaml")
    _write(tmp_path, "# second\n" + SESSION, "b.yaml")
    code, _, err = _validate(capsys, str(tmp_path))
    assert code == 65
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert err == f"error: {b}:4:7: duplicate session name 's1' (first at {a}:3:7)\n"


def test_a_second_project_that_fails_the_schema_is_still_a_second_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, PROJECT, "a.yaml")
    _write(tmp_path, PROJECT + "policy: {prune: sometimes}\n", "b.yaml")
    code, _, err = _validate(capsys, str(tmp_path))
    assert code == 65
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    lines = err.splitlines()
    assert lines[0] == f"error: {b}:1:1: more than one Project document (first at {a}:1)"
    assert len(lines) == 2 and lines[1].startswith(f"error: {b}:4:") and "prune" in lines[1]


def test_a_second_project_without_a_readable_name_is_still_a_second_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, PROJECT, "a.yaml")
    _write(tmp_path, PROJECT.replace("name: team", "name: [team]"), "b.yaml")
    code, _, err = _validate(capsys, str(tmp_path))
    assert code == 65
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    lines = err.splitlines()
    assert lines[0] == f"error: {b}:1:1: more than one Project document (first at {a}:1)"
    assert len(lines) == 2 and lines[1].startswith(f"error: {b}:") and "name" in lines[1]


def test_json_format_lists_errors_and_exits_65(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, SESSION + "  env: {TOKEN: 12}\n")
    code, out, err = _validate(capsys, "--format", "json", str(path))
    assert code == 65
    # Errors go to stderr as well, as every command says them (a CI log shows why).
    assert err == (
        f"error: {path}:6:16: spec.env.TOKEN: must be a string, not a number; quote it for "
        "the text (YAML reads true, false, yes, no, on, off and numbers unquoted as values)\n"
    )
    assert json.loads(out) == {
        "valid": False,
        "errors": [
            {
                "file": str(path),
                "line": 6,
                "column": 16,
                "message": "spec.env.TOKEN: must be a string, not a number; quote it for "
                "the text (YAML reads true, false, yes, no, on, off and numbers unquoted "
                "as values)",
            }
        ],
        "warnings": [],
    }


def test_json_format_valid_lists_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, SESSION + "  env: {L: '${env:LABEL}'}\n")
    code, out, _ = _validate(capsys, "--format", "json", str(path))
    assert code == 0
    assert json.loads(out) == {
        "valid": True,
        "errors": [],
        "warnings": [
            {
                "file": str(path),
                "line": 6,
                "column": 12,
                "message": "${env:LABEL} is not set (an apply that sends it will stop; a plan "
                "does not need it)",
            }
        ],
        "sets": [],
        "notes": [NO_PROJECT_NOTE],
    }


def test_secret_values_never_appear_in_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        SESSION + "  env: {TOKEN: [hunter2-secret], OTHER: 'hunter3-secret ${env:'}\n",
    )
    code, out, err = _validate(capsys, str(path))
    assert code == 65
    assert "hunter" not in out + err
    code, out, err = _validate(capsys, "--format", "json", str(path))
    assert "hunter" not in out + err


def test_missing_path_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _validate(capsys, str(tmp_path / "nope"))
    assert code == 65
    assert err == f"error: {tmp_path / 'nope'}: no such file or directory\n"
    # A name close to one beside it: said, as for a mistyped --target.
    (tmp_path / "sessions").mkdir()
    (tmp_path / ".sesions").mkdir()  # hidden names are not suggested
    code, _, err = _validate(capsys, str(tmp_path / "sesions") + "/")
    assert code == 65
    assert err == (
        f"error: {tmp_path / 'sesions'}: no such file or directory; did you mean sessions?\n"
    )


def test_project_option_must_match_the_project_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, PROJECT)
    code, _, err = _validate(capsys, "--project", "other", str(path))
    assert code == 65
    assert err == f"error: {path}:3:7: --project 'other' does not match the Project name 'team'\n"


def test_default_path_is_the_current_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, SESSION, "s.yaml")
    monkeypatch.chdir(tmp_path)
    code, out, err = _validate(capsys)
    assert code == 0
    assert out == "OK: no project, 1 session in 1 file\n"
    assert err == f"note: {NO_PROJECT_NOTE}\n"


def test_a_folder_without_project_is_valid_with_a_note_plan_would_refuse_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hook may check one file at a time, so no Project is valid; the note says that
    ``plan`` needs one, in text (stderr) and in JSON (``notes``), and not when a Project
    document or ``--project`` names the project."""
    session = _write(tmp_path, SESSION, "s.yaml")
    code, out, err = _validate(capsys, "--format", "json", str(session))
    assert code == 0 and err == ""
    assert json.loads(out)["notes"] == [NO_PROJECT_NOTE]
    code, out, err = _validate(capsys, "--project", "team", str(session))
    assert (code, out, err) == (0, "OK: 1 project, 1 session in 1 file\n", "")
    code, out, err = _validate(capsys, "--format", "json", "--project", "team", str(session))
    assert code == 0 and "notes" not in json.loads(out)
    _write(tmp_path, PROJECT, "project.yaml")
    code, out, err = _validate(capsys, str(tmp_path))
    assert (code, out, err) == (0, "OK: 1 project, 1 session in 2 files\n", "")
    # plan refuses the file alone (65, before any request), saying what the usual fix is.
    hub = tmp_path / "hub.sqlite3"
    code, out, err = invoke(
        capsys, "--api-url", "local", "--local-db", str(hub), "plan", str(session)
    )
    assert (code, out) == (65, "")
    assert err.endswith(
        "error: no Project document found among the paths: give the folder that holds the "
        "`kind: Project` file (its name, defaults and policy), add one, or pass --project "
        "NAME (then no defaults, and the default policy)\n"
    )


def test_schema_command_prints_shipped_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("manifest", "project"):
        assert run(["schema", name]) == 0
        out, _ = capsys.readouterr()
        assert json.loads(out)["$id"].endswith(f"/{name}.schema.json")
    assert run(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["$id"].endswith("/manifest.schema.json")


def test_a_tagged_secret_that_is_no_number_is_not_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, SESSION + "  env: {T: !!int sk-live-canary}\n")
    code, out, err = _validate(capsys, str(path))
    assert code == 65 and "a secret value is not an integer" in err
    assert "canary" not in out + err


def test_a_bad_value_an_alias_repeats_is_refused_once_where_it_is_anchored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, SESSION + "  metadata:\n    a: &a !!int yes\n    b: [*a, *a, *a]\n")
    code, _, err = _validate(capsys, str(path))
    assert code == 65
    assert err.splitlines() == [f"error: {path}:7:8: 'yes' is not an integer (its tag says it is)"]


_REFUSED_ALIAS = "an alias repeats this value both under env and outside it"


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        # Met outside env first, the value was shown in its error; then the alias put it
        # under env, where values are secret.
        ("  metadata: {a: &x !!int canaryHIDDEN-1}\n  env: {E: *x}\n", [_REFUSED_ALIAS]),
        ("  metadata: &m {a: !!int canaryHIDDEN-2}\n  env: *m\n", [_REFUSED_ALIAS]),
        # Repeated by a second alias before env: the reader crashed (an error said once
        # was still marked to be said again), and lost the next error.
        (
            "  metadata: &m {k: !!int canaryHIDDEN-3}\n  tags: *m\n"
            "  label: !custom other\n  env: *m\n",
            [_REFUSED_ALIAS, "unsupported YAML tag '!custom'"],
        ),
        # A reference with a default: the default is secret under env (unless the
        # variable is plain, which the reference checks judge).
        (
            '  metadata: {k: &v !!int "${env:DBPW:-canaryHIDDEN-4}"}\n  env: {A: *v}\n',
            [],
        ),
        ('  env: {A: &v !!int "${env:DBPW:-canaryHIDDEN-5}"}\n  metadata: {k: *v}\n', []),
    ],
)
def test_a_bad_value_an_alias_puts_under_env_is_not_shown_where_it_was_met_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fields: str, said: list[str]
) -> None:
    path = _write(tmp_path, SESSION + fields)
    code, out, err = _validate(capsys, str(path))
    assert code == 65
    assert "a secret value is not an integer (its tag says it is)" in err
    assert all(message in err for message in said), err
    assert "canary" not in out + err


def test_a_list_where_a_tag_goes_is_refused_without_showing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The reserved-prefix rule printed the whole list, a default from env included.
    fields = '  env: {TOKEN: &t "${env:TOKEN:-canaryHIDDEN-8}"}\n  tags: [[*t]]\n'
    path = _write(tmp_path, SESSION + fields)
    code, out, err = _validate(capsys, str(path))
    assert code == 65
    assert "spec.tags[0]: must be a string, not a list" in err
    assert "canary" not in out + err


def test_no_value_is_shown_once_an_alias_stops_the_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first alias under env is refused and reading stops: the second, which would
    # have put hunter2 under env too, is never met. So no value shown before is kept.
    fields = (
        "  metadata: {a: &pw !!int canaryHIDDEN-6, b: &port !!int eighty}\n"
        "  env: {PORT: *port, DB_PASSWORD: *pw}\n"
    )
    path = _write(tmp_path, SESSION + fields)
    code, out, err = _validate(capsys, str(path))
    assert code == 65
    assert err.count("a secret value is not an integer") == 2
    assert _REFUSED_ALIAS in err
    assert "canary" not in out + err and "eighty" not in out + err


def test_a_set_item_is_not_shown_in_its_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The template may put any item field under env.
    sessionset = (
        "apiVersion: reconciler/v1\nkind: SessionSet\nname: set\ngenerator:\n"
        "  items:\n    - {id: a, pw: !!int canaryHIDDEN-7}\n"
        "template:\n  name: 's-{{ item.id }}'\n  spec:\n    task: t\n"
        "    env: {PW: '{{ item.pw }}'}\n"
    )
    path = _write(tmp_path, sessionset)
    code, out, err = _validate(capsys, str(path))
    assert code == 65
    assert "a secret value is not an integer" in err
    assert "canary" not in out + err


def test_a_collection_an_alias_repeats_makes_its_error_once(tmp_path: Path) -> None:
    # Said once by the reader itself, not made once per copy and merged at the end (a
    # million copies made a million errors: 18 s and 1.6 GB).
    copies = ", ".join(["*r"] * 1000)
    path = _write(tmp_path, SESSION + f"  metadata:\n    r: &r {{a: 1, a: 2}}\n    c: [{copies}]\n")
    errors: list[ManifestError] = []
    for _ in iter_documents(str(path), str(path), errors):
        pass
    assert [e.detail for e in errors] == ["duplicate key 'a' (first at line 7)"]


@pytest.mark.subprocess
def test_errors_at_one_place_come_in_the_same_order_whatever_the_hash_seed(
    tmp_path: Path,
) -> None:
    # The schema's errors for two values an alias repeats met the loader in an order
    # that followed string hashing: E0 first in one run, E1 in the next.
    path = _write(tmp_path, SESSION + "  env: {E0: &n 5, E1: *n, E2: *n}\n")
    outputs = set()
    for seed in ("1", "2", "3", "4", "5"):
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", "validate", str(path)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=False,
        )
        assert done.returncode == 65, done.stderr
        outputs.add(done.stderr)
    (err,) = outputs
    assert [line.split(": ")[2] for line in err.splitlines()] == [
        "spec.env.E0",
        "spec.env.E1",
        "spec.env.E2",
    ]


def test_names_ending_in_a_newline_are_refused_wherever_code_reads_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Python's `$` matches before a last newline: each of these took "x\n" for a name.
    from reconciler.hub.config import parse_token_spec
    from reconciler.model import Marker

    assert Marker.parse("reconciler:team/s1@0123456789ab") is not None
    assert Marker.parse("reconciler:team/s1@0123456789ab\n") is None
    path = _write(tmp_path, SESSION)
    code, _out, err = _validate(capsys, "--project", "team\n", str(path))
    assert code == 64 and "not a valid project name" in err, err  # a bad flag
    with pytest.raises(ValueError):
        parse_token_spec("tok\n=org_a:user_a")


def test_what_plain_references_resolve_to_is_checked_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # validate said OK; apply created the other sessions, then the hub refused this one
    # (400: an empty skill id).
    monkeypatch.setenv("PSKILL", "")
    path = _write(
        tmp_path,
        PROJECT
        + "plainEnv: [PSKILL]\n---\n"
        + SESSION.replace("s1", "skill")
        + '  skills: [{skillId: "${env:PSKILL}", repo: a/b}]\n',
    )
    code, out, err = _validate(capsys, str(path))
    assert code == 65, err
    assert f"{path}:11:22: spec.skills[0].skillId: what its ${{env:...}} reference resolves " in err
    # Resolved to a value the hub takes: valid.
    monkeypatch.setenv("PSKILL", "triage")
    assert _validate(capsys, str(path))[0] == 0


def _secret_sized(tmp_path: Path, blob: int, env: str) -> tuple[Path, list[str]]:
    """A folder with a small session and one holding ``blob`` bytes of metadata and
    ``env``, and the options of an embedded hub."""
    folder = tmp_path / "m"
    folder.mkdir(exist_ok=True)
    (folder / "project.yaml").write_text(PROJECT)
    (folder / "a.yaml").write_text(SESSION.replace("s1", "a"))
    big = SESSION.replace("s1", "big") + "  metadata: {blob: " + "x" * blob + "}\n"
    (folder / "big.yaml").write_text(big + env)
    return folder, ["--api-url", "local", "--local-db", str(tmp_path / "hub.sqlite3")]


def test_a_create_over_the_limit_once_its_secrets_resolve_is_refused_before_any_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # apply created `a`, then the hub refused `big` (413): a partial apply.
    big = "y" * 60_000
    monkeypatch.setenv("BIGVAL", big)
    folder, hub = _secret_sized(tmp_path, 1_000_000, '  env: {TOKEN: "${env:BIGVAL}"}\n')
    code, out, err = invoke(capsys, *hub, "apply", "--yes", str(folder))
    assert code == 65, err
    assert (
        f"{folder}/big.yaml:1:1: big: the create request would be 1060065 bytes once its env "
        "values are resolved" in err
    )
    assert big not in err and big not in out
    code, out, _ = invoke(capsys, *hub, "plan", str(folder))
    assert code == 65 and "Plan: 2 to create" not in out
    # What sends no create is not refused: status reads (exit 0 whatever it shows).
    code, out, err = invoke(capsys, *hub, "status", str(folder))
    assert code == 0 and "missing" in out, err
    monkeypatch.setenv("BIGVAL", "small")
    code, out, err = invoke(capsys, *hub, "apply", "--yes", str(folder))
    assert code == 0, err
    # Grown on a session that exists, it refuses nothing: env is sent only by a create
    # (a regression of my first version, which refused every command of the project).
    monkeypatch.setenv("BIGVAL", big)
    (folder / "a.yaml").write_text(SESSION.replace("s1", "a").replace("Do the thing", "Do it"))
    assert invoke(capsys, *hub, "validate", str(folder))[0] == 0
    code, out, err = invoke(capsys, *hub, "status", str(folder))
    assert code == 0, err


def test_a_secret_that_json_escapes_is_measured_as_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long reference to control characters grows little as text, six times as JSON.
    name = "N" * 60_000
    monkeypatch.setenv(name, "\x01" * 60_007)
    folder, hub = _secret_sized(tmp_path, 800_000, f'  env: {{K: "${{env:{name}}}"}}\n')
    code, _out, err = invoke(capsys, *hub, "plan", str(folder))
    assert code == 65 and "the create request would be 1160" in err, err


def test_a_refused_project_reports_its_own_errors_not_one_per_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One typo in the Project made every session report what the Project would have
    # given it: "declare PLAIN in plainEnv" (it was), "spec.task is required" (the
    # defaults give it). A wall of wrong advice, the real error somewhere inside it.
    monkeypatch.setenv("PLAIN", "v")
    sessions = "".join(
        "---\napiVersion: reconciler/v1\nkind: Session\n"
        f'name: s{i}\nspec:\n  label: "${{env:PLAIN}}"\n'
        for i in range(5)
    )
    project = PROJECT + "plainEnv: [PLAIN, 1BAD]\ndefaults: {task: t, lable: x}\n"
    path = _write(tmp_path, project + sessions)
    code, _out, err = _validate(capsys, str(path))
    assert code == 65
    assert err.splitlines() == [
        f"error: {path}:4:19: plainEnv[1]: '1BAD' does not match ^[A-Za-z_][A-Za-z0-9_]*$",
        f"error: {path}:5:21: defaults: unknown field 'lable'; did you mean label? (allowed: "
        "agent, env, label, loop, metadata, repo, repos, savedSkillIds, skillBucketIds, "
        "skills, tags, task, visibility, workflowMode, workspaceId)",
    ]


def test_a_plain_reference_resolving_to_a_reserved_tag_is_named_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_TAG", "reconciler:other/x@0123456789ab")
    path = _write(
        tmp_path,
        PROJECT + "plainEnv: [TEAM_TAG]\n---\n" + SESSION + '  tags: ["${env:TEAM_TAG}"]\n',
    )
    code, _out, err = _validate(capsys, str(path))
    assert code == 65
    assert f"{path}:11:10: spec.tags[0]: what its ${{env:...}} reference resolves to" in err
    assert "a value the field reserves (reconciler: tags are the tool's)" in err
    assert "0123456789ab" not in err


def test_a_signed_integer_of_the_longest_length_is_taken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The sign is no digit: "+" and 4,300 nines was refused as 4,301 characters long.
    path = _write(tmp_path, SESSION + "  metadata: {x: +" + "9" * 4300 + "}\n")
    assert _validate(capsys, str(path))[0] == 0
    path = _write(tmp_path, SESSION + "  metadata: {x: -" + "9" * 4301 + "}\n")
    code, _out, err = _validate(capsys, str(path))
    assert code == 65 and "an integer written with 4301 digits" in err


@pytest.mark.parametrize(
    "number",
    [
        "1_" + "0" * 4299,  # 4,300 digits, an underscore between them (YAML 1.1)
        "0b" + "1" * 5000,  # about 1,505 decimal digits
        "0" + "7" * 4400,  # octal: about 3,973 decimal digits
        "1" + ":59" * 2000,  # base 60: about 3,556 decimal digits
    ],
)
def test_integers_json_writes_are_taken_however_long_their_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], number: str
) -> None:
    # The limit counted the text's characters: each of these, which the last stop
    # validated and applied, was refused.
    path = _write(tmp_path, SESSION + "  metadata: {x: " + number + "}\n")
    assert _validate(capsys, str(path))[0] == 0


def test_when_only_jsonschema_rs_refuses_its_messages_never_quote_a_mapping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # jsonschema-rs quotes the failing instance: a mapping may hold env values.
    from reconciler.manifest import validation

    class Agrees:  # stands in for jsonschema finding nothing (a disagreement)
        def iter_errors(self, value: object) -> list[object]:
            return []

    monkeypatch.setattr(validation, "_validator", lambda: Agrees())
    canary = "canary-secret-4d1f"
    text = SESSION + f"  env: {{K: {canary}}}\n  prompt: unknown\n"
    path = _write(tmp_path, text)
    code, _out, err = _validate(capsys, str(path))
    assert code == 65
    assert f"{path}:5:3: spec: is not valid here" in err
    assert canary not in err


def test_an_alias_of_a_bare_plain_reference_may_cross_envs_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The reference is the variable's: plainEnv says it may be shown, so label may reuse it.
    content = (
        PROJECT
        + "plainEnv: [GIT_BRANCH]\n---\n"
        + SESSION
        + '  env: {BRANCH: &b "${env:GIT_BRANCH}", CH: &c "${env:GIT_BRANCH:-main}"}\n'
        + "  label: *b\n  tags: [*c]\n"
    )
    code, out, err = _validate(capsys, str(_write(tmp_path, content)))
    assert code == 0, err


def test_default_skills_that_resolve_to_one_skill_are_said_once_at_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Plain references in the defaults' skills resolve alike for every session: the
    # repeat is judged as they resolve, said once, at the defaults.
    monkeypatch.setenv("S1", "foo")
    monkeypatch.setenv("S2", "foo")
    project = PROJECT + "plainEnv: [S1, S2]\ndefaults:\n  skills:\n"
    project += "    - {skillId: '${env:S1}', repo: o/r}\n    - {skillId: '${env:S2}', repo: o/r}\n"
    path = _write(tmp_path, project + "---\n" + SESSION + "---\n" + SESSION.replace("s1", "s2"))
    code, _, err = _validate(capsys, str(path))
    assert code == 65
    assert err == (
        f"error: {path}:6:3: defaults.skills[1]: the same skill (skillId and repo) as "
        "defaults.skills[0]; declare each skill once\n"
    )
    monkeypatch.setenv("S2", "bar")
    assert _validate(capsys, str(path))[0] == 0
    # Not plain, the variables are secret: refused where they are referenced, and the
    # repeat they make is said without a value.
    monkeypatch.setenv("S2", "canary-skill-secret")
    monkeypatch.setenv("S1", "canary-skill-secret")
    path.write_text(path.read_text().replace("plainEnv: [S1, S2]\n", ""))
    code, _, err = _validate(capsys, str(path))
    assert code == 65 and "canary-skill-secret" not in err
    assert "defaults.skills[1]: the same skill (skillId and repo) as" in err
