"""Every page of the session list, fetched concurrently and de-duplicated.

Offset paging shifts under concurrent writes: a session created while we page pushes
items to later offsets (the last ones may fall past the pages we planned), one deleted
pulls them earlier (one may slip between two pages). What we do:

1. Fetch page 0 and read ``total``; then every other page concurrently, as many at
   once as the round trip needs (``fan_out``: the first page's wait for the network
   against the CPU a page costs us, at most ``concurrency``).
2. The sweep is *consistent* when every page reported the same ``total`` and the
   de-duplicated items number exactly ``total``. Then it is returned: the usual case,
   costing ``ceil(total / page_size)`` requests.
3. Otherwise the listing changed under us: sweep again (at most ``MAX_SWEEPS`` in all).
   The first consistent sweep is returned on its own (it is a snapshot; union with
   older sweeps would resurrect deleted sessions). If none is consistent, the union of
   all sweeps is returned, later sweeps overriding earlier ones, and a warning logged:
   nothing that existed throughout is missed, at worst a just-deleted session remains.

A server that caps ``limit`` below our page size is detected (page 0 shorter than both
``page_size`` and ``total``) and its page size used. Without ``total`` the pages are
read one after another until a short page.

Items may be converted as their page arrives (``key`` then names an item's sessionId):
only what the caller keeps of each item is held while the other pages come in.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from reconciler.errors import ProtocolError

__all__ = ["MAX_PAGES", "MAX_SWEEPS", "MIN_FAN_OUT", "Page", "collect_all", "fan_out", "session_id"]

log = logging.getLogger("reconciler.client")

MAX_SWEEPS = 3
# More pages than this in one listing is a misbehaving server, with a `total` or without:
# a million sessions at the default page size; a server saying twenty million in pages
# of one would otherwise queue twenty million requests.
MAX_PAGES = 10_000

# Pages in flight however fast the hub answers: enough to overlap one page's transfer
# with the next one's handling. Measured on `hub serve` on the same machine, 100 pages
# (medians of 5 alternating runs, load 0.4-0.6): 4 or 8 at once cost 0.15 s of CPU and
# 0.16 s of wall time; 32 cost a third more of both (0.20 s), from httpcore's work per
# request over more connections.
MIN_FAN_OUT = 4
T = TypeVar("T")
Page = tuple[list[T], int | None]  # (items, total)
FetchPage = Callable[[int, int], Awaitable[Page[T]]]  # (offset, limit) -> page
Key = Callable[[T], str]


def fan_out(wall: float, cpu: float, cap: int) -> int:
    """How many pages to keep in flight after the first, which took ``wall`` seconds
    and ``cpu`` seconds of this process's CPU (sending it, reading and converting it).

    Little's law: to keep this process busy the whole time, a page must be in flight
    for each page's worth of CPU in a round trip, ``wall / cpu``; three times that, as
    a fresh process's first page costs about twice the CPU of the next ones (its
    connection is set up) and round trips vary. In a fresh process a hub 50 ms away
    gets the cap, one on the same machine 4 to 6, where more connections only cost
    CPU; over a connection already open the first page is cheaper and the count higher
    (12 to 30 on the same machine: more CPU than needed, never more wall time). Never
    more than ``cap`` (the caller's bound), never less than one. The client loads its
    network backend before the first page, so that page is not charged the process's
    one-off imports. Other work on the event loop meanwhile is charged to the page:
    the count comes out lower, never under ``MIN_FAN_OUT``.
    """
    if cap <= MIN_FAN_OUT:
        return max(1, cap)
    if cpu <= 0 or wall <= 0:
        return cap  # nothing measured (a clock too coarse): as before, the cap
    return max(MIN_FAN_OUT, min(cap, math.ceil(3 * wall / min(cpu, wall))))


def session_id(item: dict[str, Any]) -> str:
    """The de-duplication key of a list item as the API sends it."""
    return str(item["sessionId"])


async def collect_all(
    fetch: FetchPage[T], *, key: Key[T], page_size: int, concurrency: int
) -> list[T]:
    """Every item of the listing, de-duplicated by ``key`` (see module docstring)."""
    union: dict[str, T] = {}
    for sweep in range(1, MAX_SWEEPS + 1):
        items, consistent = await _sweep(fetch, key, page_size=page_size, concurrency=concurrency)
        if consistent:
            return list(items.values())
        log.info("session list changed while paging (sweep %d); listing again", sweep)
        union.update(items)
    log.warning("session list kept changing while paging; using the union of %d sweeps", MAX_SWEEPS)
    return list(union.values())


async def _sweep(
    fetch: FetchPage[T], key: Key[T], *, page_size: int, concurrency: int
) -> tuple[dict[str, T], bool]:
    started, started_cpu = time.perf_counter(), time.process_time()
    first, total = await fetch(0, page_size)
    wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    seen: dict[str, T] = {}
    _merge(seen, first, key)
    if total is None:
        return await _sequential(fetch, key, seen, first, page_size), True
    step = page_size
    if 0 < len(first) < min(page_size, total):
        step = len(first)  # the server caps `limit`: follow its page size
    offsets = range(len(first) if first else step, total, step)
    if len(offsets) > MAX_PAGES:
        raise ProtocolError(
            f"the hub reports {total} sessions in pages of {step}: {len(offsets) + 1} pages, "
            f"more than the {MAX_PAGES} a listing may take; refusing to page through them"
        )
    gate = asyncio.Semaphore(fan_out(wall, cpu, concurrency))

    async def one(offset: int) -> Page[T]:
        async with gate:
            return await fetch(offset, step)

    pages = await asyncio.gather(*(one(offset) for offset in offsets))
    totals = {total}
    for items, page_total in pages:
        _merge(seen, items, key)
        if page_total is not None:
            totals.add(page_total)
    return seen, len(totals) == 1 and len(seen) == total


async def _sequential(
    fetch: FetchPage[T], key: Key[T], seen: dict[str, T], first: list[T], step: int
) -> dict[str, T]:
    offset, items = len(first), first
    for page in range(MAX_PAGES + 1):
        if len(items) < step or not items:
            break
        if page == MAX_PAGES:
            raise ProtocolError(
                f"the hub's listing goes on past {MAX_PAGES} pages of {step} (and sends no "
                "total); refusing to page through it"
            )
        before = len(seen)
        items, _total = await fetch(offset, step)
        _merge(seen, items, key)
        if len(seen) == before:
            break  # a server ignoring `offset` would otherwise loop forever
        offset += len(items)
    return seen


def _merge(seen: dict[str, T], items: list[T], key: Key[T]) -> None:
    for item in items:
        seen[key(item)] = item
