"""The settings of a run: read once from flags and the environment, passed to the library.

Click-free, so the library never depends on the command line: the CLI builds a
:class:`GlobalOptions` from its flags, and everything below takes it as a value.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

__all__ = ["GlobalOptions"]


@dataclass(frozen=True)
class GlobalOptions:
    """What every command may need. ``environ`` is the only view of the environment.

    ``api_url`` is None when neither ``--api-url`` nor ``CODER_API_URL`` was given.
    The token is never a flag: it comes from ``AGENTUITY_SDK_KEY`` (or
    ``AGENTUITY_CLI_KEY``) in ``environ``.
    """

    api_url: str | None = None
    coder_url: str | None = None
    org: str | None = None
    local_db: str = ".reconciler/hub.sqlite3"
    no_color: bool = False
    verbose: int = 0
    # --timeout / CODER_TIMEOUT: seconds to wait for each answer; None: the client's own.
    timeout: float | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
    # The options above that choose the hub and the org (--api-url, --coder-url, --org,
    # --local-db) given on the command line, by name (``api_url``...): a command the
    # tool tells a person to run next repeats those its hub was resolved from
    # (``invocation``). Those from the environment are not: the environment that gave
    # them gives them again.
    hub_flags: Mapping[str, str] = field(default_factory=dict)

    def invocation(self, used: Collection[str]) -> str:
        """``reconciler`` and the hub flags this run was given that are among ``used``
        (``Endpoint.options``: what its hub was resolved from), quoted for a shell: the
        start of a command the tool suggests (``plan --out``'s apply)."""
        import shlex

        words = ["reconciler"]
        for name, value in self.hub_flags.items():
            if name in used:
                words += ["--" + name.replace("_", "-"), shlex.quote(value)]
        return " ".join(words)

    def color(self, stream: object = None) -> bool:
        """Colour only on a terminal, and never with --no-color or NO_COLOR."""
        if self.no_color or "NO_COLOR" in self.environ:
            return False
        target = stream if stream is not None else sys.stdout
        isatty = getattr(target, "isatty", None)
        return bool(isatty and isatty())
