"""The README's tour is true right after the set-up command: run its first block."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from reconciler.cli.main import run

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _tour_block() -> list[str]:
    start = README.index("\n## A five-minute tour\n")
    block = re.search(r"```sh\n(.*?)```", README[start:], re.S)
    assert block is not None
    return block.group(1).strip().splitlines()


def test_the_tour_starts_in_a_fresh_folder_with_its_own_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _tour_block()
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
        if index == 1:
            assert (
                f"using the embedded local hub ({tour}/.reconciler/hub.sqlite3, created now: "
                "no sessions yet)" in err
            )
