"""The documentation as tests read it: the README and the pages of the docs site."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def page(relative: str) -> str:
    """A page of the docs site, e.g. ``reference/cli.md``; ``README.md`` is the README."""
    path = ROOT / relative if relative == "README.md" else DOCS / relative
    return path.read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    """From the ``## title`` heading of ``text`` to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no section '## {title}'"
    return match.group(1)


def shell_blocks(text: str) -> list[tuple[str, str]]:
    """Each ``sh``/``bash``/``console`` fenced block as (the line before it, its body)."""
    blocks = []
    for match in re.finditer(r"^```(?:sh|bash|console|shell)\n(.*?)^```", text, re.M | re.S):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        blocks.append((before, match.group(1)))
    return blocks
