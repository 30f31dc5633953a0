"""The README stays true: every command and option documented, the two commands, exit codes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click

from reconciler import errors
from reconciler.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _leaf_commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    for name, sub in sorted(group.commands.items()):
        if isinstance(sub, click.Group):
            yield from _leaf_commands(sub, (*path, name))
        else:
            yield " ".join(("reconciler", *path, name)), sub


def test_every_command_and_long_option_is_in_the_command_table() -> None:
    rows = [line for line in _section("Commands").splitlines() if line.startswith("| `reconciler")]
    leaves = list(_leaf_commands(cli))
    assert len(leaves) >= 20
    for name, command in leaves:
        matching = [r for r in rows if re.match(rf"\| `{re.escape(name)}( |`)", r)]
        assert matching, f"{name} is missing from the README's command table"
        row = matching[0]
        for param in command.params:
            if isinstance(param, click.Option):
                longs = [o for o in param.opts if o.startswith("--")]
                assert any(o in row for o in longs), f"{name}: {longs} not documented"


def test_global_options_are_documented() -> None:
    text = _section("Commands")
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


def test_every_exit_code_is_in_the_table() -> None:
    table = _section("Exit codes")
    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    for code in codes:
        assert re.search(rf"^\| {code} \|", table, re.M), code


def test_no_heading_appears_twice() -> None:
    # A merge once left three sections of the README doubled, one of them stale.
    for path in (
        ROOT / "README.md",
        ROOT / "docs" / "internals.md",
        ROOT / "benchmarks" / "README.md",
    ):
        headings = [
            line.strip()
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("## ")
        ]
        doubled = sorted({h for h in headings if headings.count(h) > 1})
        assert doubled == [], f"{path.name}: {doubled}"
