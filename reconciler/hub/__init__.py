"""The local Coder hub: the whole Coder API as an ASGI app over SQLite.

    create_app(HubConfig(...)) -> Starlette      (reconciler.hub.app)
    local_app(db_path), LOCAL_TOKEN              (reconciler.hub.local)

The package is a Starlette app and knows nothing of the client: the client reaches it
in-process through ``reconciler.connect.LocalHubTransport``, or over TCP (``serve``).

Modules: ``config`` (HubConfig, tokens), ``schema``/``storage`` (SQLite), ``validation``
and ``requests`` (input), ``sessions``/``session_data``/``admin`` (handlers),
``serialize`` (JSON shapes), ``faults`` (fault knobs), ``routes`` and ``app``.
"""

from __future__ import annotations

__all__: list[str] = []
