"""Garbage-collector thresholds while a plan builds many long-lived objects.

Loading, listing and planning allocate hundreds of thousands of small containers per
thousand sessions, nearly all of which live until the plan is made: there is next to
no cyclic garbage among them. CPython's default thresholds (700, 10, 10) then cost
dearly for nothing: a young collection every 700 allocations, and a full collection,
traversing every object in the process, each time the long-lived objects have grown
by a quarter, so everything is traversed several times over. Measured on a plan of
10,000 sessions that was about 15% of its CPU.

While a plan is built, young collections run every 50,000 allocations and full ones
not at all (cycles made meanwhile are still found by the young and middle ones);
the caller's thresholds are back afterwards. On the way out, whatever is still young
(up to 50,000 objects, nearly all of them the plan itself) is moved to the oldest
generation in one step (``gc.freeze()`` then ``gc.unfreeze()``, two list splices)
instead of being traversed by the young collection the old thresholds would start at
once: 25-30 ms on a plan of 1,000 sessions. Garbage among them waits for the next
full collection.

It is the command's choice, made at its entry (``plan``, ``apply``, ``status`` wrap
their run in :func:`bulk_allocation`, and the command line imports every command's
modules under it: modules, classes and functions, nothing to collect), never the
library's: an embedder (the benchmarks) decides. ``watch``, long-running, wraps each
reconcile and keeps the default thresholds between them, where it also runs a full
collection every few reconciles (``watch.loop.FULL_COLLECTION_EVERY``): the cycles
promoted on the way out would otherwise wait for one that its idle time never starts.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BULK_THRESHOLDS", "bulk_allocation"]

BULK_THRESHOLDS = (50_000, 20, 1_000_000)

# Plans may overlap (several event loops or threads): the first in sets the thresholds,
# the last out restores what was there before the first.
_lock = threading.Lock()
_depth = 0
_saved: tuple[int, ...] = ()


@contextmanager
def bulk_allocation() -> Iterator[None]:
    """Run the body under ``BULK_THRESHOLDS``; restore the previous thresholds after."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(*BULK_THRESHOLDS)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                if gc.get_freeze_count() == 0:  # never thaw what someone else froze
                    gc.freeze()
                    gc.unfreeze()
                gc.set_threshold(*_saved)
