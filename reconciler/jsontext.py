"""Compact JSON text of plain values, from the standard library's C encoder set up once.

``json.JSONEncoder.encode`` sets its C encoder up again on every call (``iterencode``
makes a new one with the encoder's options). A plan encodes two small values per
session, the create-only hash's form and the create body whose size is checked; there
that set-up was about a third of each encoding (building 10,000 full-shape sessions:
268 ms to 251 ms, medians of 5 alternating runs, docs/benchmarks.md). :func:`encoder`
makes the C encoder once, from the same options, and falls back to
``JSONEncoder.encode`` where the interpreter has no C encoder.

The encoder made once keeps no record of the containers it is inside (``markers``):
a value that contains itself is not reported as a circular reference (it recurses
until ``RecursionError``). The values encoded here are trees: the manifest reader
refuses a recursive alias, and a hub's JSON cannot hold a cycle.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _stdlib
from typing import Any

__all__ = ["encoder"]


def encoder(
    *,
    sort_keys: bool = False,
    allow_nan: bool = True,
    default: Callable[[Any], Any] | None = None,
) -> Callable[[Any], str]:
    """``JSONEncoder(separators=(",", ":"), ensure_ascii=False, ...).encode`` with
    these options: the same text, the same errors (``ValueError`` for a float JSON
    cannot carry when not ``allow_nan``, ``TypeError`` for a value neither JSON nor
    ``default`` takes)."""
    python = json.JSONEncoder(
        separators=(",", ":"),
        ensure_ascii=False,
        sort_keys=sort_keys,
        allow_nan=allow_nan,
        default=default,
    )
    make = getattr(_stdlib, "c_make_encoder", None)  # None without the C accelerator
    if make is None:
        return python.encode
    chunks = make(
        None,  # markers: no circular-reference check (module docstring)
        python.default,
        _stdlib.encode_basestring,  # ensure_ascii=False: text kept as it is
        None,  # indent
        ":",
        ",",
        sort_keys,
        False,  # skipkeys
        allow_nan,
    )

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode
