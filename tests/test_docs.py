"""The docs stay true: the README's two commands, every command and option and exit code
documented, generated pages current, the site builds strictly, and every shell block of
the getting-started and how-to pages runs here or says why it cannot."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from clitree import subcommands
from docs_pages import DOCS, ROOT, page, shell_blocks
from hubproc import child_environ
from tools import require_tool

from reconciler import errors
from reconciler.cli.main import cli, run

README = page("README.md")
NOT_RUN = "<!-- not run: "


def _leaf_commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    for name, sub in sorted(subcommands(group).items()):
        if isinstance(sub, click.Group):
            yield from _leaf_commands(sub, (*path, name))
        else:
            yield " ".join(("reconciler", *path, name)), sub


def test_every_command_and_long_option_is_in_the_command_table() -> None:
    rows = [line for line in page("reference/cli.md").splitlines() if line.startswith("| `reconc")]
    leaves = list(_leaf_commands(cli))
    assert len(leaves) >= 20
    for name, command in leaves:
        matching = [r for r in rows if re.match(rf"\| `{re.escape(name)}( |`)", r)]
        assert matching, f"{name} is missing from the command table (docs/reference/cli.md)"
        row = matching[0]
        for param in command.params:
            if isinstance(param, click.Option):
                longs = [o for o in param.opts if o.startswith("--")]
                assert any(o in row for o in longs), f"{name}: {longs} not documented"


def test_global_options_are_documented() -> None:
    text = page("reference/cli.md")
    for param in cli.params:
        if isinstance(param, click.Option):
            longs = [o for o in param.opts if o.startswith("--")]
            assert any(f"`{o}" in text for o in longs), longs


def test_the_two_commands_open_the_readme_and_ci_runs_the_test_one() -> None:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block is not None and README.index(block.group(0)) < README.index("\n## ")
    install, tests = block.group(1).strip().splitlines()
    assert "pip install -e '.[test]'" in install and "--api-url local" in install
    assert tests.strip() in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # The getting-started page starts from the same set-up command.
    assert install in page("getting-started.md")


def test_the_readme_is_short_and_links_into_the_docs() -> None:
    assert len(README.encode()) <= 8 * 1024
    for target in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (ROOT / target).is_file(), target


def test_every_exit_code_is_in_the_table() -> None:
    table = page("reference/exit-codes.md")
    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    for code in codes:
        assert re.search(rf"^\| {code} \|", table, re.M), code


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def test_no_heading_appears_twice() -> None:
    # A merge once left three sections of the README doubled, one of them stale.
    for path in [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *_pages()]:
        headings = [
            line.strip()
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("## ")
        ]
        doubled = sorted({h for h in headings if headings.count(h) > 1})
        assert doubled == [], f"{path.name}: {doubled}"


# Files beside the repository that earlier code and docs cited; what they say that the
# project needs lives in docs/ now (docs/reference/service-notes.md, for one).
OUTSIDE = ("../shared", "coder-api-notes.md", "coder-api.md", "DESIGN.md")


def test_code_and_docs_cite_only_files_in_the_repository() -> None:
    sources = [
        *(ROOT / "reconciler").rglob("*.py"),
        *(ROOT / "benchmarks").rglob("*.py"),
        *(p for p in (ROOT / "tests").rglob("*.py") if p.name != "test_docs.py"),
        *_pages(),
        ROOT / "README.md",
        ROOT / "action.yml",
        ROOT / "Dockerfile",
    ]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        cited = [name for name in OUTSIDE if name in text]
        assert not cited, f"{path.relative_to(ROOT)} cites {cited}, outside the repository"


def test_the_generated_pages_are_current() -> None:
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    for path, text in generate.pages().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(ROOT)} is out of date: run python docs/generate.py"
        )


def _table_cells(row: str) -> list[str]:
    """A Markdown table row's cells as Python-Markdown's tables extension splits them: at
    each ``|`` outside a code span that no backslash escapes (``\\|`` is an escaped
    backslash, then a cell boundary)."""
    row = row.strip().removeprefix("|")
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    cells, cell, code, at = [], "", False, 0
    while at < len(row):
        char = row[at]
        if char == "\\" and at + 1 < len(row):
            cell, at = cell + row[at : at + 2], at + 2
            continue
        code ^= char == "`"
        if char == "|" and not code:
            cells.append(cell)
            cell = ""
        else:
            cell += char
        at += 1
    return [*cells, cell]


def test_every_table_row_has_its_header_s_cells() -> None:
    """A row with more cells than its header loses the extra ones when rendered: the
    description of a field pushed out of its row by a ``\\|`` in its type (the
    generated manifest field reference did that to four fields)."""
    ragged = []
    for path in sorted(DOCS.rglob("*.md")):
        lines = path.read_text(encoding="utf-8").splitlines()
        fenced = False
        for number, line in enumerate(lines):
            if line.lstrip().startswith("```"):
                fenced = not fenced
            if fenced or not re.match(r"^\|?\s*:?-{3,}", line) or "|" not in lines[number - 1]:
                continue
            width = len(_table_cells(lines[number - 1]))
            for row_at in range(number + 1, len(lines)):
                if not lines[row_at].startswith("|"):
                    break
                if len(_table_cells(lines[row_at])) != width:
                    ragged.append(f"{path.relative_to(ROOT)}:{row_at + 1}")
    assert not ragged, f"table rows with more or fewer cells than their header: {ragged}"


@pytest.mark.subprocess  # mkdocs is a Python process
def test_the_site_builds_with_strict_checks(tmp_path: Path) -> None:
    """Broken links, anchors and pages missing from the nav fail the build."""
    mkdocs = require_tool("mkdocs")
    done = subprocess.run(
        [mkdocs, "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "reference" / "cli-help" / "index.html").is_file()


RUNNABLE_PAGES = ("getting-started.md",)  # run by the tests below


def test_every_shell_block_runs_in_a_test_or_says_why_not() -> None:
    how_to = sorted((DOCS / "how-to").glob("*.md"))
    assert how_to
    for path in [DOCS / "getting-started.md", *how_to]:
        name = str(path.relative_to(DOCS))
        for before, body in shell_blocks(path.read_text(encoding="utf-8")):
            if name in RUNNABLE_PAGES:
                assert not before.startswith(NOT_RUN), f"{name}: its blocks are all run"
            else:
                assert before.startswith(NOT_RUN) and before.endswith(" -->"), (
                    f"{name}: a shell block neither run by a test nor marked "
                    f"'{NOT_RUN}REASON -->' on the line before it:\n{body}"
                )


def _tour_blocks() -> list[list[str]]:
    blocks = [body.strip().splitlines() for _, body in shell_blocks(page("getting-started.md"))]
    assert len(blocks) >= 3
    return blocks


def test_the_tour_starts_in_a_fresh_folder_with_its_own_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    activate, *lines = _tour_blocks()[1]
    # Run from the checkout, where the set-up command made the venv: its commands first.
    assert activate.startswith(". .venv/bin/activate ")
    assert lines[0].startswith('tour=$(mktemp -d) && cp -r examples/ "$tour/sessions" && cd')
    # The set-up command: the examples applied to the checkout's own embedded hub.
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "examples", checkout / "examples")
    monkeypatch.chdir(checkout)
    for name in ("RELEASE_GITHUB_TOKEN", "NPM_TOKEN"):
        monkeypatch.setenv(name, "dummy")
    assert run(["--api-url", "local", "apply", "examples/", "--yes"]) == 0
    # The tour: a fresh folder, so its first plan creates everything.
    tour = tmp_path / "tour"
    shutil.copytree(checkout / "examples", tour / "sessions")
    monkeypatch.chdir(tour)
    monkeypatch.setenv("CODER_API_URL", "local")
    capsys.readouterr()
    commands = [line for line in lines if line.startswith("reconciler ")]
    assert len(commands) == 4
    for index, line in enumerate(commands):
        command, _, comment = line.partition("#")
        argv = shlex.split(command.split(";")[0])[1:]
        code = run(argv)
        out, err = capsys.readouterr()
        assert code == 0, (line, err)
        for expected in re.findall(r'"([^"]+)"', comment):
            assert expected.removesuffix(", ...") in out + err, (line, expected, out)
        if index == 0:
            assert err == ""  # validate reads files only: no hub, no banner


@pytest.mark.subprocess  # bash runs the CLI
def test_every_block_of_the_getting_started_page_runs_in_bash(tmp_path: Path) -> None:
    """The page's blocks in order, in one bash, from a copy of the checkout's examples;
    the set-up block's install is this environment (its apply is run as written)."""
    setup, *tour = _tour_blocks()
    apply = setup[0].split(" && ", 2)[2]
    assert apply.startswith("RELEASE_GITHUB_TOKEN=dummy NPM_TOKEN=dummy .venv/bin/reconciler ")
    script = "\n".join(["set -euo pipefail", apply, *("\n".join(b) for b in tour)])
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "examples", checkout / "examples")
    # The set-up command's venv is this environment: its command, and its activate
    # putting it on PATH.
    venv_bin = checkout / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "reconciler").symlink_to(Path(sys.executable).parent / "reconciler")
    (venv_bin / "activate").write_text(
        f'export PATH="{Path(sys.executable).parent}{os.pathsep}$PATH"\n'
    )
    environ = child_environ()
    environ["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=checkout,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    for block in tour:
        for line in block:
            command, _, comment = line.partition("#")
            if command.startswith("reconciler "):
                for expected in re.findall(r'"([^"]+)"', comment):
                    assert expected.removesuffix(", ...") in output, (line, expected)
    # The edit in the second block shows as an in-place update, and was applied.
    assert 'label: "Security review" -> "Security review (auth)"' in output
