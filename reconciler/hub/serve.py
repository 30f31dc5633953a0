"""Serve a hub over TCP with uvicorn (what ``reconciler hub serve`` runs)."""

from __future__ import annotations

import logging

import uvicorn

from reconciler.hub.app import create_app
from reconciler.hub.config import HubConfig
from reconciler.hub.errors import LostResponse

__all__ = ["serve"]


class _DropLostResponses(logging.Filter):
    """uvicorn logs a traceback for every exception; a lost response is on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], LostResponse))


def serve(config: HubConfig, *, host: str, port: int, access_log: bool = False) -> None:
    """Run until interrupted (SIGINT/SIGTERM shut down cleanly and close the store)."""
    logging.getLogger("uvicorn.error").addFilter(_DropLostResponses())
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=host,
            port=port,
            # The CLI configured logging already (levels follow -v); keep uvicorn's own
            # dictConfig from replacing it.
            log_config=None,
            access_log=access_log,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )
    server.run()
