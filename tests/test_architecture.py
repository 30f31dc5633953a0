"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and they are real:
a copy of the package with one forbidden import added fails ``lint-imports``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.subprocess  # lint-imports is a Python process


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over the package in ``tree`` (found first on the path)."""
    environ = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [require_tool("lint-imports"), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_package_keeps_its_contracts() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("client/core.py", "import reconciler.hub.local", "The client knows httpx"),
        ("hub/app.py", "import reconciler.client", "The hub knows Starlette"),
        ("pipeline.py", "import reconciler.cli.context", "The library never imports the CLI"),
        ("render/text.py", "import reconciler.applier", "Renderers only render"),
        ("model.py", "import reconciler.planner", "Layers"),
        ("unplaced.py", "", "Layers"),  # a new module must be given a layer
    ],
)
def test_a_forbidden_import_fails(tmp_path: Path, module: str, line: str, broken: str) -> None:
    shutil.copytree(ROOT / "reconciler", tmp_path / "reconciler")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "reconciler" / module
    source = target.read_text(encoding="utf-8") if target.exists() else '"""New."""\n'
    target.write_text(source + f"\n{line}  # noqa\n", encoding="utf-8")
    done = lint_imports(tmp_path)
    assert done.returncode != 0, done.stdout
    assert f"{broken}" in done.stdout.split("Broken contracts")[-1]
