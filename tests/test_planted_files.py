"""Files planted where the embedded hub's database, its journal or its lock go, and
``export --out`` through a dangling link: one line naming the path and what to do, exit
64, no traceback; nothing planted is ever followed (no chmod of a link's target, no
database made where a dangling link points)."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.cli.main import run

MANIFEST = (
    "apiVersion: reconciler/v1\nkind: Project\nname: planted\n---\n"
    "apiVersion: reconciler/v1\nkind: Session\nname: s1\nspec: {task: t}\n"
)


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    path = tmp_path / "manifests"
    path.mkdir()
    (path / "all.yaml").write_text(MANIFEST, encoding="utf-8")
    return path


def _db(tmp_path: Path) -> Path:
    directory = tmp_path / ".reconciler"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory / "hub.sqlite3"


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and "bug in coder-reconciler" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert all(n in errors[0] for n in needles), errors[0]
    return errors[0]


def _corrupt(db: Path) -> None:
    db.write_bytes(b"not a database, but a planted file of text\n" * 100)


def _directory(db: Path) -> None:
    db.mkdir()


def _lock_directory(db: Path) -> None:
    Path(f"{db}.lock").mkdir()


def _newer_schema(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()


PLANTED: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "corrupt database": (_corrupt, "", "not a usable hub database"),
    "directory at the database": (_directory, "", "is a directory"),
    "directory at the lock": (_lock_directory, ".lock", "is a directory"),
    "database of a newer schema": (_newer_schema, "", "written by a newer hub (schema 99"),
}


@pytest.mark.parametrize("command", ["apply", "plan"])
@pytest.mark.parametrize("case", list(PLANTED))
def test_planted_files_stop_with_one_line_naming_the_path(
    tmp_path: Path,
    manifests: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    command: str,
) -> None:
    plant, suffix, what = PLANTED[case]
    if command == "plan" and suffix == ".lock":
        pytest.skip("plan takes no lock: it only reads")
    db = _db(tmp_path)
    plant(db)
    args = [command, str(manifests)] + (["--yes"] if command == "apply" else [])
    code = run(["--api-url", "local", "--local-db", str(db), *args])
    line = _one_line_error(capsys, f"{db}{suffix}", what)
    assert code == 64, line
    assert "--local-db" in line  # what to do: another path (or move it away)


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", ".lock"])
def test_a_symlink_is_never_followed_nor_its_target_touched(
    tmp_path: Path, manifests: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    db = _db(tmp_path)
    target = tmp_path / "elsewhere.txt"
    target.write_text("someone's file\n")
    target.chmod(0o644)
    os.symlink(target, f"{db}{suffix}")
    code = run(["--api-url", "local", "--local-db", str(db), "apply", str(manifests), "--yes"])
    _one_line_error(capsys, f"{db}{suffix}", "symbolic link")
    assert code == 64
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert target.read_text() == "someone's file\n"


@pytest.mark.parametrize("suffix", ["", ".lock"])
def test_a_dangling_symlink_makes_nothing_where_it_points(
    tmp_path: Path, manifests: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    db = _db(tmp_path)
    target = tmp_path / "planted-target"
    os.symlink(target, f"{db}{suffix}")
    code = run(["--api-url", "local", "--local-db", str(db), "apply", str(manifests), "--yes"])
    _one_line_error(capsys, f"{db}{suffix}", "symbolic link")
    assert code == 64
    assert not os.path.lexists(target)


@pytest.mark.subprocess
def test_hub_serve_on_a_planted_database_says_so_in_one_line(tmp_path: Path) -> None:
    db = _db(tmp_path)
    os.symlink(tmp_path / "nowhere", db)
    argv = [sys.executable, "-m", "reconciler", "hub", "serve", "--db", str(db), "--port", "0"]
    # Before the fix it served (forever) from a database made where the link points.
    done = subprocess.run(
        [*argv, "--token", "k=org:user"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 64, done.stderr
    assert done.stderr.count("error:") == 1 and "Traceback" not in done.stderr
    assert f"{db} is a symbolic link" in done.stderr
    assert not os.path.lexists(tmp_path / "nowhere")


@pytest.mark.parametrize("points_to", ["missing/dir", "missing-file"])
def test_export_out_through_a_dangling_symlink_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], points_to: str
) -> None:
    out = tmp_path / "out"
    os.symlink(tmp_path / points_to, out)
    db = _db(tmp_path)
    code = run(
        ["--api-url", "local", "--local-db", str(db), "export", "--project", "p", "--out", str(out)]
    )
    _one_line_error(capsys, f"--out {out}", "not a directory", "another --out")
    assert code == 64
    assert not os.path.lexists(tmp_path / points_to)
