"""`python -m reconciler`."""

from __future__ import annotations

from reconciler.cli.main import main

if __name__ == "__main__":
    main()
