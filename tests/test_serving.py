"""reconciler.serving: the bounds every server of ours keeps, in-process on 127.0.0.1.

The floods against the real servers, as subprocesses, are in tests/test_hub_serve.py
and tests/test_e2e_watch.py."""

from __future__ import annotations

import logging
import time

import pytest

from reconciler.serving import CollapseRepeats, listen_bounds


def test_repeated_log_messages_collapse_without_tracebacks() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    log = logging.getLogger("test.collapse")
    log.propagate = False
    log.addHandler(Keep())
    log.addFilter(CollapseRepeats(window_s=0.2))
    error = OSError(24, "Too many open files")
    for _ in range(1000):
        log.error("socket.accept() out of system resource\nsocket: <fd=9>", exc_info=error)
    log.warning("something else")
    time.sleep(0.25)
    log.error("socket.accept() out of system resource\nsocket: <fd=9>", exc_info=error)
    lines = [record.getMessage() for record in records]
    assert lines == [
        "socket.accept() out of system resource: [Errno 24] Too many open files",
        "something else",
        "socket.accept() out of system resource: [Errno 24] Too many open files "
        "(999 more like it in the last 0.2s)",
    ]
    assert all(record.exc_info is None for record in records)


@pytest.mark.parametrize(
    ("requested", "reserve", "fds", "expected"),
    [
        (1000, 64, 20_000, (1000, 128)),
        (1000, 64, 1024, (480, 80)),
        (1000, 64, 512, (226, 37)),
        (1000, 64, 256, (96, 16)),
        (1000, 64, 64, (1, 8)),
        # The watcher's port: few connections, and its reconciles' descriptors reserved.
        (64, 164, 1024, (64, 64)),
        (64, 164, 256, (44, 8)),
    ],
)
def test_connections_and_backlog_fit_the_descriptor_limit(
    requested: int, reserve: int, fds: int, expected: tuple[int, int]
) -> None:
    limit, backlog = listen_bounds(requested, reserve=reserve, soft_fd_limit=fds)
    assert (limit, backlog) == expected
    # The connections, six bursts of accepts and the reserve fit, when they can.
    if fds > reserve + 8 * 6:
        assert limit + 6 * backlog + reserve <= fds
