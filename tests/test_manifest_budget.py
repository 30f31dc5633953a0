"""The run's expansion budget: aliases and templates produce bytes in proportion to the
bytes read, and an attack ends at the budget (exit 65, located), not in a MemoryError.

In-process: what counts and how, that operations are refused before they allocate
(tracemalloc), that real manifests stay far below the budget. Through real
subprocesses (``reconciler validate`` and ``plan --api-url local`` under an address
space cap): the attacks of issue 19, and a fuzz test that builds alias bombs and
template expressions and checks that every run ends bounded.
"""

from __future__ import annotations

import os
import random
import resource
import string
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import ManifestErrors
from reconciler.manifest import load_manifests
from reconciler.manifest.budget import (
    BASE_BYTES,
    BYTES_PER_BYTE_READ,
    VALUE_OVERHEAD,
    BudgetExceeded,
    ExpansionBudget,
    size_of,
)
from reconciler.manifest.template import render_value
from reconciler.manifest.yamlread import MAX_REF_POSITIONS

REPO = Path(__file__).resolve().parent.parent
PEAK = REPO / "benchmarks" / "_peak.py"  # runs a module, writes its VmHWM in MiB
PROJECT = "apiVersion: reconciler/v1\nkind: Project\nname: p\n"
# What every attack must stay under (issue 19): CPU seconds and peak RSS.
MAX_SECONDS = 5.0
MAX_PEAK_MB = 300.0
# Address space of a child: a regression fails with MemoryError instead of eating the
# machine (Python with its libraries maps about 300 MB before doing anything).
ADDRESS_SPACE = 1536 * 1024 * 1024
BASE_MIB = BASE_BYTES // (1024 * 1024)


def _errors(excinfo: pytest.ExceptionInfo[ManifestErrors]) -> list[str]:
    return [str(e) for e in excinfo.value.errors]


def _set(template_task: str, items: int = 1000, extra: str = "") -> str:
    """A Project and a SessionSet of ``items`` items whose task is ``template_task``."""
    names = ", ".join(f"i{n}" for n in range(items))
    return (
        f"{PROJECT}---\napiVersion: reconciler/v1\nkind: SessionSet\nname: s\n"
        f"generator:\n  items: [{names}]\ntemplate:\n  name: 's-{{{{ item }}}}'\n"
        f"  spec:\n    task: {template_task}\n{extra}"
    )


def _aliased_string(size: int, times: int) -> str:
    """A Session whose task is a ``size``-byte string aliased ``times`` times in tags."""
    return (
        f"{PROJECT}---\napiVersion: reconciler/v1\nkind: Session\nname: s\nspec:\n"
        f"  task: &a {'a' * size}\n  tags: [{', '.join(['*a'] * times)}]\n"
    )


# -- what counts ---------------------------------------------------------------


def test_size_of_counts_every_occurrence_but_walks_each_object_once() -> None:
    inner = ["abc"] * 1000
    outer = [inner] * 1000
    start = time.process_time()
    assert size_of(outer) == 1000 * (VALUE_OVERHEAD + 1000 * (VALUE_OVERHEAD + 3))
    assert time.process_time() - start < 0.5  # a million occurrences, 1,001 objects
    assert size_of("é") == 2  # UTF-8 bytes
    assert size_of({"k": None}) == 2 * VALUE_OVERHEAD + 1 + VALUE_OVERHEAD
    assert size_of(10**100) > VALUE_OVERHEAD  # a big number counts its digits


def test_the_budget_grows_with_the_bytes_read_and_stays_spent() -> None:
    budget = ExpansionBudget()
    budget.add_source(1000)
    assert budget.bytes_allowed == BASE_BYTES + 1000 * BYTES_PER_BYTE_READ
    with pytest.raises(BudgetExceeded, match=f"{BASE_MIB} MiB plus 4 per byte of manifests read"):
        budget.check_bytes(budget.bytes_left + 1, "template rendering")
    with pytest.raises(BudgetExceeded):  # spent: even nothing more is refused
        budget.spend_bytes(0, "alias expansion")


# -- aliases -----------------------------------------------------------------------


def test_a_large_string_aliased_many_times_is_refused_where_it_is_anchored(
    tmp_path: Path,
) -> None:
    # 1 MB aliased 60 times: 60 MB from a 1 MB file, over 32 MiB plus 4 per byte read.
    (tmp_path / "m.yaml").write_text(_aliased_string(1_000_000, 60))
    with pytest.raises(ManifestErrors) as excinfo:
        load_manifests([str(tmp_path)], environ={})
    (error,) = _errors(excinfo)
    assert error.startswith(f"{tmp_path / 'm.yaml'}:9:9: alias expansion exceeds this run")
    assert f"bytes produced ({BASE_MIB} MiB plus 4 per byte of manifests read); refused" in error


def test_aliased_strings_in_many_files_share_one_budget(tmp_path: Path) -> None:
    # Each file alone fits (100 KB aliased 20 times: 2 MB); forty of them do not: about
    # twenty fit in 32 MiB plus 4 bytes per byte read (each grants 400 KB, spends 2 MB).
    for n in range(40):
        text = _aliased_string(100_000, 20).replace("name: s\n", f"name: s{n}\n")
        text = text.replace("tags: [", "metadata: {copies: [").replace("]\n", "]}\n")
        (tmp_path / f"m{n:02}.yaml").write_text(text.replace(PROJECT + "---\n", "") if n else text)
    with pytest.raises(ManifestErrors) as excinfo:
        load_manifests([str(tmp_path)], environ={})
    refused = [e for e in _errors(excinfo) if "alias expansion exceeds this run's budget" in e]
    assert 15 <= len(refused) <= 25, refused
    assert not any(e.startswith(str(tmp_path / "m00.yaml")) for e in refused)


def test_real_aliases_and_merges_stay_far_below_the_budget(tmp_path: Path) -> None:
    sessions = "".join(
        f"---\napiVersion: reconciler/v1\nkind: Session\nname: s-{i}\nspec:\n"
        f"  task: &t work on item {i} of the backlog, with tests and a changelog entry\n"
        "  label: *t\n  repo: &r {fullName: acme/api, branch: main}\n"
        "  repos: [*r, {<<: *r, branch: dev}]\n"
        for i in range(5000)
    )
    (tmp_path / "m.yaml").write_text(PROJECT + sessions)
    result = load_manifests([str(tmp_path)], environ={})
    assert len(result.sessions) == 5000


def test_a_large_default_inherited_by_every_session_counts(tmp_path: Path) -> None:
    # 500 KB of defaults in 300 sessions: 150 MB of request bodies from a 520 KB file.
    project = PROJECT + f"defaults:\n  metadata: {{blob: {'x' * 500_000}}}\n"
    sessions = "".join(
        f"---\napiVersion: reconciler/v1\nkind: Session\nname: s{i}\nspec: {{task: t}}\n"
        for i in range(300)
    )
    (tmp_path / "m.yaml").write_text(project + sessions)
    start = time.process_time()
    with pytest.raises(ManifestErrors) as excinfo:
        load_manifests([str(tmp_path)], environ={})
    assert time.process_time() - start < 5
    (error,) = _errors(excinfo)  # once, at the session that spent it, not 300 times
    assert ": spec: merging the Project defaults exceeds this run's budget of" in error
    # Real defaults, inherited by thousands of sessions, fit.
    project = PROJECT + "defaults:\n  tags: [platform]\n  metadata: {team: platform}\n"
    (tmp_path / "m.yaml").write_text(project + sessions)
    assert len(load_manifests([str(tmp_path)], environ={}).sessions) == 300


# -- references and the secrecy rule ---------------------------------------------------
# A plain variable is resolved into fields (and any variable into env at apply): one
# large value referenced many times is bytes produced like an alias's.

BIG_VALUE = "v" * 120_000  # near the largest value one environment variable can hold
PLAIN_PROJECT = PROJECT + "plainEnv: [BIG]\n"


def _session(spec: str, project: str = PLAIN_PROJECT) -> str:
    return f"{project}---\napiVersion: reconciler/v1\nkind: Session\nname: s\nspec:\n{spec}"


REF_ATTACKS = {
    # 2,000 plain references in one field: 240 MB resolved from a 30 KB file.
    "plain-field": _session(
        "  task: t\n  metadata: {copies: [" + ", ".join(['"${env:BIG}"'] * 2000) + "]}\n"
    ),
    # One plain reference aliased 2,000 times.
    "plain-aliased": _session(
        '  task: &b "${env:BIG}"\n  metadata: {copies: [' + ", ".join(["*b"] * 2000) + "]}\n"
    ),
    # A set of 1,000 sessions with ten secret references each: 1.2 GB at apply.
    "env-in-a-set": _set(
        "t", extra="    env: {" + ", ".join(f'K{n}: "${{env:BIG}}"' for n in range(10)) + "}\n"
    ).replace(PROJECT, PLAIN_PROJECT),
}


@pytest.mark.parametrize("attack", sorted(REF_ATTACKS))
def test_resolved_references_are_charged_before_they_are_copied(
    tmp_path: Path, attack: str
) -> None:
    (tmp_path / "m.yaml").write_text(REF_ATTACKS[attack])
    tracemalloc.start()
    try:
        with pytest.raises(ManifestErrors) as excinfo:
            load_manifests([str(tmp_path)], environ={"BIG": BIG_VALUE})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 1024 * 1024, f"{peak / 1e6:.0f} MB"
    errors = _errors(excinfo)
    assert any(
        "resolving ${env:...} references exceeds this run's budget of" in e for e in errors
    ), errors
    assert not any(BIG_VALUE[:50] in e for e in errors)
    # The same references to a small value fit.
    assert load_manifests([str(tmp_path)], environ={"BIG": "small"}).sessions


def test_a_reference_aliased_a_million_times_is_refused_once(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(_aliased_reference(1_000_000))
    start = time.process_time()
    with pytest.raises(ManifestErrors) as excinfo:
        load_manifests([str(tmp_path)], environ={})
    assert time.process_time() - start < MAX_SECONDS
    refused = [e for e in _errors(excinfo) if "${env:X} would put the value of X" in e]
    # At the anchor, not once per alias (past the first MAX_REF_POSITIONS copies, the
    # rest point at their list: one more line, not a million).
    assert len(refused) == 2, refused[:3]
    where = sorted(e.split(" ")[0] for e in refused)
    assert where == [f"{tmp_path / 'm.yaml'}:11:{c}:" for c in (5, 8)], where


def test_refused_references_are_listed_up_to_a_limit(tmp_path: Path) -> None:
    tags = "".join(f'    - "${{env:V{n}}}"\n' for n in range(MAX_REF_POSITIONS + 50))
    (tmp_path / "m.yaml").write_text(_session(f"  task: t\n  tags:\n{tags}", PROJECT))
    with pytest.raises(ManifestErrors) as excinfo:
        load_manifests([str(tmp_path)], environ={})
    refused = [e for e in _errors(excinfo) if "would put the value of" in e]
    assert len(refused) == MAX_REF_POSITIONS
    # Each listed one where it is written: lines 11 and on.
    assert refused[0].startswith(f"{tmp_path / 'm.yaml'}:11:7: spec.tags[0]: ${{env:V0}}")
    assert refused[-1].startswith(f"{tmp_path / 'm.yaml'}:{10 + MAX_REF_POSITIONS}:7: ")
    (more,) = [e for e in _errors(excinfo) if "more references are refused" in e]
    assert more.startswith(f"{tmp_path / 'm.yaml'}:9:3: ")  # past the positions kept: spec


def test_the_summary_of_refused_references_comes_after_those_listed_at_its_place(
    tmp_path: Path,
) -> None:
    # The last one listed and the summary share one place (two references in one
    # string): the summary is said last there, as it was made.
    tags = "".join(f'    - "${{env:V{n}}}"\n' for n in range(MAX_REF_POSITIONS - 1))
    label = '  label: "${env:AA}${env:BB}"\n'
    (tmp_path / "m.yaml").write_text(_session(f"  task: t\n  tags:\n{tags}{label}", PROJECT))
    with pytest.raises(ManifestErrors) as excinfo:
        load_manifests([str(tmp_path)], environ={})
    errors = _errors(excinfo)
    assert "spec.label: ${env:AA} would put the value of AA" in errors[-2]
    assert "more references are refused like these (not listed)" in errors[-1]
    assert errors[-1].split(" ")[0] == errors[-2].split(" ")[0]  # the same place


def _aliased_reference(times: int) -> str:
    """A Session whose metadata holds one non-plain reference aliased ``times`` times."""
    copies = ", ".join(["*r"] * times)
    return _session(f'  task: t\n  metadata:\n    r: &r "${{env:X}}"\n    c: [{copies}]\n', PROJECT)


# -- templates ---------------------------------------------------------------------

BIG = "a" * 150_000
ITEM: dict[str, Any] = {"item": {"text": BIG, "words": ["x"] * 1000, "n": 7}, "index": 0}
# Each makes 900 KB (under the 1 MiB a value may have) from operands of 150 KB.
GROWING = [
    "{{ 'ab' * 450000 }}",
    "{{ item.text * 6 }}",
    "{{ item.text ~ item.text ~ item.text ~ item.text ~ item.text ~ item.text }}",
    "{{ item.text + item.text + item.text + item.text + item.text + item.text }}",
    "{{ item.text | replace('a', 'aaaaaa') }}",
    "{{ item.words | join(item.text[:700]) }}",
    "{{ item.text | join('-----') }}",
    "{{ (item.text ~ item.text ~ item.text) | upper }}",
    "{{ [item.text] * 6 }}",
    "x {{ [[item.text] * 3] * 2 }} y",
    "{{ [item.text, item.text, item.text, item.text, item.text, item.text] | string }}",
    "{{ [item.text, item.text, item.text, item.text, item.text, item.text] }}",
    "{% if item.n %}{{ item.text }}{{ item.text }}{{ item.text }}{{ item.text }}"
    "{{ item.text }}{{ item.text }}{% endif %}",
]


@pytest.mark.parametrize("source", GROWING)
def test_template_operations_are_refused_before_they_allocate(source: str) -> None:
    render_value(source, ITEM, ExpansionBudget())  # compiled (and cached) here
    budget = ExpansionBudget()
    budget.bytes_left = 300_000  # room for operands, not for the result
    tracemalloc.start()
    try:
        with pytest.raises(BudgetExceeded, match="template rendering exceeds"):
            render_value(source, ITEM, budget)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 600_000, f"{peak} bytes allocated before the refusal"


# In this process: without the budget each would take 100-200 MB, not more (the attacks
# that take gigabytes run below, in a capped child).
@pytest.mark.parametrize(
    "expression",
    [
        "\"{{ 'a' * 1000000 }}\"",
        "\"{{ ('a' * 100000) | replace('a', 'aaaaaaaaaa') }}\"",
        "\"{{ [[['a'] * 100] * 100] * 10 }}\"",
        "\"{{ 'aaaaaaaaaa' | replace('a', 'aaaaaaaaaa') | replace('a', 'aaaaaaaaaa')"
        " | replace('a', 'aaaaaaaaaa') | replace('a', 'aaaaaaaaaa') | replace('a', 'aaaaaaaaaa')"
        ' }}"',
    ],
)
def test_a_set_that_renders_too_much_stops_with_one_located_error(
    tmp_path: Path, expression: str
) -> None:
    (tmp_path / "m.yaml").write_text(_set(expression, items=100))
    with pytest.raises(ManifestErrors) as excinfo:
        load_manifests([str(tmp_path)], environ={})
    # One budget error (the items before it may fail checks of their own: a list task).
    (error,) = [e for e in _errors(excinfo) if "budget" in e]
    assert error.startswith(f"{tmp_path / 'm.yaml'}:13:11: template.spec.task: template rend")
    assert "exceeds this run's budget of" in error and "(SessionSet 's', item " in error


def test_a_large_template_text_repeated_by_a_set_counts(tmp_path: Path) -> None:
    # No expression makes it large: the text itself, rendered for every item.
    (tmp_path / "m.yaml").write_text(_set("'{{ item }}" + "x" * 900_000 + "'", items=100))
    with pytest.raises(ManifestErrors) as excinfo:
        load_manifests([str(tmp_path)], environ={})
    assert "template rendering exceeds this run's budget" in _errors(excinfo)[0]


def test_compiling_templates_is_budgeted_by_their_code() -> None:
    budget = ExpansionBudget()
    budget.code_left = 1000
    source = "{{ index }}{% if item %}x{% endif %}" * 40 + f"{time.monotonic()}"  # uncached
    with pytest.raises(BudgetExceeded, match="template compilation exceeds this run's budget"):
        render_value(source, ITEM, budget)
    # Text outside the tags costs nothing to compile; a template compiled once is free.
    budget = ExpansionBudget()
    budget.code_left = 1000
    source = "x" * 100_000 + "{{ index }}" + f"{time.monotonic()}"
    for _ in range(100):
        render_value(source, ITEM, budget)
    assert budget.code_left == 1000 - len("{{ index }}")


def test_the_budget_error_is_shown_under_env_too(tmp_path: Path) -> None:
    extra = "    env: {A: \"{{ item.x | default('z') * 1000000 }}\"}\n"
    (tmp_path / "m.yaml").write_text(_set("t", items=100, extra=extra))
    with pytest.raises(ManifestErrors) as excinfo:
        load_manifests([str(tmp_path)], environ={})
    (error,) = _errors(excinfo)
    assert "template.spec.env.A: template rendering exceeds this run's budget" in error
    assert "1000000" not in error  # the template's wording stays hidden


def test_large_real_sets_fit(tmp_path: Path) -> None:
    # Ten sets of 1,000 sessions, each with a 1 KB task: 10 MB of rendered text.
    task = "Review {{ item }}: " + "check correctness, tests and docs. " * 30
    for n in range(10):
        text = _set(f"'{task}'").replace("name: s\n", f"name: s{n}\n")
        text = text.replace("'s-{{ item }}'", f"'s{n}-{{{{ item }}}}'")
        (tmp_path / f"m{n}.yaml").write_text(text if n == 0 else text.split("---\n", 1)[1])
    result = load_manifests([str(tmp_path)], environ={})
    assert len(result.sessions) == 10_000


# -- real processes ----------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str  # stdout and stderr
    cpu_seconds: float
    peak_mb: float


def _run_bounded(*args: str, cwd: Path, timeout: float = 60) -> Run:
    """``reconciler ARGS`` in a child capped at ``ADDRESS_SPACE``: its exit, CPU, peak."""
    peak_file = cwd / ".peak"
    peak_file.unlink(missing_ok=True)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODER_", "AGENTUITY_"))}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(
            [sys.executable, str(PEAK), str(peak_file), "-m", "reconciler", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=cap,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"reconciler {' '.join(args)} ran over {timeout} s")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the children reaped since
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak = float(peak_file.read_text()) if peak_file.exists() else float("nan")
    return Run(done.returncode, done.stdout.decode(errors="replace"), cpu, peak)


def _assert_bounded(run: Run, what: str) -> None:
    assert "Traceback" not in run.output and "MemoryError" not in run.output, (
        f"{what}: {run.output[-2000:]}"
    )
    assert run.cpu_seconds < MAX_SECONDS, f"{what}: {run.cpu_seconds:.1f} s of CPU"
    assert run.peak_mb < MAX_PEAK_MB, f"{what}: peak RSS {run.peak_mb:.0f} MB"


ATTACKS = {
    "alias": _aliased_string(2 * 1024 * 1024, 1000),
    "repeat": _set("\"{{ 'a' * 1000000 }}\""),
    "replace": _set(
        "\"{{ 'aaaaaaaaaa' | replace('a', 'aaaaaaaaaa') | replace('a', 'aaaaaaaaaa')"
        " | replace('a', 'aaaaaaaaaa') | replace('a', 'aaaaaaaaaa') }}\""
    ),
    "nested-list": _set("\"{{ [[['a'] * 1000] * 1000] * 1000 }}\""),
    # Small output, costly code: 2 GB and 30 s to compile without the code budget.
    "many-tags": _set('"' + "{{ index }}" * 200_000 + '"'),
}


@pytest.mark.subprocess
@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("command", ["validate", "plan"])
def test_attacks_end_at_the_budget_exit_65_located_fast_and_small(
    tmp_path: Path, attack: str, command: str
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "m.yaml").write_text(ATTACKS[attack])
    args = ("validate",) if command == "validate" else ("--api-url", "local", "plan")
    run = _run_bounded(*args, str(manifests), cwd=tmp_path)
    _assert_bounded(run, attack)
    assert run.returncode == 65, run.output[-2000:]
    # The first error (plan names the embedded hub it uses on a line before it).
    first = next(line for line in run.output.splitlines() if line.startswith("error:"))
    assert first.startswith(f"error: {manifests / 'm.yaml'}:"), first
    assert "exceeds this run's budget of" in first, first


# -- fuzz ----------------------------------------------------------------------------
# Inputs built to produce much from little; whatever comes out, the run ends bounded.


@st.composite
def _alias_bombs(draw: st.DrawFn) -> str:
    """A Session whose metadata aliases a large string or a tree of aliases."""
    leaf = "x" * draw(st.sampled_from([1, 1000, 100_000, 1_000_000]))
    width = draw(st.integers(1, 60))
    depth = draw(st.integers(1, 5))
    lines = [f"    l0: &l0 {leaf}"]
    for level in range(1, depth + 1):
        shape = draw(st.sampled_from(["list", "map", "merge"]))
        refs = [f"*l{level - 1}"] * width
        if shape == "list" or level == 1:
            body = "[" + ", ".join(refs) + "]"
        elif shape == "map":
            body = "{" + ", ".join(f"k{i}: *l{level - 1}" for i in range(width)) + "}"
        else:
            body = "{k: *l" + str(level - 1) + ", v: [" + ", ".join(refs) + "]}"
        lines.append(f"    l{level}: &l{level} {body}")
    copies = ", ".join([f"*l{draw(st.integers(0, depth))}"] * draw(st.integers(1, 1000)))
    return (
        f"{PROJECT}---\napiVersion: reconciler/v1\nkind: Session\nname: s\nspec:\n"
        "  task: t\n  metadata:\n" + "\n".join(lines) + f"\n    copies: [{copies}]\n"
    )


_ATOMS = st.sampled_from(
    ["'a'", "'abc'", "item", "index", "7", "'é'", "['a', 'b']", "(item ~ '')", "'%s'"]
)


def _expressions() -> st.SearchStrategy[str]:
    def grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        count = st.sampled_from([2, 10, 1000, 100_000, 1_000_000])
        times = st.builds(lambda e, n: f"({e} * {n})", inner, count)
        return st.one_of(
            times,  # the repetition that makes most of an attack: drawn more often
            times,
            times,
            st.builds(lambda a, b: f"({a} ~ {b})", inner, inner),
            st.builds(lambda a, b: f"({a} + {b})", inner, inner),
            st.builds(lambda e, a, b: f"({e} | replace({a}, {b}))", inner, _ATOMS, inner),
            st.builds(lambda e, a: f"({e} | join({a}))", inner, inner),
            st.builds(lambda e: f"[{e}, {e}, {e}]", inner),
            st.builds(lambda e: f"({e} | upper)", inner),
            st.builds(lambda e: f"({e} | string)", inner),
            st.builds(lambda e: f"({e} | length)", inner),
            st.builds(lambda e: f"({e})[::-1]", inner),
        )

    return st.recursive(_ATOMS, grow, max_leaves=8)


# Outer shapes that ask for much: ``{e}`` is a drawn expression made text, ``{m}`` and
# ``{n}`` drawn counts.
_HEAVY = [
    "{e} * {n}",
    "[{e}] * {n}",
    "[[{e}] * {m}] * {n}",
    "({e} * {m}) | replace('a', 'aaaaaaaaaa') | replace('b', 'bbbbbbbbbb')",
    "(['x' * {m}] * {n}) | join({e})",
    "({e} * {m}) ~ ({e} * {m}) ~ ({e} * {m})",
    "({e} * {m}) | upper | string",
    "(({e} * {m}) + ({e} * {m}))[::-1]",
    "{e}",
]


@st.composite
def _template_bombs(draw: st.DrawFn) -> str:
    text = f"(({draw(_expressions())}) ~ 'ab')"
    counts = st.sampled_from([10, 1000, 100_000, 1_000_000])
    heavy = draw(st.sampled_from(_HEAVY)).format(e=text, m=draw(counts), n=draw(counts))
    items = draw(st.sampled_from([1, 10, 1000]))
    shape = draw(
        st.sampled_from(
            [
                '"{{{{ {e} }}}}"',
                '"x {{{{ {e} }}}} y {{{{ {e} }}}}"',
                '"' + "{{{{ {e} }}}}" * 5000 + '"',
                '"{{% if {e} %}}z{{% endif %}}"',
            ]
        )
    )
    return _set(shape.format(e=heavy.replace('"', "'")), items=items)


FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same inputs on every run: a failure reproduces
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _validate_bounded(manifest: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "m.yaml").write_text(manifest)
        run = _run_bounded("validate", "m.yaml", cwd=folder, timeout=30)
    _assert_bounded(run, manifest[:300])
    assert run.returncode in (0, 65), run.output[-2000:]


@pytest.mark.subprocess
@FUZZ
@given(manifest=_alias_bombs())
def test_fuzz_alias_bombs_stay_bounded(manifest: str) -> None:
    _validate_bounded(manifest)


@pytest.mark.subprocess
@FUZZ
@given(manifest=_template_bombs())
def test_fuzz_template_expressions_stay_bounded(manifest: str) -> None:
    _validate_bounded(manifest)


def test_a_long_token_sought_in_megabytes_of_text_stays_within_the_bound(tmp_path: Path) -> None:
    # Every part of half the token was sought one by one (513 searches of the whole text
    # for a 1,024-character token): 6.5 s for a 4.9 MB value aliased 9 times. A few
    # anchors now, each sought once, its run of the token then measured (a 4.9 MB
    # value in the review; here as much as the file size limit lets).
    chosen = random.Random(1)
    token = "".join(chosen.choices(string.ascii_letters, k=1024))
    other = "".join(chosen.choices(string.ascii_letters, k=1024))
    # 4.8 MB of letters, not ASCII at the end (folding case was slowest on such text).
    big = "".join(chosen.choices(string.ascii_letters, k=4_800_000)) + "é"
    spec = f'  task: t\n  metadata:\n    a: &a "${{env:P}}{big}"\n    b: [*a, *a, *a, *a]\n'
    project = "apiVersion: reconciler/v1\nkind: Project\nname: p\nplainEnv: [P]\n"
    (tmp_path / "m.yaml").write_text(_session(spec, project))
    environ = {"AGENTUITY_SDK_KEY": token, "AGENTUITY_CLI_KEY": other, "P": "p"}
    start = time.process_time()
    with pytest.raises(ManifestErrors) as excinfo:  # too big a request, and no token
        load_manifests([str(tmp_path)], environ=environ)
    assert time.process_time() - start < MAX_SECONDS
    assert not any("API token" in e for e in _errors(excinfo))
    # Half the token, lower-cased, in that text: found, as quickly.
    environ["P"] = token[300:812].lower()
    start = time.process_time()
    with pytest.raises(ManifestErrors) as excinfo:
        load_manifests([str(tmp_path)], environ=environ)
    assert time.process_time() - start < MAX_SECONDS
    assert any("API token" in e for e in _errors(excinfo))
