"""Idempotent create: never two sessions for one marker in one apply.

``POST /hub/session`` is never retried blindly. When its outcome is unknown (dropped
connection, timeout, 5xx, 429, an unreadable answer) the session may or may not exist,
so the marker tag settles it before anything else: a session carrying it is adopted.
When none does, what comes next depends on whether the hub may still be making it:

- It never answered (a timeout, a dropped connection), a gateway stopped waiting for
  it (504, Cloudflare's 524, a proxy's 598 or 599), or a gateway answered for it (502,
  Cloudflare's 520: the hub's answer was bad or cut, after the request may have reached
  it): the hub may still be at work, or done while its list does not show the session
  yet, and a session found after the look would be a twin of a create sent again (a
  hub slower than ``--timeout`` got one per attempt). The create is not sent again: the
  action fails, saying so, and the next apply finds the session by its marker when the
  hub made it, or creates it.
- The hub itself answered (a 500, 503 or 429, an answer it could not finish): it is
  done with the request, so the look is the truth, and the create is sent again, at
  most ``retries`` times.

If the settlement itself cannot be made, the action fails rather than risk a duplicate;
the next plan sees whatever exists and carries on from there. A connection that could
not be made (``ConnectFailedError``) sent nothing: the create failed, definitely, and is
safe to repeat on the next apply; nothing needs settling.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.applier.protocol import ApplyClient
from reconciler.errors import (
    ApiError,
    ConnectFailedError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from reconciler.model import ARCHIVED_LIKE

__all__ = [
    "UNKNOWN_OUTCOME",
    "CreateInDoubtError",
    "CreateOutcome",
    "SettlementError",
    "create_idempotent",
    "find_by_marker",
]

log = logging.getLogger(__name__)

# Errors after which a write may or may not have taken effect.
UNKNOWN_OUTCOME: tuple[type[ApiError], ...] = (
    TransportError,
    ServerError,
    RateLimitedError,
    ProtocolError,
)


class SettlementError(ApiError):
    """A create's outcome is unknown and listing by its marker failed too."""


class CreateInDoubtError(TransportError):
    """A create the hub never answered (or a gateway gave up on) and no session carries
    its marker yet: the hub may still make it, so it is not sent again."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.may_have_taken_effect = True


# A gateway answering for the hub, which may have had the request: 504, the 524 of
# Cloudflare and the 598/599 of some proxies (their network read timeouts: the hub may
# still be at work), and 502 and Cloudflare's 520 (the hub's answer was bad or cut: a
# proxy that forwarded the request says 502 all the same, and a list that lags behind
# the create would hide the session from the look).
GATEWAY_TIMEOUTS = frozenset({502, 504, 520, 524, 598, 599})


def _may_still_be_made(exc: ApiError) -> bool:
    """Whether the hub may still be carrying out the request ``exc`` ended: no answer
    came (a timeout, a dropped connection; ``ConnectFailedError`` never gets here), or a
    gateway gave up waiting for it (``GATEWAY_TIMEOUTS``)."""
    return (isinstance(exc, TransportError) and exc.status is None) or (
        exc.status in GATEWAY_TIMEOUTS
    )


@dataclass(frozen=True)
class CreateOutcome:
    session_id: str
    adopted: bool  # found by its marker after an unknown outcome
    attempts: int  # create requests sent


def _carries(item: Mapping[str, Any], marker_tag: str) -> bool:
    tags = item.get("tags")
    return isinstance(tags, list) and marker_tag in tags


def _pick(items: list[dict[str, Any]], marker_tag: str, exclude: str | None) -> str | None:
    # Archived sessions with this marker are older lineage (a re-creation), not ours.
    found = [
        i
        for i in items
        if _carries(i, marker_tag)
        and i.get("sessionId") != exclude
        and isinstance(i.get("sessionId"), str)
        and i.get("status") not in ARCHIVED_LIKE
    ]
    if not found:
        return None
    # Oldest first: if two exist (a concurrent apply), adopt the one that came first.
    found.sort(key=lambda i: (str(i.get("createdAt") or ""), str(i["sessionId"])))
    return str(found[0]["sessionId"])


async def find_by_marker(
    client: ApplyClient, marker_tag: str, *, full_list: bool = True, exclude: str | None = None
) -> str | None:
    """Id of the non-archived session carrying exactly ``marker_tag``, or None.

    Searches first (cheap, and finds a lost-response create at once). Before answering
    "absent", it reads the full listing as well when ``full_list``: the API documents
    ``search`` only as a "search query", and a false "absent" would mean a duplicate.
    """
    try:
        searched = await client.list_all_sessions(include_archived=True, search=marker_tag)
        hit = _pick(searched, marker_tag, exclude)
        if hit is None and full_list:
            everything = await client.list_all_sessions(include_archived=True)
            hit = _pick(everything, marker_tag, exclude)
    except ApiError as exc:
        raise SettlementError(
            f"create outcome unknown and listing by its marker failed ({exc}); "
            "not repeated, to avoid a duplicate"
        ) from exc
    return hit


def _session_id(answer: Any) -> str | None:
    if isinstance(answer, Mapping):
        sid = answer.get("sessionId")
        if isinstance(sid, str) and sid:
            return sid
    return None


async def create_idempotent(
    client: ApplyClient,
    body: dict[str, Any],
    marker_tag: str | None,
    *,
    retries: int = 2,
    full_list: bool = True,
    replaces: str | None = None,
) -> CreateOutcome:
    """Create the session of ``body`` exactly once, or adopt the one a lost answer made.

    Raises the create's own error when it is definite (400, 401, 409...), when the
    outcome stays unknown after ``retries`` repeats, or ``SettlementError`` when the
    marker check fails. Without a marker tag there is nothing to settle by, so an
    unknown outcome is an error at once. ``replaces`` (the session a replacement
    supersedes) is never adopted.
    """
    attempts = 0
    while True:
        attempts += 1
        try:
            answer = await client.create_session(body)
        except ConnectFailedError:
            raise  # nothing was sent: not an unknown outcome
        except UNKNOWN_OUTCOME as exc:
            if marker_tag is None:
                raise
            log.info("create outcome unknown (%s); settling by marker", type(exc).__name__)
            found = await find_by_marker(client, marker_tag, full_list=full_list, exclude=replaces)
            if found is not None:
                return CreateOutcome(found, adopted=True, attempts=attempts)
            if _may_still_be_made(exc):
                raise CreateInDoubtError(
                    f"{exc}; no session carries its marker yet, and the hub may still make "
                    "it: not sent again (the next apply finds it by its marker, or creates it)"
                ) from exc
            if attempts > retries:
                raise
            continue
        sid = _session_id(answer)
        if sid is not None:
            return CreateOutcome(sid, adopted=False, attempts=attempts)
        # A 2xx without an id: it probably exists; settle exactly as for a lost answer.
        if marker_tag is not None:
            found = await find_by_marker(client, marker_tag, full_list=full_list, exclude=replaces)
            if found is not None:
                return CreateOutcome(found, adopted=True, attempts=attempts)
        raise ProtocolError(
            "create answered without a sessionId", method="POST", path="/hub/session"
        )
