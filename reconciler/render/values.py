"""How values look in a plan: JSON-ish scalars, ``(unset)`` for None, control
characters escaped."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["HIDDEN", "UNSET", "escape_controls", "escape_matches", "fmt", "json_text"]

UNSET = "(unset)"

# What would act on a terminal or reorder what a reviewer reads, were it printed raw:
# C0 and C1 controls, DEL, line and paragraph separators, and the Unicode bidirectional
# controls (embeddings, overrides, isolates, marks: "Trojan Source", CVE-2021-42574).
# HIDDEN leaves out tab and newline, which a YAML file written for review shows as they
# are (``reconciler.export.render``); _CONTROLS, for one line of a plan, has them too.
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


def json_text(value: Any) -> str:
    """A JSON document for stdout (indented, non-ASCII text as it is), with the C1
    controls and bidirectional controls escaped as JSON escapes them (it escapes only C0
    itself): hub text read on a terminal or in a CI log is shown, never obeyed. Outside
    its strings a JSON document is ASCII, so the escapes are all inside them."""
    return escape_matches(HIDDEN, json.dumps(value, indent=2, ensure_ascii=False))


def fmt(value: Any) -> str:
    """One value on one line: JSON (keys sorted), ``(unset)`` for None."""
    if value is None:
        return UNSET
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
