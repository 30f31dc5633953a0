"""The test-only admin route (``hub serve --admin``): state the API cannot set.

``POST /hub/session/{id}/_admin`` with any of ``status``, ``loopStatus``,
``loopIteration``, ``connectParticipant``, ``disconnectParticipants``; answers the
session's list item. Tests use it to pause a session or make one live.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from reconciler.hub import serialize
from reconciler.hub.context import principal, store_of
from reconciler.hub.requests import read_json
from reconciler.hub.validation import parse_admin

__all__ = ["admin_session"]


async def admin_session(request: Request) -> JSONResponse:
    who = principal(request)
    changes = parse_admin(await read_json(request))
    session_id = str(request.path_params["session_id"])
    record = store_of(request).admin_update(who.org_id, session_id, changes)
    return JSONResponse(serialize.list_item(record))
