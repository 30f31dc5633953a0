"""SIGTERM handled as Ctrl-C by the command line (``cli.main``), in-process.

The cases a subprocess cannot time: a SIGTERM while the command's module loads, while
an extension module imports, inside a task group; the handler left as it was found.
The end-to-end cases (an apply, a background job, the prompt) are in
``test_e2e_interrupt.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from clihub import invoke

from reconciler.cli.main import LazyGroup, run

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def _sigterm_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture
def loads_with(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable[[], None]], None]]:
    """Run ``action`` where a command's module is being loaded, then load it."""
    original = LazyGroup._lazy_load

    def install(action: Callable[[], None]) -> None:
        def loading(self: LazyGroup, name: str) -> click.Command:
            action()
            return original(self, name)

        monkeypatch.setattr(LazyGroup, "_lazy_load", loading)

    yield install


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "p.yaml").write_text("apiVersion: reconciler/v1\nkind: Project\nname: t\n")
    return tmp_path


def test_sigterm_while_a_command_loads_interrupts_it(
    loads_with: Callable[[Callable[[], None]], None],
    folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    loads_with(_sigterm_self)
    code, out, err = invoke(capsys, "validate", str(folder))
    assert (code, out) == (130, "") and err.endswith("Aborted.\n")
    # The handler is the one found before the run: SIGTERM's default again.
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sigterm_before_watch_runs_stops_it_cleanly_exit_0(
    loads_with: Callable[[Callable[[], None]], None],
    folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # watch stops on SIGTERM with exit 0 (docs/reference/exit-codes.md), also before
    # its own handler is in place.
    loads_with(_sigterm_self)
    code, _, err = invoke(capsys, "--api-url", "local", "watch", str(folder))
    assert code == 0 and err.endswith("Stopped (SIGTERM).\n")
    # Ctrl-C is an interruption, for watch too.
    loads_with(lambda: os.kill(os.getpid(), signal.SIGINT))
    code, _, _ = invoke(capsys, "--api-url", "local", "watch", str(folder))
    assert code == 130


class _Panic(BaseException):
    """As pyo3's PanicException: an extension module's import that an interrupt broke."""


def test_what_an_interrupt_breaks_after_sigterm_is_the_interrupt_not_a_bug(
    loads_with: Callable[[Callable[[], None]], None],
    folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def import_broken_by_it() -> None:
        try:
            _sigterm_self()
        except KeyboardInterrupt:
            raise _Panic("failed to import the stdlib decimal module") from None

    loads_with(import_broken_by_it)
    code, _, err = invoke(capsys, "validate", str(folder))
    assert code == 130 and "Traceback" not in err and "bug" not in err


def test_a_task_groups_interrupt_is_an_interrupt(
    loads_with: Callable[[Callable[[], None]], None],
    folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def in_a_task_group() -> None:
        raise BaseExceptionGroup("unhandled errors in a TaskGroup", [KeyboardInterrupt()])

    loads_with(in_a_task_group)
    code, _, err = invoke(capsys, "validate", str(folder))
    assert code == 130 and err.endswith("Interrupted.\n")

    def a_bug() -> None:
        raise BaseExceptionGroup("errors", [ValueError("a bug")])

    loads_with(a_bug)
    code, _, err = invoke(capsys, "validate", str(folder))
    assert code == 1 and "this is a bug" in err


def test_sigterm_ignored_by_the_parent_still_stops_a_command(
    loads_with: Callable[[Callable[[], None]], None],
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        loads_with(_sigterm_self)
        code, _, _ = invoke(capsys, "validate", str(folder))
        assert code == 130
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # as found
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_an_embedding_programs_handler_is_left_alone(
    loads_with: Callable[[Callable[[], None]], None],
    folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    got: list[int] = []

    def own(signum: int, frame: object) -> None:
        got.append(signum)

    previous = signal.signal(signal.SIGTERM, own)
    try:
        loads_with(_sigterm_self)
        code, _, _ = invoke(capsys, "validate", str(folder))
        assert code == 0 and got == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)


def _patched_run(
    folder: Path, patches: Path, sitecustomize: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """``python -m reconciler ARGS`` in ``folder``, with ``sitecustomize`` (written in
    ``patches``) run first: it patches the moment a signal is to land."""
    (patches / "sitecustomize.py").write_text(sitecustomize)
    root = Path(__file__).resolve().parent.parent
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(patches), str(root)])},
        timeout=60,
    )


@pytest.mark.subprocess
@pytest.mark.parametrize(("command", "code"), [("validate", 130), ("watch", 0)])
def test_an_interrupt_out_of_exec_text_still_exits_with_the_code(
    folder: Path, tmp_path_factory: pytest.TempPathFactory, command: str, code: int
) -> None:
    # A SIGTERM that lands in text run by exec() (a dataclass made while a module
    # loads) left CPython's "unhandled KeyboardInterrupt" mark: under `python -m` the
    # process printed its message, then killed itself with SIGINT (-2).
    done = _patched_run(
        folder,
        tmp_path_factory.mktemp("patch"),
        "from reconciler.cli.main import LazyGroup\n"
        "load = LazyGroup._lazy_load\n"
        "def loading(self, name):\n"
        "    exec('import os, signal, time\\nos.kill(os.getpid(), signal.SIGTERM)\\n"
        "time.sleep(5)')\n"
        "    return load(self, name)\n"
        "LazyGroup._lazy_load = loading\n",
        "--api-url",
        "local",
        command,
        str(folder),
    )
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr


@pytest.mark.subprocess
@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_an_interrupt_once_the_actions_are_done_keeps_the_report(
    folder: Path, tmp_path_factory: pytest.TempPathFactory, stop: str
) -> None:
    # Removing apply's handler put Python's own back: an interrupt between the last
    # action (settled) and the end of the run raised there, and the report was lost
    # ("Aborted.", exit 130, though the session was created).
    (folder / "s.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: s1\nspec:\n  task: t\n"
    )
    done = _patched_run(
        folder,
        tmp_path_factory.mktemp("patch"),
        "import os, signal, time\n"
        "import reconciler.policy.overrides as overrides\n"
        "found = overrides.overridden_policies\n"
        "def late(findings):\n"
        f"    os.kill(os.getpid(), signal.{stop})\n"
        "    time.sleep(0.2)\n"
        "    return found(findings)\n"
        "overrides.overridden_policies = late\n",
        "--api-url",
        "local",
        "apply",
        "--yes",
        ".",
    )
    assert "Apply complete: 1 succeeded" in done.stderr, done.stderr
    assert "the actions are done" in done.stderr
    assert done.returncode == 0, done.stderr


def test_a_sigterm_of_one_run_says_nothing_of_the_next(
    loads_with: Callable[[Callable[[], None]], None],
    folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    loads_with(_sigterm_self)
    code, _, _ = invoke(capsys, "validate", str(folder))
    assert code == 130

    def a_bug() -> None:
        raise ValueError("a bug")

    loads_with(a_bug)
    # In another thread (no handler of ours there): the bug is a bug, not the last run's
    # interrupt.
    outcome: list[int] = []
    thread = threading.Thread(target=lambda: outcome.append(run(["validate", str(folder)])))
    thread.start()
    thread.join(60)
    assert outcome == [1]
    assert "this is a bug" in capsys.readouterr().err


@pytest.mark.subprocess
def test_a_sigterm_once_the_outcome_is_said_leaves_the_exit_code(
    folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # run() put SIGTERM's default back before main() ignored it: a SIGTERM in between
    # turned "OK" (exit 0) into 143.
    done = _patched_run(
        folder,
        tmp_path_factory.mktemp("patch"),
        "import os, signal, time\n"
        "import reconciler.cli.jsonout as jsonout\n"
        "reset = jsonout.reset\n"
        "def late(token):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(0.2)\n"
        "    return reset(token)\n"
        "jsonout.reset = late\n",
        "validate",
        ".",
    )
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout.startswith("OK:")
