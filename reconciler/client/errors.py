"""The one place where HTTP outcomes become the tool's error tree (``reconciler.errors``).

Every message is passed through ``redact`` so neither the token nor an ``env`` value
the run has sent can leak through an httpx exception text or a server body that echoes
a request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx

from reconciler.client.redact import redact
from reconciler.errors import (
    ApiError,
    BadRequestError,
    ConflictError,
    ConnectFailedError,
    ForbiddenError,
    HttpStatusError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnauthorizedError,
)

__all__ = ["error_from_exception", "error_from_response", "protocol_error"]

_BY_STATUS: dict[int, type[HttpStatusError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitedError,
}

_DEFAULT_MESSAGES: dict[type[HttpStatusError], str] = {
    BadRequestError: "the request was refused as invalid",
    UnauthorizedError: "unauthorized: the token is missing or unknown (AGENTUITY_SDK_KEY)",
    ForbiddenError: "forbidden: the token may not act in this organisation",
    NotFoundError: "not found",
    ConflictError: "conflict",
    RateLimitedError: "rate limited",
    ServerError: "server error",
    HttpStatusError: "unexpected HTTP status",
}

# What to check, said beside the server's own text (``main`` prints it as a hint).
_HINTS: dict[type[HttpStatusError], str] = {
    UnauthorizedError: "the token comes from AGENTUITY_SDK_KEY (else AGENTUITY_CLI_KEY)",
    ForbiddenError: "the organisation comes from --org, AGENTUITY_ORG_ID or the Project's orgId",
}


def _status_class(status: int) -> type[HttpStatusError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else HttpStatusError


def _server_fields(response: httpx.Response) -> tuple[str | None, str | None]:
    """The server's ``code`` and message: ``error`` (a string), else ``message``, else the
    raw text, as the official SDK reads them."""
    text = response.text if response.content else ""
    body: Any = None
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code") if isinstance(body.get("code"), str) else None
        for key in ("error", "message"):
            value = body.get(key)
            if isinstance(value, str) and value:
                # `error` is often a short name ("Not Found") with `message` the detail.
                detail = body.get("message")
                if key == "error" and isinstance(detail, str) and detail and detail != value:
                    return code, f"{value}: {detail}"
                return code, value
        return code, None
    # A body that is a JSON string, or a list of messages: shown decoded (one escaping
    # less for the masking to see through, and readable).
    if isinstance(body, str):
        return None, body.strip() or None
    if isinstance(body, list):
        parts = [_said(item) for item in body]
        said = "; ".join(p for p in parts if p)
        return None, said or text.strip() or None
    return None, text.strip() or None


def _said(item: Any) -> str:
    """One item of a list error body as text: a string, else its ``error``/``message``,
    else the item as JSON."""
    if isinstance(item, str):
        return item.strip()
    if isinstance(item, dict):
        for key in ("error", "message"):
            if isinstance(item.get(key), str):
                return str(item[key]).strip()
    return json.dumps(item, ensure_ascii=False)


def error_from_response(
    method: str, path: str, response: httpx.Response, *, secrets: Iterable[str | None]
) -> HttpStatusError:
    """Translate a non-2xx response."""
    status = response.status_code
    cls = _status_class(status)
    code, server_message = _server_fields(response)
    safe_message = redact(server_message, secrets) if server_message else None
    code = redact(code, secrets, limit=80) if code else None
    error = cls(
        safe_message or _DEFAULT_MESSAGES[cls],
        method=method,
        path=path,
        status=status,
        code=code,
        server_message=safe_message,
    )
    hint = _HINTS.get(cls)
    if hint is not None and safe_message:  # the server's text took the place of ours
        error.add_note(hint)
    if cls is NotFoundError and method == "GET" and path.endswith("/hub/sessions"):
        # Every hub lists its sessions: no list here is a URL that is not a hub's.
        error.add_note(_NO_HUB_HERE)
    return error


# What a 404 of the list of sessions, which every hub answers, means.
_NO_HUB_HERE = (
    "no hub answers at this URL: --api-url (CODER_API_URL) is the URL the hub's /hub/... "
    "paths hang from; an Agentuity service URL goes to --coder-url (AGENTUITY_CODER_URL), "
    "which adds /api"
)


def error_from_exception(
    method: str, path: str, exc: httpx.HTTPError, *, secrets: Iterable[str | None]
) -> ApiError:
    """Translate an httpx exception raised while sending or receiving."""
    detail = redact(str(exc), secrets, limit=200) or type(exc).__name__
    # No connection, so nothing of the request left: safe to repeat, never "unknown".
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectFailedError(
            "hub unreachable: timed out connecting; nothing was sent", method=method, path=path
        )
    if isinstance(exc, httpx.ProxyError):  # the proxy would not carry it: nothing sent
        return ConnectFailedError(
            f"hub unreachable: the proxy refused the connection ({detail}); nothing was sent",
            method=method,
            path=path,
        )
    if isinstance(exc, httpx.ConnectError):
        return ConnectFailedError(
            f"hub unreachable: cannot connect ({detail}); nothing was sent",
            method=method,
            path=path,
        )
    if isinstance(exc, httpx.TimeoutException):
        what = {
            httpx.ReadTimeout: "timed out waiting for the response",
            httpx.WriteTimeout: "timed out sending the request",
            httpx.PoolTimeout: "timed out waiting for a free connection",
        }.get(type(exc), "timed out")
        return TransportError(what, method=method, path=path)
    if isinstance(exc, httpx.RemoteProtocolError):
        return TransportError(
            f"connection dropped before a complete response: {detail}", method=method, path=path
        )
    if isinstance(exc, httpx.DecodingError):
        return ProtocolError(f"undecodable response body: {detail}", method=method, path=path)
    return TransportError(f"{type(exc).__name__}: {detail}", method=method, path=path)


def protocol_error(
    method: str, path: str, status: int | None, message: str, *, secrets: Iterable[str | None]
) -> ProtocolError:
    return ProtocolError(redact(message, secrets), method=method, path=path, status=status)
