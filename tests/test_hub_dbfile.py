"""The hub's database holds resolved env secrets: a private directory, a private file,
and a ``.gitignore`` so a repository never picks it up."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.cli.main import run
from reconciler.hub.dbfile import GITIGNORE, private_database
from reconciler.hub.local import local_app


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    # The modes must not depend on a strict umask of the machine running the tests.
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_new_directory_is_private_and_ignored_and_the_database_too(tmp_path: Path) -> None:
    directory = tmp_path / "work" / ".reconciler"
    db = directory / "hub.sqlite3"
    app = local_app(str(db))
    try:
        assert mode(directory) == 0o700
        assert (directory / ".gitignore").read_text() == GITIGNORE
        # Open in WAL mode, schema written: SQLite made its -wal and -shm files.
        wal_files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(p.exists() for p in wal_files)
        assert {p.name: mode(p) for p in wal_files} == {p.name: 0o600 for p in wal_files}
    finally:
        app.state.store.close()


def test_an_existing_directory_and_gitignore_are_left_alone(tmp_path: Path) -> None:
    directory = tmp_path / "mine"
    directory.mkdir(mode=0o755)
    (directory / ".gitignore").write_text("keep me\n")
    private_database(str(directory / "hub.sqlite3"))
    assert mode(directory) == 0o755
    assert (directory / ".gitignore").read_text() == "keep me\n"
    assert mode(directory / "hub.sqlite3") == 0o600

    bare = tmp_path / "bare"
    bare.mkdir()
    private_database(str(bare / "hub.sqlite3"))
    assert not (bare / ".gitignore").exists()  # only a directory made for the database


def test_a_database_made_world_readable_by_an_older_version_is_tightened(
    tmp_path: Path,
) -> None:
    db = tmp_path / "hub.sqlite3"
    for name in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        name.touch(mode=0o644)
        os.chmod(name, 0o644)
    private_database(str(db))
    assert [mode(p) for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"))] == [0o600] * 3


def test_memory_and_uri_databases_touch_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    private_database(":memory:")
    private_database("file:x?mode=memory")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git on PATH")
def test_a_local_run_leaves_a_fresh_repository_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    manifests = tmp_path / "manifests"  # outside the repository: only the hub's files count
    manifests.mkdir()
    (manifests / "project.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: demo\n"
        "---\napiVersion: reconciler/v1\nkind: Session\nname: triage\n"
        'spec:\n  task: triage\n  env: {TOKEN: "${env:SECRET_FOR_TEST}"}\n'
    )
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("SECRET_FOR_TEST", "resolved-secret-value")
    assert run(["--api-url", "local", "apply", str(manifests), "--yes"]) == 0, capsys.readouterr()
    assert (repo / ".reconciler" / "hub.sqlite3").exists()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == ""


def test_the_lock_beside_the_database_is_private_too(tmp_path: Path) -> None:
    from reconciler.runlock import exclusive_run, lock_path

    db = str(tmp_path / "hub.sqlite3")
    with exclusive_run(db, timeout_s=0, on_wait=print):
        assert mode(Path(lock_path(db))) == 0o600
