"""The log lines of ``watch``: text for a terminal, JSON lines for a log pipeline.

JSON through python-json-logger: each record becomes one object with ``time``,
``level``, ``logger``, ``message`` and the record's ``extra`` fields (``event``,
``result``, ``project``...; see :mod:`reconciler.watch.loop`).
"""

from __future__ import annotations

import logging
from typing import Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

__all__ = ["LogFormat", "watch_handler"]

LogFormat = Literal["text", "json"]


def watch_handler(fmt: LogFormat, stream: TextIO) -> logging.Handler:
    """A handler writing ``reconciler.*`` records to ``stream`` in ``fmt``."""
    handler = logging.StreamHandler(stream)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    return handler
