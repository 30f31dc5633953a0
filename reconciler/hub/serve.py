"""Serve a hub over TCP with uvicorn (what ``reconciler hub serve`` runs).

Within the bounds every server of ours keeps (:mod:`reconciler.serving`: a connection
limit that answers 503 rather than drop a client, deadlines on request heads and
bodies, collapsed log lines); a lost response (the fault knob) is no traceback either.
"""

from __future__ import annotations

import logging
import socket

from reconciler.hub.app import create_app
from reconciler.hub.config import DEFAULT_MAX_CONNECTIONS, HubConfig
from reconciler.hub.errors import LostResponse
from reconciler.serving import Bounds, bounded_server

__all__ = ["serve"]

_BOUNDS = Bounds(max_connections=DEFAULT_MAX_CONNECTIONS)


class _DropLostResponses(logging.Filter):
    """uvicorn logs a traceback for every exception; a lost response is on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], LostResponse))


def serve(
    config: HubConfig,
    *,
    sock: socket.socket,
    access_log: bool = False,
    bounds: Bounds = _BOUNDS,
) -> None:
    """Serve on ``sock`` (bound by the caller, ``serving.bind_listener``) until
    interrupted: SIGINT and SIGTERM shut down cleanly and close the store; then uvicorn
    raises the signal again, for the handler it found."""
    logging.getLogger("uvicorn.error").addFilter(_DropLostResponses())
    server = bounded_server(
        create_app(config),
        bounds,
        # The CLI configured logging already (levels follow -v); keep uvicorn's own
        # dictConfig from replacing it.
        log_config=None,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    # uvicorn shuts down on SIGINT or SIGTERM, then raises the signal again for the
    # handler it found (the command line's: either ends the command as Ctrl-C, 130).
    server.run(sockets=[sock])
