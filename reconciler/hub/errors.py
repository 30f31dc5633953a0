"""The one exception a hub handler raises to answer an error, and its JSON body."""

from __future__ import annotations

from starlette.responses import JSONResponse

__all__ = ["HubError", "LostResponse", "error_response"]


class HubError(Exception):
    """An error answer: ``{"error", "message", "code"}`` with an HTTP status.

    ``error`` carries the reason, like ``message``: the official clients show ``error``
    (when it is a string) before ``message``, so a reason phrase there ("Bad Request")
    would hide why the request failed.
    """

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message)

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


def error_response(status: int, code: str, message: str) -> JSONResponse:
    body = {"error": message, "message": message, "code": code}
    return JSONResponse(body, status_code=status)
