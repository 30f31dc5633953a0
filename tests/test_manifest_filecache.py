"""The per-file manifest cache (manifest.filecache): a file that did not change (size,
mtime and content hash) is not read again, one that changed is, and every load gives
what a cold load gives: the same model, the same plan, the same errors at the same
places, whatever sequence of edits came before."""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from manifestreads import count_reads
from planner_fixtures import PROJECT, remote_for

from reconciler import planner
from reconciler.errors import ManifestErrors
from reconciler.manifest import inspect_manifests, load_manifests
from reconciler.manifest.filecache import ManifestCache
from reconciler.model import RemoteSession

PROJECT_FILE = f"""\
apiVersion: reconciler/v1
kind: Project
name: {PROJECT}
plainEnv: [LABEL]
defaults:
  visibility: organization
  tags: [base]
"""
SET_FILE = """\
apiVersion: reconciler/v1
kind: SessionSet
name: reviews
generator:
  items: [{items}]
template:
  name: "review-{{{{ item }}}}"
  spec: {{task: "Review {{{{ item }}}} (v{version})"}}
"""
POLICY_FILE = """\
apiVersion: reconciler/v1
kind: Policy
name: has-task
spec:
  rules:
    - expression: 'size(session.spec.task) > 0'
      message: every session has a task
"""


def session_file(stem: str, version: int) -> str:
    """Two sessions named after the file, one with an alias; ``version`` (one digit) is
    in both tasks, so that two versions have the same size."""
    return f"""\
apiVersion: reconciler/v1
kind: Session
name: {stem}-a
spec:
  task: "Triage {stem} (v{version})"
  label: "${{env:LABEL}}"
  env: {{TOKEN: "${{env:TOKEN}}"}}
  metadata: {{owner: &owner team-{stem}, backup: *owner}}
---
apiVersion: reconciler/v1
kind: Session
name: {stem}-b
spec:
  task: "Report on {stem} (v{version})"
"""


BROKEN = {
    0: "apiVersion: reconciler/v1\nkind: Session\nname: x\nspec: {task: [unclosed\n",
    1: "apiVersion: reconciler/v1\nkind: Session\nname: broken\nspec: {task: t, colour: red}\n",
}

Outcome = tuple[Any, ...]


def outcome(root: Path, environ: dict[str, str], cache: ManifestCache | None) -> Outcome:
    """What a load says: the model, the plan against ``OBSERVED``, or every error."""
    try:
        found = inspect_manifests([str(root)], environ=environ, cache=cache)
    except ManifestErrors as exc:
        return ("errors", [(e.file, e.line, e.column, e.detail) for e in exc.errors])
    plan = None
    if found.project is not None:
        plan = planner.plan(found.project, found.sessions, observed())
    return ("ok", found, plan)


@functools.cache
def observed() -> tuple[RemoteSession, ...]:
    """The hub: the sessions of the first tree as created (edits are then updates,
    removed files archives)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        Tree(root).write_all()
        loaded = load_manifests([str(root)], environ=ENVIRON)
    return tuple(remote_for(d, f"codesess_{i}") for i, d in enumerate(loaded.sessions))


ENVIRON = {"LABEL": "Nightly", "TOKEN": "t0ken"}


class Tree:
    """A manifest tree on disk and the edits the property test makes to it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, str] = {
            "00-project.yaml": PROJECT_FILE,
            "10-api.yaml": session_file("api", 1),
            "20-web.yaml": session_file("web", 1),
            "30-set.yaml": SET_FILE.format(items="x, y", version=1),
            "40-policy.yaml": POLICY_FILE,
        }
        self.versions: dict[str, int] = {}
        self.made = 0
        self.environ = dict(ENVIRON)

    def write_all(self) -> None:
        for name, text in self.files.items():
            (self.root / name).write_text(text, encoding="utf-8")

    def write(self, name: str, text: str) -> None:
        self.files[name] = text
        (self.root / name).write_text(text, encoding="utf-8")

    def editable(self, pick: int) -> str | None:
        names = [n for n in self.files if n not in ("00-project.yaml",)]
        return names[pick % len(names)] if names else None

    def stem(self, name: str) -> str:
        return name.split("-", 1)[1].removesuffix(".yaml")

    def valid_text(self, name: str, version: int) -> str:
        if name.endswith("-set.yaml"):
            return SET_FILE.format(items="x, y", version=version)
        if name.endswith("-policy.yaml"):
            return POLICY_FILE
        return session_file(self.stem(name), version)

    # -- the edits -------------------------------------------------------------------

    def edit(self, pick: int) -> None:
        """A new version, written as an editor writes it."""
        name = self.editable(pick)
        if name is not None:
            version = (self.versions.get(name, 1) + 1 + pick) % 10
            self.versions[name] = version
            self.write(name, self.valid_text(name, version))

    def same_size_same_mtime(self, pick: int) -> None:
        """Other content of the same size, the modification time put back: only the
        content hash tells."""
        name = self.editable(pick)
        if name is None:
            return
        path = self.root / name
        before = path.stat()
        version = (self.versions.get(name, 1) + 1) % 10
        text = self.valid_text(name, version)
        if len(text.encode()) != before.st_size or text == self.files[name]:
            return  # a broken or unversioned file: nothing of the same size to write
        self.versions[name] = version
        self.write(name, text)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    def touch(self, pick: int) -> None:
        name = self.editable(pick)
        if name is not None:
            info = (self.root / name).stat()
            os.utime(self.root / name, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))

    def add(self, pick: int) -> None:
        self.made += 1
        self.write(f"{50 + pick}-new{self.made}.yaml", session_file(f"new{self.made}", 1))

    def remove(self, pick: int) -> None:
        name = self.editable(pick)
        if name is not None:
            del self.files[name]
            (self.root / name).unlink()

    def rename(self, pick: int) -> None:
        """Renamed to sort elsewhere: the same content under another path."""
        name = self.editable(pick)
        if name is not None:
            self.made += 1
            new = f"{(pick * 37) % 90 + 5:02d}-{self.stem(name)}.yaml"
            if new in self.files:
                return
            (self.root / name).rename(self.root / new)
            self.files[new] = self.files.pop(name)

    def break_(self, pick: int) -> None:
        """A syntax error, a schema error, or a name another file declares."""
        name = self.editable(pick)
        if name is None:
            return
        if pick % 3 == 2:
            self.write(name, session_file("api", 7))  # api-a and api-b again, or clashing
        else:
            self.write(name, BROKEN[pick % 3])

    def fix(self, pick: int) -> None:
        name = self.editable(pick)
        if name is not None:
            self.write(name, self.valid_text(name, self.versions.get(name, 1)))

    def set_items(self, pick: int) -> None:
        name = next((n for n in self.files if n.endswith("-set.yaml")), None)
        if name is not None:
            items = ", ".join(f"i{k}" for k in range(pick + 1))
            self.write(name, SET_FILE.format(items=items, version=1))

    def environment(self, pick: int) -> None:
        """The label's variable changed, or unset (a warning), or back."""
        if pick % 2:
            self.environ.pop("LABEL", None)
        else:
            self.environ["LABEL"] = f"Label {pick}"


EDITS: dict[str, Callable[[Tree, int], None]] = {
    "edit": Tree.edit,
    "same-size": Tree.same_size_same_mtime,
    "touch": Tree.touch,
    "add": Tree.add,
    "remove": Tree.remove,
    "rename": Tree.rename,
    "break": Tree.break_,
    "fix": Tree.fix,
    "set": Tree.set_items,
    "environment": Tree.environment,
}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(st.tuples(st.sampled_from(sorted(EDITS)), st.integers(0, 5)), min_size=1, max_size=8)
)
def test_a_cached_load_is_a_cold_load_after_any_edits(edits: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tree = Tree(Path(tmp))
        tree.write_all()
        cache = ManifestCache()
        first = outcome(tree.root, tree.environ, cache)
        assert first[0] == "ok" and first == outcome(tree.root, tree.environ, None)
        for edit, pick in edits:
            EDITS[edit](tree, pick)
            cached = outcome(tree.root, tree.environ, cache)
            cold = outcome(tree.root, tree.environ, None)
            assert cached == cold, (edit, pick)
            # Again, nothing changed: answered from the cache, still the cold answer.
            assert outcome(tree.root, tree.environ, cache) == cold, (edit, pick)


# -- what is read ----------------------------------------------------------------------


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the YAML reader is asked for, in order."""
    observed()  # made once per process by a load of its own: not one of the reads counted
    return count_reads(monkeypatch)


def test_an_unchanged_tree_is_not_read_again_and_an_edit_reads_that_file(
    tmp_path: Path, reads: list[str]
) -> None:
    tree = Tree(tmp_path)
    tree.write_all()
    cache = ManifestCache()
    first = outcome(tmp_path, ENVIRON, cache)
    assert sorted(reads) == sorted(tree.files)
    reads.clear()
    again = outcome(tmp_path, ENVIRON, cache)
    assert reads == []
    assert again == first and again[1] is first[1]  # the model itself: nothing to build
    tree.edit(1)  # 20-web.yaml
    edited = outcome(tmp_path, ENVIRON, cache)
    assert reads == ["20-web.yaml"]
    assert edited == outcome(tmp_path, ENVIRON, None) != first
    assert outcome(tmp_path, ENVIRON, cache)[1] is edited[1]


def test_a_touched_file_is_read_again_and_the_same_size_and_mtime_are_not_enough(
    tmp_path: Path, reads: list[str]
) -> None:
    tree = Tree(tmp_path)
    tree.write_all()
    cache = ManifestCache()
    outcome(tmp_path, ENVIRON, cache)
    reads.clear()
    tree.touch(0)
    assert outcome(tmp_path, ENVIRON, cache) == outcome(tmp_path, ENVIRON, None)
    assert reads[:1] == ["10-api.yaml"]
    reads.clear()
    before = (tmp_path / "10-api.yaml").stat()
    tree.same_size_same_mtime(0)
    after = (tmp_path / "10-api.yaml").stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    cached = outcome(tmp_path, ENVIRON, cache)
    assert reads[:1] == ["10-api.yaml"]
    assert cached == outcome(tmp_path, ENVIRON, None)
    assert "(v2)" in cached[1].sessions[0].spec["task"]


def test_a_new_environment_builds_the_model_again_without_reading(
    tmp_path: Path, reads: list[str]
) -> None:
    Tree(tmp_path).write_all()
    cache = ManifestCache()
    outcome(tmp_path, ENVIRON, cache)
    reads.clear()
    unset = {"TOKEN": "t0ken"}
    cached = outcome(tmp_path, unset, cache)
    assert reads == []
    assert cached == outcome(tmp_path, unset, None)
    assert any("${env:LABEL} is not set" in w.message for w in cached[1].warnings)


def test_a_file_with_errors_is_read_again_every_time(tmp_path: Path, reads: list[str]) -> None:
    tree = Tree(tmp_path)
    tree.write_all()
    tree.break_(1)
    cache = ManifestCache()
    first = outcome(tmp_path, ENVIRON, cache)
    assert first[0] == "errors"
    reads.clear()
    assert outcome(tmp_path, ENVIRON, cache) == first
    assert reads == ["20-web.yaml"]


# -- the expansion budget --------------------------------------------------------------


def bomb(name: str, copies: int) -> str:
    """A valid Session whose aliases construct 1,220 + 1,111 x ``copies`` nodes."""
    many = ", ".join(["*c"] * copies)
    return (
        f"apiVersion: reconciler/v1\nkind: Session\nname: {name}\nspec:\n  task: t\n"
        "  metadata:\n"
        "    a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
        "    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        f"    d: [{many}]\n"
    )


def test_a_kept_file_is_charged_to_the_budget_as_reading_it_would_charge(
    tmp_path: Path, reads: list[str]
) -> None:
    (tmp_path / "a.yaml").write_text(PROJECT_FILE + "---\n" + bomb("first", 0))
    (tmp_path / "b.yaml").write_text(bomb("second", 5))  # 6,775 nodes of about 10,200
    cache = ManifestCache()
    assert outcome(tmp_path, ENVIRON, cache)[0] == "ok"
    # The file before it now spends 5,664 nodes: each fits alone, not both.
    (tmp_path / "a.yaml").write_text(PROJECT_FILE + "---\n" + bomb("first", 4))
    reads.clear()
    cached = outcome(tmp_path, ENVIRON, cache)
    assert reads == ["a.yaml", "b.yaml"]  # b.yaml did not fit: read, for the cold error
    assert cached == outcome(tmp_path, ENVIRON, None)
    assert cached[0] == "errors"
    assert [(Path(f).name, d.split(" exceeds")[0]) for f, _, _, d in cached[1]] == [
        ("b.yaml", "alias expansion")
    ]
    # Back as it was: b.yaml fits again.
    (tmp_path / "a.yaml").write_text(PROJECT_FILE + "---\n" + bomb("first", 0))
    assert outcome(tmp_path, ENVIRON, cache) == outcome(tmp_path, ENVIRON, None)
    assert outcome(tmp_path, ENVIRON, cache)[0] == "ok"


def test_a_replay_needs_the_headroom_a_check_asked_for_not_only_what_was_spent() -> None:
    budget: Any = ManifestCache().budget()
    # A template filter refuses before it builds up to 300 bytes, then makes 100.
    _, spent = budget.metered(
        lambda: (budget.check_bytes(300, "rendering"), budget.spend_bytes(100, "rendering"))
    )
    assert (spent.produced, spent.headroom) == (100, 300)
    short: Any = ManifestCache().budget()
    short.bytes_left = 299
    assert not short.replay(spent)
    assert short.bytes_left == 299  # nothing charged when it does not fit
    room: Any = ManifestCache().budget()
    room.bytes_left = 300
    assert room.replay(spent)
    assert room.bytes_left == 200


def test_the_cache_keeps_no_copy_of_the_environment(tmp_path: Path) -> None:
    """It tells a changed environment by a digest: no credential's value is held (nor
    shown by a repr, a traceback's locals or a failing assertion)."""
    tree = Tree(tmp_path)
    tree.write_all()
    cache = ManifestCache()
    environ = {**ENVIRON, "AGENTUITY_SDK_KEY": "sk-live-canary", "CODER_HUB_TOKENS": "t-canary"}
    first = outcome(tmp_path, environ, cache)
    assert "canary" not in repr(vars(cache))
    assert outcome(tmp_path, environ, cache)[1] is first[1]  # the same environment: kept
    rotated = {**environ, "AGENTUITY_SDK_KEY": "sk-live-rotated"}
    assert outcome(tmp_path, rotated, cache)[1] is not first[1]  # another: built again
