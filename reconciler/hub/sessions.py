"""Handlers for the session endpoints: create, list, get, update, archive, resume, delete."""

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
    read_json,
    session_id_of,
)
from reconciler.hub.validation import parse_create, parse_update

__all__ = [
    "archive_session",
    "create_session",
    "delete_session",
    "get_session",
    "list_sessions",
    "resume_session",
    "update_session",
]


async def create_session(request: Request) -> JSONResponse:
    who = principal(request)
    new = parse_create(await read_json(request))
    record = store_of(request).create_session(who.org_id, who.user_id, new)
    return JSONResponse(serialize.created_body(record), status_code=201)


async def list_sessions(request: Request) -> JSONResponse:
    who = principal(request)
    limit = query_int(request, "limit", default=DEFAULT_LIMIT, minimum=1, cap=MAX_LIMIT)
    offset = query_int(request, "offset", default=0, minimum=0)
    records, total = store_of(request).list_sessions(
        who.org_id,
        search=query_str(request, "search"),
        include_archived=query_bool(request, "includeArchived"),
        limit=limit or DEFAULT_LIMIT,
        offset=offset or 0,
    )
    items = [serialize.list_item(record) for record in records]
    return JSONResponse({"sessions": {"websocket": items, "sandbox": []}, "total": total})


async def get_session(request: Request) -> JSONResponse:
    who = principal(request)
    record = store_of(request).get_session(who.org_id, session_id_of(request))
    return JSONResponse(serialize.session_body(record))


async def update_session(request: Request) -> JSONResponse:
    who = principal(request)
    changes = parse_update(await read_json(request))
    record = store_of(request).update_session(who.org_id, session_id_of(request), changes)
    return JSONResponse(serialize.update_body(record))


async def archive_session(request: Request) -> JSONResponse:
    who = principal(request)
    record = store_of(request).archive_session(who.org_id, session_id_of(request))
    return JSONResponse({"sessionId": record.session_id, "status": record.status})


async def resume_session(request: Request) -> JSONResponse:
    who = principal(request)
    record = store_of(request).resume_session(who.org_id, session_id_of(request))
    return JSONResponse({"sessionId": record.session_id, "status": record.status})


async def delete_session(request: Request) -> JSONResponse:
    who = principal(request)
    session_id = session_id_of(request)
    store_of(request).delete_session(who.org_id, session_id)
    return JSONResponse({"sessionId": session_id, "status": "deleted"})
