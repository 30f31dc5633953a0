"""Handlers for what hangs off a session (loop, replay, participants, events) and users."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from reconciler.hub import serialize
from reconciler.hub.context import principal, store_of
from reconciler.hub.requests import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    query_bool,
    query_int,
    query_str,
    session_id_of,
)

__all__ = ["get_loop", "get_replay", "list_events", "list_participants", "list_users"]

PARTICIPANTS_DEFAULT_LIMIT = 100


async def get_loop(request: Request) -> JSONResponse:
    who = principal(request)
    record = store_of(request).get_session(who.org_id, session_id_of(request))
    return JSONResponse(serialize.loop_body(record))


async def get_replay(request: Request) -> JSONResponse:
    who = principal(request)
    session_id = session_id_of(request)
    events = store_of(request).all_events(who.org_id, session_id)
    return JSONResponse(serialize.replay_body(session_id, events))


async def list_participants(request: Request) -> JSONResponse:
    who = principal(request)
    session_id = session_id_of(request)
    limit = query_int(
        request, "limit", default=PARTICIPANTS_DEFAULT_LIMIT, minimum=1, cap=MAX_LIMIT
    )
    participants = store_of(request).list_participants(
        who.org_id,
        session_id,
        limit=limit or PARTICIPANTS_DEFAULT_LIMIT,
        include_disconnected=query_bool(request, "includeDisconnected"),
    )
    body = [serialize.participant_body(p) for p in participants]
    return JSONResponse({"sessionId": session_id, "participants": body})


async def list_events(request: Request) -> JSONResponse:
    """Newest first; pass the smallest id seen as ``beforeId`` for the next page."""
    who = principal(request)
    session_id = session_id_of(request)
    limit = query_int(request, "limit", default=DEFAULT_LIMIT, minimum=1, cap=MAX_LIMIT)
    before_id = query_int(request, "beforeId", default=None, minimum=0)
    events = store_of(request).list_events(
        who.org_id, session_id, limit=limit or DEFAULT_LIMIT, before_id=before_id
    )
    body = [serialize.event_body(event) for event in events]
    return JSONResponse({"sessionId": session_id, "events": body})


async def list_users(request: Request) -> JSONResponse:
    who = principal(request)
    limit = query_int(request, "limit", default=DEFAULT_LIMIT, minimum=1, cap=MAX_LIMIT)
    offset = query_int(request, "offset", default=0, minimum=0)
    users, total = store_of(request).list_users(
        who.org_id,
        search=query_str(request, "search"),
        limit=limit or DEFAULT_LIMIT,
        offset=offset or 0,
    )
    return JSONResponse(
        {
            "users": [serialize.user_body(user) for user in users],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )
