"""Close names for a word nobody declared: "did you mean `label`?" (difflib)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

__all__ = ["close_names", "did_you_mean"]

_CUTOFF = 0.6  # difflib's default: close enough to be a typo, not a guess


def close_names(word: str, candidates: Iterable[str], *, n: int = 3) -> list[str]:
    """Up to ``n`` of ``candidates`` closest to ``word``, closest first (ties by name)."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=n, cutoff=_CUTOFF)
    return sorted(close, key=lambda c: (-difflib.SequenceMatcher(None, word, c).ratio(), c))


def did_you_mean(
    word: str, candidates: Iterable[str], *, show: Callable[[str], str] = str, n: int = 3
) -> str:
    """``"; did you mean a or b?"`` to end a message, or ``""`` when nothing is close."""
    close = close_names(word, candidates, n=n)
    return f"; did you mean {' or '.join(show(c) for c in close)}?" if close else ""
