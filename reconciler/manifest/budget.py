"""What expanding manifests may produce in one run, in proportion to what it read.

A manifest can ask for far more than it holds: an alias repeats a value wherever it is
named, a SessionSet's template is rendered once per item, a template expression can
repeat text (``'a' * 1000000``), and the Project's defaults go into every session that
leaves a field out. One :class:`ExpansionBudget` per run bounds all of it,
however many files share the work:

- nodes constructed through aliases: ``BASE_NODES`` plus one per ``BYTES_PER_NODE``
  bytes read (a "billion laughs" of small nodes);
- bytes produced by alias expansion, template rendering and the defaults inherited:
  ``BASE_BYTES`` plus ``BYTES_PER_BYTE_READ`` per byte read (one large string
  aliased or rendered many times);
- template code compiled: ``BASE_CODE`` plus one byte per ``BYTES_READ_PER_CODE``
  read, counting the text inside ``{{ }}`` and ``{% %}`` of each distinct template
  (Jinja2 takes about 1 KB of memory and 15 microseconds per such byte to compile:
  a 2 MB template of ``{{ index }}`` took 2 GB and 30 s).

Bytes produced are counted as :func:`size_of` counts a value: the UTF-8 bytes of its
strings and ``VALUE_OVERHEAD`` per value (a number, an element of a list, a key and
its value), so a list of a million empty strings costs what it occupies. Template
operations that build text or lists are charged before they allocate where the size is
known in advance (repetition, concatenation, ``replace``, ``join``, slices), and every
rendered value is charged as it is produced: an attack ends at the budget, not when
memory runs out.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BASE_BYTES",
    "BASE_NODES",
    "BYTES_PER_BYTE_READ",
    "BYTES_PER_NODE",
    "BASE_CODE",
    "BYTES_READ_PER_CODE",
    "RENDERING",
    "VALUE_OVERHEAD",
    "BudgetExceeded",
    "ExpansionBudget",
    "size_of",
    "text_size",
]

# Nodes constructed through aliases: real manifests alias a few small maps (a merged
# `<<: *defaults` of ten nodes in a session of 200 bytes spends 1 per 20 bytes read).
BASE_NODES = 10_000
BYTES_PER_NODE = 2
# Bytes produced by aliases and templates. A set multiplies its template by up to 1,000
# items written in a few bytes each, so the base, not the share, pays for sets: ten
# sets of 1,000 sessions with 3 KB of text each, while a 4 KB file can no longer ask
# for a gigabyte. The share per byte read lets large runs grow: real aliases produce
# less than the text they sit in (a merged `<<: *defaults`). Small enough that what
# the budget allows, copied a few times downstream (checks, request bodies, the plan),
# stays far below 300 MB.
BASE_BYTES = 32 * 1024 * 1024
BYTES_PER_BYTE_READ = 4
# What one value costs besides its text: a pointer to it in its list or mapping.
VALUE_OVERHEAD = 8
# Template code compiled (bytes inside tags, each distinct template once): the base is
# a hundred sets of ten templated values of 60 bytes of tags, and compiles in about a
# second; large runs get a little more.
BASE_CODE = 64 * 1024
BYTES_READ_PER_CODE = 64

# What the budget's messages call the work of rendering SessionSet templates.
RENDERING = "template rendering"


class BudgetExceeded(Exception):
    """The run's expansion budget is spent; the message says which and how it was set."""


def text_size(text: str) -> int:
    """The UTF-8 bytes of ``text`` (counted without encoding it when it is ASCII)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def size_of(value: Any) -> int:
    """The bytes ``value`` counts as: UTF-8 text plus ``VALUE_OVERHEAD`` per value.

    A list or mapping that holds the same object many times (``[[x] * 1000] * 1000``)
    counts every occurrence, as text or JSON would write it, yet the walk visits each
    distinct object once: its cost is what the value occupies, not what it counts.
    """
    return _size(value, {})


def _size(value: Any, seen: dict[int, int]) -> int:
    if isinstance(value, str):
        return text_size(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return VALUE_OVERHEAD
    if isinstance(value, int):
        return max(VALUE_OVERHEAD, value.bit_length() // 3 + 1)  # at least its digits
    if not isinstance(value, list | tuple | dict):
        return VALUE_OVERHEAD
    key = id(value)
    known = seen.get(key)
    if known is not None:
        return known
    total = 0
    if isinstance(value, dict):
        for k, v in value.items():
            total += 2 * VALUE_OVERHEAD + _size(k, seen) + _size(v, seen)
    else:
        for item in value:
            total += VALUE_OVERHEAD + _size(item, seen)
    seen[key] = total
    return total


class ExpansionBudget:
    """What aliases and templates may still produce in this run.

    Each file read adds to it in proportion to its size, so files full of aliases or
    templates expand to a small multiple of their own size at most, however many of
    them a run reads. One budget is shared by every file and every set of a run. Once
    spent it stays spent: every later expansion is refused too.
    """

    def __init__(self) -> None:
        self.nodes_allowed = self.nodes_left = BASE_NODES
        self.bytes_allowed = self.bytes_left = BASE_BYTES
        self.code_allowed = self.code_left = BASE_CODE

    def add_source(self, size: int) -> None:
        """Grant the share of ``size`` bytes of manifests read."""
        nodes = size // BYTES_PER_NODE
        self.nodes_allowed += nodes
        self.nodes_left += nodes
        produced = size * BYTES_PER_BYTE_READ
        self.bytes_allowed += produced
        self.bytes_left += produced
        code = size // BYTES_READ_PER_CODE
        self.code_allowed += code
        self.code_left += code

    def spend_node(self, what: str) -> None:
        """Count one node that ``what`` (``alias expansion``) constructs."""
        self.nodes_left -= 1
        if self.nodes_left < 0:
            raise BudgetExceeded(
                f"{what} exceeds this run's budget of {self.nodes_allowed} nodes "
                f"({BASE_NODES} plus one per {BYTES_PER_NODE} bytes of manifests read); "
                "refused"
            )

    def spend_bytes(self, size: int, what: str) -> None:
        """Count ``size`` bytes that ``what`` produces (or is about to)."""
        self.bytes_left -= size
        if self.bytes_left < 0:
            raise BudgetExceeded(self._bytes_message(what))

    def check_bytes(self, size: int, what: str) -> None:
        """Refuse, before allocating, a result of up to ``size`` bytes that cannot fit."""
        if size > self.bytes_left or self.bytes_left < 0:
            self.bytes_left = -1  # spent: what comes next is refused as well
            raise BudgetExceeded(self._bytes_message(what))

    def spend_code(self, size: int) -> None:
        """Count ``size`` bytes of template code about to be compiled."""
        self.code_left -= size
        if self.code_left < 0:
            raise BudgetExceeded(
                f"template compilation exceeds this run's budget of {self.code_allowed:,} "
                f"bytes of template code ({BASE_CODE // 1024} KiB plus one per "
                f"{BYTES_READ_PER_CODE} bytes of manifests read, counting the text inside "
                "{{ }} and {% %}); refused"
            )

    def _bytes_message(self, what: str) -> str:
        return (
            f"{what} exceeds this run's budget of {self.bytes_allowed:,} bytes produced "
            f"({BASE_BYTES // (1024 * 1024)} MiB plus {BYTES_PER_BYTE_READ} per byte of "
            "manifests read); refused"
        )
