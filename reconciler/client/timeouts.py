"""How long the client waits for the network (one value, passed to httpx)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

__all__ = ["Timeouts"]


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait: connecting, reading a response, writing a body, taking a pooled
    connection. Defaults: connect 5 s, read 30 s."""

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 30.0

    @classmethod
    def waiting(cls, seconds: float) -> Timeouts:
        """``seconds`` to read an answer, send a body or take a pooled connection;
        connecting waits the default or ``seconds`` when shorter (a hub that does not
        take the connection is not worth a longer wait than one that does not answer)."""
        return cls(connect=min(cls.connect, seconds), read=seconds, write=seconds, pool=seconds)

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool"):
            if getattr(self, name) <= 0:
                raise ValueError(f"timeout {name} must be > 0")

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)
