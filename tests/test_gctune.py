"""The garbage-collector thresholds a plan runs under, and what is left after it."""

from __future__ import annotations

import gc
import threading
from typing import Any

import click

from reconciler import gctune


def test_thresholds_are_raised_inside_and_restored_after() -> None:
    before = gc.get_threshold()
    with gctune.bulk_allocation():
        assert gc.get_threshold() == gctune.BULK_THRESHOLDS
        with gctune.bulk_allocation():  # nested: still raised
            assert gc.get_threshold() == gctune.BULK_THRESHOLDS
        assert gc.get_threshold() == gctune.BULK_THRESHOLDS
    assert gc.get_threshold() == before


def test_young_objects_are_promoted_on_the_way_out_not_traversed() -> None:
    with gctune.bulk_allocation():
        kept = [[i] for i in range(20_000)]  # young objects that outlive the block
        assert gc.get_count()[0] > 700
    # Moved straight to the oldest generation (a young collection would have left
    # them one generation up, after traversing them all).
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(item) in oldest for item in (kept[0], kept[-1], kept))
    assert gc.get_freeze_count() == 0


def test_objects_someone_else_froze_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gctune.bulk_allocation():
            _ = [[i] for i in range(1_000)]
        # Thawing would leave 0; a few frozen objects may be freed meanwhile.
        assert gc.get_freeze_count() > frozen // 2 > 0
    finally:
        gc.unfreeze()


def test_overlapping_plans_in_threads_restore_the_first_thresholds() -> None:
    before = gc.get_threshold()
    inside = threading.Barrier(2)

    def plan() -> None:
        with gctune.bulk_allocation():
            inside.wait(timeout=10)

    threads = [threading.Thread(target=plan) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert gc.get_threshold() == before


def test_a_command_is_imported_under_the_bulk_thresholds(monkeypatch: Any) -> None:
    """The CLI loads a command's modules (long-lived objects only) without young
    collections, and leaves the thresholds as they were."""
    import importlib

    from reconciler.cli.main import cli

    seen: list[tuple[int, ...]] = []
    real = importlib.import_module

    def recording(name: str, package: str | None = None) -> Any:
        seen.append(gc.get_threshold())
        return real(name, package)

    before = gc.get_threshold()
    monkeypatch.setattr(importlib, "import_module", recording)
    command = cli.get_command(click.Context(cli), "validate")
    assert command is not None and command.name == "validate"
    assert seen == [gctune.BULK_THRESHOLDS]
    assert gc.get_threshold() == before
