"""How values look in a plan: JSON-ish scalars, ``(unset)`` for None, control
characters escaped."""

from __future__ import annotations

import json
from typing import Any

from reconciler.textsafe import HIDDEN, escape_controls, escape_matches

__all__ = ["HIDDEN", "UNSET", "escape_controls", "escape_matches", "fmt", "json_text"]

UNSET = "(unset)"


def json_text(value: Any) -> str:
    """A JSON document for stdout (indented, non-ASCII text as it is), with the C1
    controls and bidirectional controls escaped as JSON escapes them (it escapes only C0
    itself): hub text read on a terminal or in a CI log is shown, never obeyed. Outside
    its strings a JSON document is ASCII, so the escapes are all inside them."""
    return escape_matches(HIDDEN, json.dumps(value, indent=2, ensure_ascii=False), json=True)


def fmt(value: Any) -> str:
    """One value on one line: JSON (keys sorted), ``(unset)`` for None."""
    if value is None:
        return UNSET
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
