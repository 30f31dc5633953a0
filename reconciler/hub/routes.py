"""The route table: every endpoint of the reference, mounted at /hub and /api/hub."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route, Router

from reconciler.hub import admin, session_data, sessions
from reconciler.hub.context import principal

__all__ = ["HUB_PREFIXES", "build_routes", "discover"]

# `/hub` is the reference's path; `/api/hub` is where the official SDK looks.
HUB_PREFIXES = ("/hub", "/api/hub")


async def discover(request: Request) -> JSONResponse:
    """``GET /coder``: this hub's own base URL (no trailing slash)."""
    principal(request)
    return JSONResponse({"url": str(request.base_url).rstrip("/")})


def _hub_routes(*, admin_enabled: bool) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/session", sessions.create_session, methods=["POST"]),
        Route("/sessions", sessions.list_sessions, methods=["GET"]),
        Route("/users", session_data.list_users, methods=["GET"]),
        Route("/session/{session_id}", sessions.get_session, methods=["GET"]),
        Route("/session/{session_id}", sessions.update_session, methods=["PATCH"]),
        Route("/session/{session_id}", sessions.delete_session, methods=["DELETE"]),
        Route("/session/{session_id}/archive", sessions.archive_session, methods=["POST"]),
        Route("/session/{session_id}/resume", sessions.resume_session, methods=["POST"]),
        Route("/session/{session_id}/loop", session_data.get_loop, methods=["GET"]),
        Route("/session/{session_id}/replay", session_data.get_replay, methods=["GET"]),
        Route(
            "/session/{session_id}/participants",
            session_data.list_participants,
            methods=["GET"],
        ),
        Route("/session/{session_id}/events/history", session_data.list_events, methods=["GET"]),
    ]
    if admin_enabled:
        routes.append(Route("/session/{session_id}/_admin", admin.admin_session, methods=["POST"]))
    return routes


def build_routes(*, admin_enabled: bool) -> list[BaseRoute]:
    routes: list[BaseRoute] = [Route("/coder", discover, methods=["GET"])]
    for prefix in HUB_PREFIXES:
        # No redirects for a trailing slash: `/hub/session/X/` is no route, a 404 like
        # any other (a redirect was answered before any token was checked).
        hub = Router(_hub_routes(admin_enabled=admin_enabled), redirect_slashes=False)
        routes.append(Mount(prefix, app=hub))
    return routes
