"""What the applier needs from a Coder client (``reconciler.client.CoderClient`` fits).

A Protocol rather than the class itself, so tests can drive the applier with a small
in-memory fake and count exactly which requests it makes.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["ApplyClient"]


class ApplyClient(Protocol):
    async def create_session(self, body: dict[str, Any]) -> Any: ...

    async def update_session(self, session_id: str, body: dict[str, Any]) -> Any: ...

    async def archive_session(self, session_id: str) -> Any: ...

    async def resume_session(self, session_id: str) -> Any: ...

    async def delete_session(self, session_id: str) -> Any: ...

    async def get_session(self, session_id: str) -> Any: ...

    async def list_all_sessions(
        self, *, include_archived: bool = False, search: str | None = None
    ) -> list[dict[str, Any]]: ...
