"""Update, resume, archive and delete, each settled when its answer is lost.

The client already repeats these requests (they cannot duplicate anything). A repeat
after a lost answer can meet the effect of the first try: archiving an archived
session answers 409, deleting a deleted one 404. Those count as done. When the
outcome is still unknown after the client's repeats, one GET decides. A connection
that could not be made sent nothing: that failure is definite, no GET is needed.
"""

from __future__ import annotations

from typing import Any, Literal

from reconciler.applier.create import UNKNOWN_OUTCOME
from reconciler.applier.protocol import ApplyClient
from reconciler.errors import ApiError, ConflictError, ConnectFailedError, NotFoundError
from reconciler.model import ARCHIVED_LIKE

__all__ = ["LifecycleOutcome", "archive", "delete", "resume", "update"]

LifecycleOutcome = Literal["succeeded", "noop"]


async def _status(client: ApplyClient, session_id: str, outcome: ApiError) -> str | None:
    """The session's status now; None when it no longer exists. When it cannot be read
    (the hub still unreachable), ``outcome``, the change's own unknown outcome, is what
    the run reports, not the check's "nothing was sent"."""
    try:
        answer = await client.get_session(session_id)
    except NotFoundError:
        return None
    except ApiError:
        outcome.add_note("its status could not be read to tell whether it was made")
        raise outcome from None
    status = answer.get("status") if isinstance(answer, dict) else None
    return status if isinstance(status, str) else "unknown"


async def update(client: ApplyClient, session_id: str, body: dict[str, Any]) -> LifecycleOutcome:
    # PATCH sets absolute values: the client's repeats are the whole settlement.
    await client.update_session(session_id, body)
    return "succeeded"


async def archive(client: ApplyClient, session_id: str) -> LifecycleOutcome:
    try:
        await client.archive_session(session_id)
    except ConflictError as exc:
        if exc.code == "CODER_SESSION_ARCHIVED":
            return "noop"
        raise
    except ConnectFailedError:
        raise
    except UNKNOWN_OUTCOME as exc:
        if await _status(client, session_id, exc) in ARCHIVED_LIKE:
            return "succeeded"
        raise exc from None
    return "succeeded"


async def delete(client: ApplyClient, session_id: str) -> LifecycleOutcome:
    try:
        await client.delete_session(session_id)
    except NotFoundError:
        return "noop"
    except ConnectFailedError:
        raise
    except UNKNOWN_OUTCOME as exc:
        if await _status(client, session_id, exc) is None:
            return "succeeded"
        raise exc from None
    return "succeeded"


async def resume(client: ApplyClient, session_id: str) -> LifecycleOutcome:
    try:
        await client.resume_session(session_id)
    except ConnectFailedError:
        raise
    except UNKNOWN_OUTCOME as exc:
        status = await _status(client, session_id, exc)
        if status is not None and status != "paused" and status not in ARCHIVED_LIKE:
            return "succeeded"
        raise exc from None
    return "succeeded"
