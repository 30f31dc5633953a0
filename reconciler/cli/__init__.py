"""Command-line interface: thin click commands over the library."""

from __future__ import annotations

__all__: list[str] = []
