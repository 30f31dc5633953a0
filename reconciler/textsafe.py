"""Text from outside (a hub, a manifest, a rule's message) shown, never obeyed.

What would act on a terminal or reorder what a reviewer reads, were it printed raw: C0
and C1 controls, DEL, line and paragraph separators, and the Unicode bidirectional
controls (embeddings, overrides, isolates, marks: "Trojan Source", CVE-2021-42574).
:data:`HIDDEN` leaves out tab and newline, which a YAML file written for review shows
as they are (``reconciler.export.render``); :func:`escape_controls`, for one line (of a
plan, of an error), escapes them too. Defined here, at the bottom of the package, so
that an error's own text (``reconciler.errors``) is escaped where it is made.
"""

from __future__ import annotations

import re

__all__ = ["HIDDEN", "escape_controls", "escape_matches"]

_HIDDEN_CHARS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
HIDDEN = re.compile(f"[{_HIDDEN_CHARS}]")
_CONTROLS = re.compile(f"[\t\n{_HIDDEN_CHARS}]")


def escape_matches(pattern: re.Pattern[str], text: str) -> str:
    """``text`` with every character ``pattern`` matches written as a ``\\uXXXX``
    escape (as JSON and YAML's double-quoted strings read it)."""
    return pattern.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def escape_controls(text: str) -> str:
    """``text`` with every control character written as a ``\\uXXXX`` escape, as JSON
    writes C0 controls: what hub or manifest values carry is shown, never obeyed."""
    return escape_matches(_CONTROLS, text)
