"""What every handler needs from a request: who is asking, for which org, and its input."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from reconciler.apifacts import MAX_BODY_BYTES, MAX_BODY_DEPTH, body_depth
from reconciler.hub.config import TokenGrant
from reconciler.hub.errors import HubError

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_BODY_BYTES",
    "MAX_LIMIT",
    "Principal",
    "authenticate",
    "query_bool",
    "query_int",
    "query_str",
    "read_json",
    "session_id_of",
]

# SQLite integers are 64-bit; larger query numbers would overflow, not just miss.
_MAX_QUERY_INT = 2**62
ORG_HEADER = "x-agentuity-orgid"


@dataclass(frozen=True)
class Principal:
    """The token's user, acting in one org."""

    org_id: str
    user_id: str


def _find_grant(tokens: Mapping[str, TokenGrant], presented: str) -> TokenGrant | None:
    found = None
    candidate = presented.encode()
    # Compare against every token, in constant time each, so timing tells nothing
    # about which token (or how much of one) matched.
    for key, grant in tokens.items():
        if hmac.compare_digest(key.encode(), candidate):
            found = grant
    return found


def authenticate(request: Request, tokens: Mapping[str, TokenGrant]) -> Principal:
    """Bearer token -> Principal; 401 without a known token, 403 naming another org."""
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    grant = None
    if scheme.lower() == "bearer" and presented.strip():
        grant = _find_grant(tokens, presented.strip())
    if grant is None:
        raise HubError(
            401, "CODER_UNAUTHORIZED", "a valid API key is required (Authorization: Bearer ...)"
        )
    from_query = request.query_params.get("orgId") or None
    from_header = request.headers.get(ORG_HEADER) or None
    if from_query and from_header and from_query != from_header:
        raise HubError.bad_request(
            f"orgId {from_query!r} and {ORG_HEADER} {from_header!r} name different orgs"
        )
    requested = from_query or from_header
    if requested is None or requested == grant.org_id:
        return Principal(grant.org_id, grant.user_id)
    if grant.any_org:
        return Principal(requested, grant.user_id)
    raise HubError(403, "CODER_FORBIDDEN", f"this API key has no access to org {requested}")


async def read_json(request: Request) -> Any:
    """The body as JSON; 413 over ``MAX_BODY_BYTES`` (declared or actual), 400 when
    malformed or nested deeper than ``MAX_BODY_DEPTH``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HubError.bad_request("Content-Length must be a whole number")
        if int(declared) > MAX_BODY_BYTES:
            raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise HubError.bad_request("a JSON body is required")
    try:
        data = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
        # Lone surrogates (\ud800) parse but cannot be stored or answered as UTF-8.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise HubError.bad_request("malformed JSON body: nested too deeply") from None
    except (UnicodeError, ValueError) as exc:
        raise HubError.bad_request(f"malformed JSON body: {exc}") from None
    if body_depth(data) > MAX_BODY_DEPTH:
        raise HubError.bad_request(
            f"request body nested too deeply (more than {MAX_BODY_DEPTH} levels)"
        )
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _too_large() -> HubError:
    return HubError(413, "CODER_PAYLOAD_TOO_LARGE", f"request body exceeds {MAX_BODY_BYTES} bytes")


DEFAULT_LIMIT = 50  # every paged endpoint's default page
MAX_LIMIT = 500  # and its cap


def session_id_of(request: Request) -> str:
    """The ``{session_id}`` of the route."""
    return str(request.path_params["session_id"])


def query_str(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value else None


def query_int(
    request: Request, name: str, *, default: int | None, minimum: int, cap: int | None = None
) -> int | None:
    """A whole-number query parameter; values above ``cap`` are clamped, below are 400."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HubError.bad_request(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise HubError.bad_request(f"{name} must be >= {minimum}, got {value}")
    if value > _MAX_QUERY_INT:
        raise HubError.bad_request(f"{name} is too large: {value}")
    return min(value, cap) if cap is not None else value


def query_bool(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return False
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise HubError.bad_request(f"{name} must be true or false, got {raw!r}")
