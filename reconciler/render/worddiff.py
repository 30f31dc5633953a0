"""A changed long text (a task) as a word-level diff, in the manner of ``git diff
--word-diff``: ``[-removed-]{+added+}`` inline, long unchanged stretches elided.

Two whole paragraphs side by side hide a one-word edit; the diff shows just it.
"""

from __future__ import annotations

import difflib

__all__ = ["LONG_TEXT", "is_long_text", "word_diff"]

# From this many characters on either side, a changed string is shown as a word diff.
LONG_TEXT = 60
_CONTEXT_WORDS = 4
_ELLIPSIS = "…"


def is_long_text(before: object, after: object) -> bool:
    """Both sides are strings and one is long enough to be worth a word diff."""
    return (
        isinstance(before, str)
        and isinstance(after, str)
        and max(len(before), len(after)) >= LONG_TEXT
    )


def _kept(words: list[str], *, first: bool, last: bool) -> list[str]:
    """An unchanged stretch, cut to the words next to the changes around it."""
    n = _CONTEXT_WORDS
    if first and last:
        return words
    if first:
        return [_ELLIPSIS, *words[-n:]] if len(words) > n else words
    if last:
        return [*words[:n], _ELLIPSIS] if len(words) > n else words
    if len(words) > 2 * n:
        return [*words[:n], _ELLIPSIS, *words[-n:]]
    return words


def word_diff(before: str, after: str) -> str:
    """``before -> after`` as one line of words: ``[-old-]{+new+}`` where they differ."""
    old, new = before.split(), after.split()
    opcodes = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
    out: list[str] = []
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            out += _kept(old[i1:i2], first=index == 0, last=index == len(opcodes) - 1)
            continue
        if i2 > i1:
            out.append("[-" + " ".join(old[i1:i2]) + "-]")
        if j2 > j1:
            out.append("{+" + " ".join(new[j1:j2]) + "+}")
    if not any(tag != "equal" for tag, *_ in opcodes):
        return "(whitespace only)"
    return " ".join(out)
