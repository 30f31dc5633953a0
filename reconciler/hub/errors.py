"""The one exception a hub handler raises to answer an error, and its JSON body."""

from __future__ import annotations

from starlette.responses import JSONResponse

__all__ = ["HubError", "LostResponse", "error_response"]


class HubError(Exception):
    """An error answer: ``{"error", "message", "code"}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, *, error: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.error = error or _DEFAULT_ERRORS.get(status, "Request failed")

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, error=self.error)

    @classmethod
    def bad_request(cls, message: str) -> HubError:
        return cls(400, "CODER_INVALID_REQUEST", message)

    @classmethod
    def not_found(cls, session_id: str) -> HubError:
        return cls(404, "CODER_SESSION_NOT_FOUND", f"session {session_id} not found")


class LostResponse(Exception):  # noqa: N818 - it is a signal, not an error of the caller
    """Raised after a request's effect committed and its response head went out.

    The fault knob ``lost_response_rate`` uses it: uvicorn closes the connection
    mid-response, and ``reconciler.connect.LocalHubTransport`` turns it into
    ``httpx.RemoteProtocolError``.
    """


_DEFAULT_ERRORS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def error_response(
    status: int, code: str, message: str, *, error: str | None = None
) -> JSONResponse:
    body = {
        "error": error or _DEFAULT_ERRORS.get(status, "Error"),
        "message": message,
        "code": code,
    }
    return JSONResponse(body, status_code=status)
