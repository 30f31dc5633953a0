"""The load benchmark runs (small size) and prints the ratio."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_load.py"


def test_bench_load_smoke(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCH.parent))  # as running the script puts it there
    spec = importlib.util.spec_from_file_location("bench_load", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--sessions", "40", "--files", "3", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "sessions:                  40 in 3 files" in out
    assert "ratio:" in out
