"""coder-reconciler: sessions as code for the Agentuity Coder API."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
