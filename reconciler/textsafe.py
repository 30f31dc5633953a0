"""Text from outside (a hub, a manifest, a rule's message) shown, never obeyed.

What would act on a terminal, reorder what a reviewer reads, or hide text from them,
were it printed raw: C0 and C1 controls, DEL, line and paragraph separators, the Unicode
bidirectional controls (embeddings, overrides, isolates, marks: "Trojan Source",
CVE-2021-42574), and the characters that show as nothing: zero-width spaces and
joiners, invisible operators, fillers, the byte order mark, and the tag characters
(U+E0000-U+E007F), which spell text no reviewer sees (a hidden instruction in a task
an agent reads).
:data:`HIDDEN` leaves out tab and newline, which a YAML file written for review shows
as they are (``reconciler.export.render``); :func:`escape_controls`, for one line (of a
plan, of an error), escapes them too. Defined here, at the bottom of the package, so
that an error's own text (``reconciler.errors``) is escaped where it is made.
"""

from __future__ import annotations

import re

__all__ = ["HIDDEN", "escape_controls", "escape_matches"]

_HIDDEN_CHARS = (
    "\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb"
    "\U000e0000-\U000e007f"
    # Format controls that show as nothing: shorthand, musical, Egyptian; and the
    # supplementary variation selectors (runs of them hide bytes after a character).
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U00013430-\U0001343f\U000e0100-\U000e01ef"
    # Lone surrogates (a hub's JSON may hold one): no UTF-8 output can write them raw.
    "\ud800-\udfff"
)
HIDDEN = re.compile(f"[{_HIDDEN_CHARS}]")
_CONTROLS = re.compile(f"[\t\n{_HIDDEN_CHARS}]")


def escape_matches(pattern: re.Pattern[str], text: str, *, json: bool = False) -> str:
    """``text`` with every character ``pattern`` matches written as an escape: ``\\uXXXX``
    (as JSON and YAML's double-quoted strings read it); past U+FFFF ``\\UXXXXXXXX``, as
    YAML reads it, or with ``json`` the UTF-16 pair of ``\\uXXXX`` that JSON reads."""

    def escaped(match: re.Match[str]) -> str:
        code = ord(match[0])
        if code <= 0xFFFF:
            return f"\\u{code:04x}"
        if not json:
            return f"\\U{code:08x}"
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"

    return pattern.sub(escaped, text)


def escape_controls(text: str) -> str:
    """``text`` with every control character written as a ``\\uXXXX`` escape, as JSON
    writes C0 controls: what hub or manifest values carry is shown, never obeyed."""
    return escape_matches(_CONTROLS, text)
