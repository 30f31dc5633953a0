"""load_manifests: discovery, the model it builds, references, hostile input."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from reconciler.errors import ManifestErrors
from reconciler.manifest import LoadResult, ManifestWarning, load_manifests, yamlread
from reconciler.model import Lifecycle, Policy, SourceLocation

PROJECT = """\
apiVersion: reconciler/v1
kind: Project
name: platform-team
orgId: org_123
plainEnv: [REPO, WHO, VIS]  # not secret: may be referenced outside env
defaults:
  visibility: org
  tags: [platform]
  env: {TOKEN: "${env:TOKEN}"}
policy: {prune: delete, maxDestroyPercent: 50, protectLive: false}
"""
REF_SESSION = """\
apiVersion: reconciler/v1
kind: Session
name: nightly-triage
spec:
  task: Triage ${env:REPO:-acme/api}
  label: Nightly ${env:WHO}
  workflowMode: loop
  loop: {goal: Inbox zero, maxIterations: 20}
  tags: []
  state: archived
lifecycle: {preventDestroy: true, ignoreChanges: [label]}
"""
# The same without references, for tests about reading (references need a Project).
SESSION = REF_SESSION.replace("${env:REPO:-acme/api}", "acme/api").replace("${env:WHO}", "ops")


def _load(tmp_path: Path, files: dict[str, str], **kwargs: object) -> LoadResult:
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    environ = kwargs.pop("environ", {})
    return load_manifests([str(tmp_path)], environ=environ, **kwargs)  # type: ignore[arg-type]


def _errors(excinfo: pytest.ExceptionInfo[ManifestErrors]) -> list[str]:
    return [e.located() for e in excinfo.value.errors]


def test_project_and_session_model(tmp_path: Path) -> None:
    result = _load(tmp_path, {"a.yaml": PROJECT + "---\n" + REF_SESSION}, environ={"WHO": "ops"})
    project = result.project
    assert project.name == "platform-team"
    assert project.org_id == "org_123"
    assert project.policy == Policy(prune="delete", max_destroy_percent=50.0, protect_live=False)
    assert project.defaults == {
        "visibility": "organization",
        "tags": ["platform"],
        "env": {"TOKEN": "${env:TOKEN}"},
    }
    assert project.source == SourceLocation(str(tmp_path / "a.yaml"), 1, 1)
    (session,) = result.sessions
    assert session.name == "nightly-triage"
    assert session.state == "archived"
    assert session.lifecycle == Lifecycle(prevent_destroy=True, ignore_changes=("label",))
    assert session.source == SourceLocation(str(tmp_path / "a.yaml"), 12, 1)
    # Written form: refs unresolved, defaults applied as whole fields, `tags: []` kept.
    assert session.spec == {
        "task": "Triage ${env:REPO:-acme/api}",
        "label": "Nightly ${env:WHO}",
        "workflowMode": "loop",
        "loop": {"goal": "Inbox zero", "maxIterations": 20},
        "tags": [],
        "visibility": "organization",
        "env": {"TOKEN": "${env:TOKEN}"},
    }
    assert session.resolved["task"] == "Triage acme/api"
    assert session.resolved["label"] == "Nightly ops"
    assert session.resolved["env"] == {"TOKEN": "${env:TOKEN}"}
    assert session.unset_refs == {"env": frozenset({"TOKEN"})}
    assert result.warnings == (
        ManifestWarning(
            str(tmp_path / "a.yaml"),
            9,
            16,
            "${env:TOKEN} is not set (an apply that sends it will stop; a plan does not need it)",
        ),
    )
    assert result.files == (str(tmp_path / "a.yaml"),)


def test_resolved_substitutes_set_variables(tmp_path: Path) -> None:
    result = _load(
        tmp_path,
        {"a.yaml": PROJECT + "---\n" + REF_SESSION},
        environ={"WHO": "ops", "TOKEN": "s3cret", "REPO": "acme/web"},
    )
    (session,) = result.sessions
    # env is secret: kept as written until apply resolves it in the request body.
    assert session.resolved["env"] == {"TOKEN": "${env:TOKEN}"}
    assert session.resolved["task"] == "Triage acme/web"
    assert session.unset_refs == {}
    assert session.spec["env"] == {"TOKEN": "${env:TOKEN}"}
    assert result.warnings == ()


def test_spec_hash_ignores_secret_values(tmp_path: Path) -> None:
    files = {"a.yaml": PROJECT + "---\n" + REF_SESSION}
    one = _load(tmp_path, files, environ={"TOKEN": "a"}).sessions[0]
    two = _load(tmp_path, files, environ={"TOKEN": "b"}).sessions[0]
    assert one.spec_hash == two.spec_hash


def test_session_fields_win_over_defaults(tmp_path: Path) -> None:
    session = REF_SESSION.replace("  tags: []\n", "  tags: [mine]\n  visibility: collab\n")
    result = _load(tmp_path, {"p.yaml": PROJECT, "s.yaml": session})
    spec = result.sessions[0].spec
    assert spec["tags"] == ["mine"]
    assert spec["visibility"] == "collaborate"


def test_visibility_reference_resolved_and_checked(tmp_path: Path) -> None:
    session = (
        REF_SESSION
        + "---\n"
        + REF_SESSION.replace("nightly-triage", "other").replace(
            "  tags: []\n", "  tags: []\n  visibility: ${env:VIS}\n"
        )
    )
    result = _load(tmp_path, {"p.yaml": PROJECT, "s.yaml": session}, environ={"VIS": "collab"})
    assert result.sessions[1].resolved["visibility"] == "collaborate"
    assert result.sessions[1].spec["visibility"] == "${env:VIS}"
    with pytest.raises(ManifestErrors) as excinfo:
        _load(tmp_path, {}, environ={"VIS": "public"})
    assert _errors(excinfo) == [
        f"{tmp_path / 's.yaml'}:22:15: spec.visibility: ${{env:VIS}} resolves to a value that "
        "is not one of private, organization, collaborate, org, collab (the value is not "
        "shown: it comes from the environment)"
    ]


def test_project_from_option_when_no_project_document(tmp_path: Path) -> None:
    result = _load(tmp_path, {"s.yaml": SESSION}, project_name="team")
    assert result.project.name == "team"
    assert result.project.defaults == {}
    with pytest.raises(ManifestErrors) as excinfo:
        _load(tmp_path, {})
    assert "pass --project NAME" in _errors(excinfo)[0]
    with pytest.raises(ManifestErrors) as excinfo:
        _load(tmp_path, {}, project_name="Bad Name")
    assert "not a valid project name" in _errors(excinfo)[0]


def test_discovery_order_hidden_and_suffixes(tmp_path: Path) -> None:
    files = {
        "b/z.yml": SESSION.replace("nightly-triage", "z"),
        "a.yaml": PROJECT,
        "b/a.yaml": SESSION.replace("nightly-triage", "a"),
        ".hidden/x.yaml": "not: a manifest\n",
        "b/.also-hidden.yaml": "not: a manifest\n",
        "b/notes.txt": "not yaml",
    }
    result = _load(tmp_path, files)
    assert [s.name for s in result.sessions] == ["a", "z"]
    assert result.files == tuple(str(tmp_path / n) for n in ("a.yaml", "b/a.yaml", "b/z.yml"))


@pytest.mark.parametrize(
    "text", ["", "\n  \n", "# nothing here\n---\n", "# yaml-language-server: $schema=x\n#\n"]
)
def test_a_file_that_declares_nothing_is_refused(tmp_path: Path, text: str) -> None:
    # Read as declaring no sessions, a file caught while it is written (truncated, then
    # its first comment lines) would archive every session it declared.
    with pytest.raises(ManifestErrors) as caught:
        _load(tmp_path, {"a.yaml": PROJECT + "---\n" + SESSION, "b.yaml": text})
    assert [e.located() for e in caught.value.errors] == [
        f"{tmp_path / 'b.yaml'}: the file declares nothing (it is empty, or holds only "
        "comments or empty documents); delete it if it is meant to be empty"
    ]


def test_symlink_loops_and_duplicates_are_survived(tmp_path: Path) -> None:
    _load(tmp_path, {"m/a.yaml": PROJECT + "---\n" + SESSION})
    os.symlink(tmp_path / "m", tmp_path / "m" / "loop")
    os.symlink(tmp_path / "m" / "a.yaml", tmp_path / "m" / "same.yaml")
    result = load_manifests([str(tmp_path), str(tmp_path / "m" / "a.yaml")], environ={})
    assert len(result.sessions) == 1
    assert result.files == (str(tmp_path / "m" / "a.yaml"),)


def test_broken_symlink_is_an_error(tmp_path: Path) -> None:
    os.symlink(tmp_path / "gone.yaml", tmp_path / "link.yaml")
    with pytest.raises(ManifestErrors) as excinfo:
        load_manifests([str(tmp_path)], environ={}, project_name="p")
    assert _errors(excinfo) == [f"{tmp_path / 'link.yaml'}: broken symbolic link"]


def test_anchors_and_merge_keys(tmp_path: Path) -> None:
    content = """\
apiVersion: reconciler/v1
kind: Session
name: one
spec:
  task: t
  repo: &repo {fullName: acme/api, branch: main}
  repos: [*repo, {<<: *repo, branch: dev}]
"""
    (session,) = _load(tmp_path, {"s.yaml": content}, project_name="p").sessions
    assert session.spec["repos"] == [
        {"fullName": "acme/api", "branch": "main"},
        {"branch": "dev", "fullName": "acme/api"},
    ]
    # Aliased values are copies: nothing downstream can mutate two fields at once.
    assert session.spec["repo"] is not session.spec["repos"][0]


def test_billion_laughs_fails_fast(tmp_path: Path) -> None:
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        levels.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    start = time.perf_counter()
    with pytest.raises(ManifestErrors) as excinfo:
        _load(tmp_path, {"bomb.yaml": "\n".join(levels) + "\n"}, project_name="p")
    assert time.perf_counter() - start < 5
    assert "alias expansion exceeds" in _errors(excinfo)[0]


def _small_bomb(name: str) -> str:
    """A Session of about 400 bytes whose metadata expands to some 22,000 nodes."""
    return (
        f"apiVersion: reconciler/v1\nkind: Session\nname: {name}\nspec:\n  task: t\n"
        "  metadata:\n"
        "    a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        "    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "    d: [" + ", ".join(["*c"] * 20) + "]\n"
    )


def test_the_alias_budget_is_the_run_s_and_grows_with_the_bytes_read(tmp_path: Path) -> None:
    # Each bomb alone stayed under the old budget of 100,000 nodes per file, so a run of
    # many loaded them all; now their expansion is bounded by what the run read.
    files = {f"bomb-{i:03}.yaml": _small_bomb(f"bomb-{i}") for i in range(60)}
    start = time.perf_counter()
    with pytest.raises(ManifestErrors) as excinfo:
        _load(tmp_path, files, project_name="p")
    assert time.perf_counter() - start < 10
    errors = _errors(excinfo)
    assert len(errors) == 60 and all("alias expansion exceeds" in e for e in errors), errors[:3]
    # Aliases that expand to a little of what they take to write still load, in numbers
    # (anchors are per document: each session aliases its own repository).
    sessions = "".join(
        f"---\napiVersion: reconciler/v1\nkind: Session\nname: s-{i}\nspec:\n"
        f"  task: work {i}\n  repo: &r {{fullName: acme/api, branch: main}}\n"
        "  repos: [*r, {<<: *r, branch: dev}]\n"
        for i in range(2000)
    )
    result = _load(tmp_path / "ok", {"s.yaml": sessions}, project_name="p")
    assert len(result.sessions) == 2000


def test_all_errors_reported_together_in_file_order(tmp_path: Path) -> None:
    files = {
        "a.yaml": SESSION.replace("tags: []", "tags: 3") + "---\n" + SESSION,
        "b.yaml": "kind: Session\n",
    }
    with pytest.raises(ManifestErrors) as excinfo:
        _load(tmp_path, files, project_name="p")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert _errors(excinfo) == [
        f"{a}:9:9: spec.tags: must be a list, not a number",
        f"{a}:15:7: duplicate session name 'nightly-triage' (first at {a}:3:7)",
        f"{b}:1:1: document: 'apiVersion' is a required property",
        f"{b}:1:1: document: 'name' is a required property",
        f"{b}:1:1: document: 'spec' is a required property",
    ]
    assert excinfo.value.exit_code == 65


def test_reading_resumes_after_a_syntax_error_at_the_next_document(tmp_path: Path) -> None:
    broken = SESSION.replace("loop: {goal: Inbox zero, maxIterations: 20}", "loop: {goal: x")
    files = {
        "a.yaml": (
            broken  # an unclosed flow mapping: libyaml stops at the next `---`
            + "---\n"
            + SESSION.replace("nightly-triage", "second").replace("tags: []", "tags: 3")
            + "---\n"
            + "name: [third\n"  # broken on its own
            + "--- [fourth\n"  # broken on the marker's own line
            + "---\n"
            + SESSION.replace("nightly-triage", "fifth").replace("state: archived", "bogus: 1")
        ),
    }
    with pytest.raises(ManifestErrors) as excinfo:
        _load(tmp_path, files, project_name="p")
    a = tmp_path / "a.yaml"
    assert _errors(excinfo) == [
        # Each where its flow collection opened, libyaml's own mark said beside it.
        f"{a}:8:9: YAML: while parsing a flow mapping; did not find expected ',' or '}}' "
        "(noticed at line 9)",
        f"{a}:21:9: spec.tags: must be a list, not a number",
        f"{a}:25:7: YAML: while parsing a flow sequence; did not find expected ',' or ']' "
        "(noticed at line 26)",
        f"{a}:26:5: YAML: while parsing a flow sequence; did not find expected ',' or ']' "
        "(noticed at line 27)",
        f"{a}:37:3: spec: unknown field 'bogus' (allowed: agent, env, label, loop, metadata, "
        "repo, repos, savedSkillIds, skillBucketIds, skills, state, tags, task, visibility, "
        "workflowMode, workspaceId)",
    ]


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\n"], ids=["crlf", "cr", "lf"])
def test_reading_resumes_at_the_next_document_whatever_the_line_endings(
    tmp_path: Path, newline: str
) -> None:
    # libyaml ends lines at CRLF, CR, LF and also U+2028 (here inside a quoted task):
    # the restart must find the `---` on the line libyaml means, and skip no document.
    first = SESSION.replace("Triage acme/api", '"Triage\u2028inbox"')
    broken = SESSION.replace("nightly-triage", "second").replace("tags: []", "tags: [x")
    third = SESSION.replace("nightly-triage", "third").replace("tags: []", "tags: 3")
    text = first + "---\n" + broken + "---\n" + third
    (tmp_path / "a.yaml").write_bytes(text.replace("\n", newline).encode("utf-8"))
    with pytest.raises(ManifestErrors) as excinfo:
        _load(tmp_path, {}, project_name="p", environ={"WHO": "ops"})
    a = tmp_path / "a.yaml"
    assert _errors(excinfo) == [
        f"{a}:22:9: YAML: while parsing a flow sequence; did not find expected ',' or ']' "
        "(noticed at line 23)",
        f"{a}:34:9: spec.tags: must be a list, not a number",
    ]


def test_reconcilerignore_keeps_listed_paths_out_of_a_searched_directory(tmp_path: Path) -> None:
    files = {
        "a.yaml": PROJECT,
        "s/one.yaml": SESSION,
        "ci/workflow.yml": "on: push\njobs: {}\n",
        "s/drafts/wip.yaml": "not: a manifest\n",
        "s/scratch.yml": "not: a manifest\n",
        ".reconcilerignore": "# CI recipes are not manifests\nci/\ns/drafts/\nscratch.yml\n",
    }
    result = _load(tmp_path, files)
    assert [s.name for s in result.sessions] == ["nightly-triage"]
    assert result.files == (str(tmp_path / "a.yaml"), str(tmp_path / "s/one.yaml"))


def test_reconcilerignore_never_ignores_a_file_named_on_the_command_line(tmp_path: Path) -> None:
    _load(tmp_path, {"a.yaml": PROJECT, ".reconcilerignore": "b.yaml\n", "b.yaml": "x: 1\n"})
    with pytest.raises(ManifestErrors):
        load_manifests([str(tmp_path), str(tmp_path / "b.yaml")], environ={})


def test_the_cached_tag_resolution_gives_pyyaml_s_tags() -> None:
    import yaml
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    from reconciler.manifest.yamlread import _ManifestLoader

    loader = _ManifestLoader("")
    reference = yaml.CSafeLoader("")
    try:
        words = ["", "yes", "No", "on", "OFF", "true", "~", "null", "Null", "1", "-1", "+1"]
        words += ["0x1F", "0o17", "017", "1_000", "1e3", "1.5", ".inf", "-.Inf", ".nan"]
        words += ["2024-01-01", "2024-01-01 10:00:00", "<<", "=", "text", "t", "n", "y"]
        words += ["x" * 100, "123" * 30]
        for _ in range(2):  # the second round answers from the cache
            for word in words:
                for implicit in ((True, False), (False, True), (False, False)):
                    got = loader.resolve(ScalarNode, word, implicit)
                    assert got == reference.resolve(ScalarNode, word, implicit), word
        for kind in (MappingNode, SequenceNode):
            assert loader.resolve(kind, None, (True, False)) == reference.resolve(
                kind, None, (True, False)
            )
    finally:
        loader.dispose()
        reference.dispose()


def test_with_a_path_resolver_registered_pyyaml_s_own_loader_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Our loader's tags never depend on a node's path: while someone has registered
    a path resolver (PyYAML's ``add_path_resolver``), PyYAML's loader reads instead."""
    from reconciler.manifest import yamlread

    ours = yamlread._loader("a: 1")
    try:
        assert type(ours) is yamlread._ManifestLoader
    finally:
        ours.dispose()
    resolvers = {(("a",), yaml.nodes.ScalarNode): "tag:yaml.org,2002:str"}
    monkeypatch.setattr(yamlread._Loader, "yaml_path_resolvers", resolvers)
    theirs = yamlread._loader("a: 1")
    try:
        assert type(theirs) is yamlread._Loader
    finally:
        theirs.dispose()


def test_a_file_full_of_syntax_errors_says_where_it_stopped(tmp_path: Path) -> None:
    broken = "".join(f"---\nname: [broken{i}\n" for i in range(60))
    with pytest.raises(ManifestErrors) as excinfo:
        _load(tmp_path, {"a.yaml": broken}, project_name="p")
    found = _errors(excinfo)
    assert sum("YAML: while parsing a flow sequence" in e for e in found) == 50
    assert any(
        e.endswith(": YAML: stopped after 50 syntax errors; the rest of the file is not checked")
        for e in found
    )


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_a_control_character_is_located_by_character_not_byte(tmp_path: Path, newline: str) -> None:
    # libyaml reports a byte offset; after two-byte letters it must still be column 5.
    text = newline.join(["name: éé", "kind: x\x01", ""])
    with pytest.raises(ManifestErrors) as excinfo:
        _load(tmp_path, {"a.yaml": text}, project_name="p")
    assert (
        f"{tmp_path / 'a.yaml'}:2:8: YAML: control characters are not allowed (character #x0001)"
        in _errors(excinfo)
    )


def test_documents_around_a_control_character_are_still_checked(tmp_path: Path) -> None:
    # libyaml refuses the whole stream before parsing; each document is still checked.
    first = SESSION.replace("nightly-triage", "first").replace("tags: []", "tags: 3")
    broken = SESSION.replace("nightly-triage", "broken").replace("Inbox zero", "Inbox\x7fzero")
    last = SESSION.replace("nightly-triage", "last").replace("state: archived", "bogus: 1")
    with pytest.raises(ManifestErrors) as excinfo:
        _load(tmp_path, {"a.yaml": first + "---\n" + broken + "---\n" + last}, project_name="p")
    a = tmp_path / "a.yaml"
    found = _errors(excinfo)
    assert found[:2] == [
        f"{a}:9:9: spec.tags: must be a list, not a number",
        f"{a}:20:21: YAML: control characters are not allowed (character #x007f)",
    ]
    assert found[2].startswith(f"{a}:34:3: spec: unknown field 'bogus'") and len(found) == 3


def test_the_ascii_fast_check_finds_what_the_character_class_finds() -> None:
    # An ASCII file is checked with a translate of its bytes, any other with the class.
    for code in [*range(0x100), 0x2028, 0xFEFF, 0xFFFD, 0xFFFE, 0xFFFF, 0x1F600]:
        for text in (f"a: b{chr(code)}\n", f"{chr(code)}é"):
            data = text.encode("utf-8")
            expected = yamlread._NOT_PRINTABLE.search(text) is not None
            assert yamlread._not_printable_in(text, data) is expected, hex(code)


def test_keys_and_short_values_are_one_object_across_documents(tmp_path: Path) -> None:
    # 100,000 sessions repeat the same keys and words: one copy each, not one per document.
    body = (
        "---\nkind: Session\napiVersion: reconciler/v1\nname: {n}\n"
        "spec:\n  task: Task {n}\n  agent: claude-code\n"
    )
    (tmp_path / "s.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: p\n"
        + body.format(n="a")
        + body.format(n="b"),
        encoding="utf-8",
    )
    first, second = load_manifests([str(tmp_path)], environ={}).sessions
    keys_a, keys_b = list(first.spec), list(second.spec)
    assert keys_a == keys_b and all(a is b for a, b in zip(keys_a, keys_b, strict=True))
    assert first.spec["agent"] is second.spec["agent"]
