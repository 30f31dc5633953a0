"""The local Coder hub: the whole Coder API as an ASGI app over SQLite.

    create_app(HubConfig(...)) -> Starlette      (reconciler.hub.app)
    LocalHubTransport(app)                       (reconciler.hub.transport)
    local_app(db_path), LOCAL_TOKEN              (reconciler.hub.local)

Modules: ``config`` (HubConfig, tokens), ``schema``/``storage`` (SQLite), ``validation``
and ``requests`` (input), ``sessions``/``session_data``/``admin`` (handlers),
``serialize`` (JSON shapes), ``faults`` (fault knobs), ``routes`` and ``app``.
"""

from __future__ import annotations

__all__: list[str] = []
