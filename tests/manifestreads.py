"""Which manifest files the YAML reader is asked for (``manifest.filecache`` tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.manifest import loader

__all__ = ["count_reads"]


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A list that gets the name of each file the loader reads from now on, in order."""
    seen: list[str] = []
    real = loader.iter_documents

    def counting(path: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(loader, "iter_documents", counting)
    return seen
