"""Fuzzing the manifest loader: whatever the bytes, only a ReconcilerError comes out."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import ReconcilerError
from reconciler.manifest import load_manifests
from reconciler.manifest.yamlread import MAX_DOCUMENT_DEPTH

VALID = """\
apiVersion: reconciler/v1
kind: Project
name: platform
orgId: org_123
defaults:
  visibility: organization
  tags: [platform]
policy:
  prune: archive
  maxDestroyPercent: 30
  protectLive: true
---
apiVersion: reconciler/v1
kind: Session
name: nightly-triage
spec:
  task: Triage issues opened since yesterday
  label: Nightly triage
  agent: claude-code
  visibility: org
  workflowMode: loop
  loop: {goal: Inbox zero, maxIterations: 20, autoContinue: true, allowDetached: true}
  tags: [triage]
  skills: [{skillId: gh-triage, repo: acme/skills}]
  repo: {fullName: acme/api, branch: main}
  env: {GITHUB_TOKEN: "${env:GITHUB_TOKEN}", LEVEL: "${env:LEVEL:-info}"}
  metadata: {team: platform}
  state: active
lifecycle:
  preventDestroy: false
  ignoreChanges: [label]
---
apiVersion: reconciler/v1
kind: Session
name: docs-bot
spec:
  task: Keep the docs current
  tags: []
"""
ENVIRON = {"GITHUB_TOKEN": "ghp_fuzz"}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Fragments that YAML and the schema treat specially.
TOKENS = [
    "",
    " ",
    "\t",
    "\n",
    ":",
    "- ",
    "---\n",
    "...\n",
    "&a ",
    "*a",
    "!!python/object:os.system ",
    "!!binary ",
    "<<: *a\n",
    "{",
    "}",
    "[",
    "]",
    '"',
    "'",
    "#",
    "%YAML 1.1\n",
    "null",
    "~",
    "true",
    "1e999",
    "-1",
    "0x10",
    "${env:",
    "${env:X}",
    "${env:1BAD}",
    "\x00",
    "\ufeff",
    "\udcff",
    "é",
    "name: a\n",
    "kind: Session\n",
    "apiVersion: v2\n",
    "spec:\n",
    "  tags: 3\n",
    "? [a]\n",
]


def _load(text_or_bytes: str | bytes, name: str = "m.yaml") -> str | None:
    """The error the loader reports for this file, or None when it loads."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        if isinstance(text_or_bytes, bytes):
            path.write_bytes(text_or_bytes)
        else:
            path.write_bytes(text_or_bytes.encode("utf-8", "surrogatepass"))
        try:
            load_manifests([tmp], environ=ENVIRON, project_name="fallback")
        except ReconcilerError as exc:
            assert str(exc)  # every error says something
            assert "ghp_fuzz" not in str(exc)
            return str(exc)
        except RecursionError as exc:  # pragma: no cover - the failure message
            raise AssertionError("loader recursed without bound") from exc
    return None


def test_the_seed_manifest_is_valid() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "m.yaml").write_text(VALID)
        result = load_manifests([tmp], environ=ENVIRON)
    assert [s.name for s in result.sessions] == ["nightly-triage", "docs-bot"]


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    _load(data)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map("".join))
def test_random_token_soup(text: str) -> None:
    _load(text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = VALID.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "replace", "indent"]))
        i = draw(st.integers(0, len(lines) - 1))
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert":
            lines.insert(i, draw(st.sampled_from(TOKENS)) + "\n")
        elif op == "indent":
            lines[i] = draw(st.sampled_from(["", " ", "    ", "\t"])) + lines[i].lstrip()
        else:
            line = lines[i]
            cut = draw(st.integers(0, len(line)))
            lines[i] = line[:cut] + draw(st.sampled_from(TOKENS)) + line[cut:]
    return "".join(lines)


@FUZZ
@given(mutated())
def test_mutated_manifests(text: str) -> None:
    _load(text)


@st.composite
def bytes_mutated(draw: st.DrawFn, data: bytes, keep: int) -> bytes:
    """``data`` with a few bytes flipped, inserted or deleted after its first ``keep``."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(keep, max(keep, len(out) - 1)))
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        if op == "insert" or i >= len(out):
            out.insert(i, draw(st.integers(0, 255)))
        elif op == "flip":
            out[i] ^= draw(st.integers(1, 255))
        elif len(out) > keep + 1:
            del out[i]
    return bytes(out)


UTF16_BOMS = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}


@FUZZ
@given(
    st.data(), mutated(), st.sampled_from(sorted(UTF16_BOMS)), st.sampled_from(["m.yaml", "m.yml"])
)
def test_utf16_with_a_byte_order_mark_is_refused_whatever_follows_it(
    data: st.DataObject, text: str, codec: str, name: str
) -> None:
    encoded = UTF16_BOMS[codec] + text.encode(codec, "surrogatepass")
    error = _load(data.draw(bytes_mutated(encoded, keep=2)), name)
    assert error is not None
    assert f"/{name}:1:1: not UTF-8 text (UTF-16 or UTF-32 byte order mark)" in error, error


@FUZZ
@given(st.data(), mutated(), st.sampled_from(sorted(UTF16_BOMS)))
def test_utf16_without_a_byte_order_mark_is_refused_where_it_first_shows(
    data: st.DataObject, text: str, codec: str
) -> None:
    """Without a BOM, UTF-16 of this text has a NUL in its first two bytes: refused as
    binary, located there; whatever mutations follow do not change that."""
    # A comment first: mutated text may start with U+FEFF, which is a BOM once encoded.
    encoded = ("#\n" + text).encode(codec, "surrogatepass")
    mutated_bytes = data.draw(bytes_mutated(encoded, keep=2))
    error = _load(mutated_bytes)
    assert error is not None, mutated_bytes[:40]
    column = mutated_bytes.index(b"\x00") + 1
    assert column <= 2 and f"/m.yaml:1:{column}: binary file (NUL byte)" in error, error


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    deep_list = (
        "apiVersion: reconciler/v1\nkind: Session\nname: a\nspec:\n  metadata: " + "[" * 5000
    )
    deep_map = "a: " + "{b: " * 3000 + "c" + "}" * 3000
    for text in (deep_list, deep_map):
        error = _load(text)
        assert error is not None and "nest" in error, error
    # Deep but well formed: refused by the depth limit, whatever the stack depth.
    error = _load("a: " + "[" * 400 + "]" * 400)
    assert error is not None and f"nested more than {MAX_DOCUMENT_DEPTH} levels" in error


def test_billion_laughs_is_bounded() -> None:
    doc = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for n in "bcdefgh":
        prev = chr(ord(n) - 1)
        doc += f"{n}: &{n} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
    error = _load(doc)
    assert error is not None and "alias expansion exceeds" in error, error
