"""A steady `watch` is cheap: it keeps one manifest cache for its life (a reconcile
after the first reads no file that did not change, and plans or heals exactly as a cold
load would), and runs each reconcile under plan's GC thresholds, collecting fully
between them every few reconciles."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from manifestreads import count_reads

from reconciler import gctune
from reconciler.client import RetryPolicy
from reconciler.connect import resolve_endpoint
from reconciler.manifest import load_manifests
from reconciler.manifest.filecache import ManifestCache
from reconciler.settings import GlobalOptions
from reconciler.watch import Reconcile, WatchRequest, reconcile_once, run_watch
from reconciler.watch import loop as loop_module

PROJECT = "apiVersion: reconciler/v1\nkind: Project\nname: cached\n"


def session(name: str, label: str = "L") -> str:
    return (
        "---\napiVersion: reconciler/v1\nkind: Session\n"
        f"name: {name}\nspec: {{task: t {name}, label: {label}}}\n"
    )


def _tree(root: Path) -> Path:
    path = root / "manifests"
    path.mkdir()
    (path / "a.yaml").write_text(PROJECT + session("a") + session("b"), encoding="utf-8")
    (path / "c.yaml").write_text(session("c"), encoding="utf-8")
    return path


def _opts(tmp_path: Path) -> GlobalOptions:
    return GlobalOptions(api_url="local", local_db=str(tmp_path / "hub.sqlite3"), environ={})


async def _reconcile(
    opts: GlobalOptions, request: WatchRequest, cache: ManifestCache | None
) -> Reconcile:
    retry = RetryPolicy(base_delay=0.0, max_delay=0.0)
    endpoint = dataclasses.replace(resolve_endpoint(opts), retry=retry)
    return await reconcile_once(opts, request, endpoint=endpoint, stop=asyncio.Event(), cache=cache)


async def test_a_second_reconcile_reads_no_unchanged_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = _opts(tmp_path)
    request = WatchRequest(paths=(str(_tree(tmp_path)),))
    reads = count_reads(monkeypatch)
    cache = ManifestCache()
    first = await _reconcile(opts, request, cache)
    assert sorted(reads) == ["a.yaml", "c.yaml"]
    reads.clear()
    second = await _reconcile(opts, request, cache)
    assert reads == []
    assert second.result == first.result == "drift"
    assert second.plan == first.plan and first.plan is not None
    assert first.plan.count("create") == 3
    # One file edited: that file is read, and the plan is a cold reconcile's.
    (tmp_path / "manifests" / "c.yaml").write_text(session("c") + session("d"), encoding="utf-8")
    third = await _reconcile(opts, request, cache)
    assert reads == ["c.yaml"]
    cold = await _reconcile(opts, request, None)
    assert third.plan == cold.plan and cold.plan is not None and cold.plan.count("create") == 4


async def test_a_healing_watch_reads_nothing_once_in_sync_and_its_cache_stays_true(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = _opts(tmp_path)
    path = _tree(tmp_path)
    request = WatchRequest(paths=(str(path),), self_heal=True)
    cache = ManifestCache()
    applied = await _reconcile(opts, request, cache)
    assert applied.result == "applied"
    reads = count_reads(monkeypatch)
    again = await _reconcile(opts, request, cache)
    assert (again.result, reads) == ("in-sync", [])
    # Applying changed nothing the cache holds: it still answers what a cold load does.
    assert load_manifests([str(path)], environ={}, cache=cache) == load_manifests(
        [str(path)], environ={}
    )
    assert reads == ["a.yaml", "c.yaml"]  # the cold load's reads only


async def test_the_loop_keeps_one_cache_for_every_reconcile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    caches: list[Any] = []
    stop = asyncio.Event()

    async def fake_reconcile(*args: object, **kwargs: Any) -> Reconcile:
        caches.append(kwargs.get("cache"))
        if len(caches) == 3:
            stop.set()
        return Reconcile("in-sync", 0.0)

    monkeypatch.setattr(loop_module, "reconcile_once", fake_reconcile)
    opts = _opts(tmp_path)
    watching = run_watch(
        opts, WatchRequest(interval_s=0.01), endpoint=resolve_endpoint(opts), stop=stop
    )
    await asyncio.wait_for(watching, 10)
    assert len(caches) == 3 and isinstance(caches[0], ManifestCache)
    assert all(cache is caches[0] for cache in caches)


async def test_each_reconcile_runs_under_plans_gc_thresholds_and_the_loop_collects_between(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    thresholds: list[tuple[int, ...]] = []
    collected_after: list[int] = []
    stop = asyncio.Event()
    every = loop_module.FULL_COLLECTION_EVERY

    async def fake_reconcile(*args: object, **kwargs: Any) -> Reconcile:
        thresholds.append(gc.get_threshold())
        if len(thresholds) == 2 * every + 1:
            stop.set()
        return Reconcile("in-sync", 0.0)

    def collect() -> int:
        collected_after.append(len(thresholds))
        return 0

    monkeypatch.setattr(loop_module, "reconcile_once", fake_reconcile)
    monkeypatch.setattr(loop_module, "gc", SimpleNamespace(collect=collect))
    before = gc.get_threshold()
    opts = _opts(tmp_path)
    watching = run_watch(
        opts, WatchRequest(interval_s=0.001), endpoint=resolve_endpoint(opts), stop=stop
    )
    await asyncio.wait_for(watching, 30)
    assert thresholds == [gctune.BULK_THRESHOLDS] * (2 * every + 1)
    assert collected_after == [every, 2 * every]
    assert gc.get_threshold() == before  # after: the caller's
