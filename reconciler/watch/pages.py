"""The status page of ``watch``: ``/``, ``/sessions/NAME``, ``/history``, ``/status.json``,
``/status.schema.json`` and ``/badge.svg``, added to the server of ``/metrics``.

Read-only views of a :class:`~reconciler.watch.board.Board`, rendered on the server with
Jinja2 (autoescaped) from the templates beside this module: no script, no external
asset (it works offline and in an air-gapped cluster), one small inline script that
reloads the page (a checkbox turns it off). Filters
are query parameters (``?q=&state=&tag=``), so a refresh keeps them and a filtered view
is a link. Every answer forbids caching, framing and any other script
(Content-Security-Policy).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from reconciler.watch.board import PAGE_STATES, Board, Health, SessionView

__all__ = ["BADGES", "MAX_ROWS", "add_pages", "badge", "page_routes"]

_TEMPLATES = resources.files("reconciler.watch") / "templates"
# The one script: reload every refresh_s seconds unless the reader turned it off (the
# checkbox; WCAG 2.2.1) or is typing in the filters. The policy allows it by its hash.
_REFRESH_JS = (_TEMPLATES / "refresh.js").read_text("utf-8")
_REFRESH_HASH = base64.b64encode(hashlib.sha256(_REFRESH_JS.encode()).digest()).decode()
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        f"default-src 'none'; script-src 'sha256-{_REFRESH_HASH}'; style-src 'unsafe-inline'; "
        "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# The badge's right half by health (shields.io's colours): the text, the colour.
BADGES: Mapping[Health, tuple[str, str]] = {
    "unknown": ("unknown", "#9f9f9f"),
    "in-sync": ("in sync", "#2e7d32"),
    "out-of-sync": ("{n} drifted", "#b35900"),
    "failing": ("failing", "#c62828"),
}
_CAUSES = {"manifest": "the manifests", "drift": "the hub"}
# Rows one page lists (a filter narrows a larger project); the counts cover them all.
MAX_ROWS = 1000


def _isotime(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _show(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _cause(change: Mapping[str, Any], session: SessionView) -> str:
    """Who changed a field: the plan's cause when it records one, else the session's state."""
    cause = change.get("cause")
    if cause in _CAUSES:
        return _CAUSES[str(cause)]
    return {"pending": "the manifests", "drifted": "the hub"}.get(session.state, "unknown")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reconciler.watch", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["isotime"] = _isotime
    env.filters["show"] = _show
    env.globals["cause"] = _cause
    env.globals["refresh_script"] = Markup(_REFRESH_JS)
    return env


def badge(board: Board) -> tuple[str, str]:
    """The badge's message and colour."""
    health = board.health
    text, color = BADGES[health]
    if health == "out-of-sync":
        counts = board.counts()
        text = text.format(n=counts["pending"] + counts["drifted"] + counts["refused"])
    return text, color


def _text_width(text: str) -> int:
    # Verdana 11 px, as shields.io measures: about 7 px a character, and padding.
    return 10 + 7 * len(text)


def page_routes(board: Board, *, refresh_s: int, hub_url: str | None = None) -> list[Route]:
    """The routes of the module doc, reading ``board`` at each request."""
    env = _environment()

    def html(template: str, status: int = 200, **values: Any) -> HTMLResponse:
        text = env.get_template(template).render(board=board, refresh_s=refresh_s, **values)
        return HTMLResponse(text, status_code=status, headers=_HEADERS)

    async def index(request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        state = request.query_params.get("state", "")
        tag = request.query_params.get("tag", "")
        sessions = list(board.sessions.values())
        rows = [
            s
            for s in sessions
            if (not state or s.state == state)
            and (not tag or tag in s.tags)
            and (not q or q.lower() in f"{s.name} {s.source or ''}".lower())
        ]
        return html(
            "index.html",
            page="index",
            last=board.last,
            counts=board.counts(),
            rows=rows[:MAX_ROWS],
            matched=len(rows),
            total=len(sessions),
            q=q,
            states=[s for s in PAGE_STATES if s != "unmanaged"],
            selected_state=state,
            tags=sorted({t for s in sessions for t in s.tags}),
            selected_tag=tag,
        )

    async def session(request: Request) -> Response:
        name = request.path_params["name"]
        view = board.sessions.get(name)
        if view is None:
            return html("notfound.html", 404, page="session", name=name)
        events = list(reversed(board.session_history.get(name, ())))
        return html("session.html", page="session", s=view, events=events, hub_url=hub_url)

    async def history(request: Request) -> Response:
        entries = list(reversed(board.history))
        return html("history.html", page="history", entries=entries, limit=board.history.maxlen)

    async def status_json(request: Request) -> Response:
        return JSONResponse(board.to_dict(), headers=_HEADERS)

    async def status_schema(request: Request) -> Response:
        schema = resources.files("reconciler") / "schemas" / "status.schema.json"
        return Response(
            schema.read_text("utf-8"), media_type="application/schema+json", headers=_HEADERS
        )

    async def badge_svg(request: Request) -> Response:
        message, color = badge(board)
        label = "reconciler"
        text = env.get_template("badge.svg").render(
            label=label,
            message=message,
            color=color,
            left=_text_width(label),
            right=_text_width(message),
        )
        return Response(text, media_type="image/svg+xml", headers=_HEADERS)

    return [
        Route("/", index),
        Route("/sessions/{name}", session),
        Route("/history", history),
        Route("/status.json", status_json),
        Route("/status.schema.json", status_schema),
        Route("/badge.svg", badge_svg),
    ]


def add_pages(app: Starlette, board: Board, *, refresh_s: int, hub_url: str | None = None) -> None:
    """Add the page routes to ``app`` (the server of ``/metrics`` and ``/healthz``)."""
    app.router.routes.extend(page_routes(board, refresh_s=refresh_s, hub_url=hub_url))
