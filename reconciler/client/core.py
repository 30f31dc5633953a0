"""``CoderClient``: every endpoint of the Coder API over one httpx connection pool.

The only code in the package that speaks HTTP to a hub. Each method sends one
request (``list_all_sessions`` several), returns the parsed JSON with unknown fields
kept, and raises the error tree of ``reconciler.errors`` for everything else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote
from urllib.request import getproxies

import httpx

from reconciler import __version__
from reconciler.apifacts import HEADER_VALUE
from reconciler.client import paging, shapes
from reconciler.client.errors import error_from_exception, error_from_response, protocol_error
from reconciler.client.redact import redact, redact_secret
from reconciler.client.retry import RetryPolicy, is_retryable_exception, parse_retry_after
from reconciler.client.timeouts import Timeouts
from reconciler.errors import (
    ApiError,
    ConnectFailedError,
    NotFoundError,
    TransportError,
    UsageError,
)
from reconciler.masking import secret_values

__all__ = ["LIST_CONCURRENCY", "POOL_LIMITS", "USER_AGENT", "CoderClient"]

T = TypeVar("T")
log = logging.getLogger("reconciler.client")

USER_AGENT = f"coder-reconciler/{__version__}"
# The most pages fetched at once after the first (a hub far away gets that many; one
# close by fewer: ``paging.fan_out``). High enough that the rest of a listing of up to
# 3,300 sessions (pages of 100) goes out in one round trip, so a listing costs two
# round trips instead of 1 + ceil(pages / concurrency); low enough to stay a polite
# burst of connections to one host.
LIST_CONCURRENCY = 32
# httpx's own transport, with every connection a burst opens kept for the next one:
# apply sends --parallelism requests at once and a listing LIST_CONCURRENCY, and with
# httpx's default (20 kept) each wave past 20 would pay new TCP and TLS handshakes.
# Idle connections go after 4 s, before the common 5 s keep-alive of servers (uvicorn's
# included), so a request rarely meets a connection the server is just closing.
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=4.0)
# Visible ASCII only: anything else cannot travel in a header, and httpx would
# quote the offending value (the token) in its exception text.
_TOKEN_RE = re.compile(HEADER_VALUE)  # fullmatch: visible ASCII only

# Failures after which a request cannot have reached the hub, beside a connection never
# made (``ConnectFailedError``, which ``error_from_exception`` decides): none came free
# in the pool, or it was refused before a byte left (an illegal header).
_NOTHING_SENT = (httpx.PoolTimeout, httpx.LocalProtocolError)
# Answers after which the request may have been carried out all the same.
_MAYBE_DONE = frozenset({500, 502, 504})
# 4xx answers about this attempt only (a timeout, a rate limit) or about a state that
# an earlier attempt may have moved (409): they say nothing of the earlier attempt.
_THIS_ATTEMPT = frozenset({408, 409, 429})

# The proxies httpx takes from the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY); the
# other *_PROXY variables (NO_PROXY, a tool's own) never route its requests.
_PROXY_SCHEMES = ("http", "https", "all")


def _tls_verify(base_url: str) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for a client of ``base_url``: its default (the CA bundle,
    loaded when the client is made: 15 ms of CPU) unless no TLS connection can be made.
    That is a plain ``http://`` hub with no proxy in the environment (one could be an
    ``https://`` one): the client follows no redirect and sends every request to the
    base URL. Even then the context returned verifies; it trusts no certificate, so a
    TLS connection it were ever asked for would fail, never go unchecked."""
    proxies = getproxies()  # what httpx reads: only these schemes' proxies are used
    if httpx.URL(base_url).scheme == "http" and not any(map(proxies.get, _PROXY_SCHEMES)):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return True


Sleep = Callable[[float], Awaitable[Any]]
Clock = Callable[[], float]
Params = Mapping[str, str | int | None]


class CoderClient:
    """Async client for the Coder API. Use as ``async with CoderClient(...) as client``.

    ``base_url`` is the API host (``GET /coder`` lives there) and ``hub_prefix`` the
    path of the hub under it (``/hub``, or ``/api/hub`` for a Coder service URL).
    ``org_id`` is sent both as ``?orgId=`` and ``x-agentuity-orgid``. ``transport``
    replaces the network (an in-process hub, ``httpx.MockTransport``); the client
    closes it. ``sleep`` and ``clock`` are injectable so tests never really wait.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        org_id: str | None = None,
        hub_prefix: str = "/hub",
        transport: httpx.AsyncBaseTransport | None = None,
        timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen value
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen value
        page_size: int = 100,
        list_concurrency: int = LIST_CONCURRENCY,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        if token is not None and not _TOKEN_RE.fullmatch(token):
            # Never echo the value: it is a secret even when malformed.
            raise UsageError(
                "the API token contains whitespace or characters not allowed in an HTTP "
                "header (a trailing newline, from a file it was read from?)"
            )
        if org_id is not None and not _TOKEN_RE.fullmatch(org_id):
            # It travels in a header too (x-agentuity-orgid): httpx would fail to encode it.
            raise UsageError(
                "the organisation id (--org, AGENTUITY_ORG_ID or the Project's orgId) holds "
                "whitespace or characters not allowed in an HTTP header"
            )
        if page_size < 1 or list_concurrency < 1:
            raise ValueError("page_size and list_concurrency must be >= 1")
        self.base_url = base_url.rstrip("/")
        # The endpoint as errors name it: no user or password a URL might carry.
        self._where = str(httpx.URL(self.base_url).copy_with(username=None, password=None))
        self.hub_prefix = "/" + hub_prefix.strip("/") if hub_prefix.strip("/") else ""
        self.org_id = org_id
        self.retry = retry
        self.page_size = page_size
        self.list_concurrency = list_concurrency
        self.request_count = 0
        # httpx's own transport loads its network backend at the first request; a
        # transport given here (the embedded hub, a test's) never does.
        self._backend_loaded = transport is not None
        self._token = token
        # What error texts are scrubbed of: the token, and every env value sent so far.
        self._secrets: set[str] = {token} if token else set()
        self._sleep = sleep
        self._clock = clock
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if org_id:
            headers["x-agentuity-orgid"] = org_id
        try:
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                headers=headers,
                timeout=timeouts.to_httpx(),
                # Limits, not a transport of our own: httpx then also mounts the proxies
                # the environment names (*_PROXY), with the same limits.
                limits=POOL_LIMITS,
                transport=transport,
                follow_redirects=False,
                verify=_tls_verify(self.base_url),
            )
        except (OSError, ssl.SSLError) as exc:  # the trust store, loaded here
            raise UsageError(
                "cannot load the certificates to verify the hub's TLS with "
                f"(SSL_CERT_FILE or SSL_CERT_DIR, when set): {exc}"
            ) from exc

    def __repr__(self) -> str:
        return (
            f"CoderClient(base_url={self.base_url!r}, hub_prefix={self.hub_prefix!r}, "
            f"org_id={self.org_id!r}, token={redact_secret(self._token)})"
        )

    async def __aenter__(self) -> CoderClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- endpoints ---------------------------------------------------------------------

    async def discover(self) -> dict[str, Any]:
        """``GET /coder``: ``{"url": ...}`` (trailing ``/`` stripped)."""
        return await self._call("GET", "/coder", shapes.check_discover)

    async def create_session(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /hub/session``. Never retried: any failure (a dropped connection
        included, as ``TransportError``) surfaces for the caller to settle."""
        return await self._call(
            "POST",
            self._hub("/session"),
            lambda d: shapes.require_str(shapes.check_object(d), "sessionId"),
            json_body=dict(body),
            retryable=False,
        )

    async def list_sessions(
        self,
        *,
        search: str | None = None,
        include_archived: bool = False,
        limit: int | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        """``GET /hub/sessions``: one page, ``sessions.websocket``/``sandbox`` always present."""
        params: dict[str, str | int | None] = {
            "search": search,
            "includeArchived": "true" if include_archived else None,
            "limit": limit,
            "offset": offset,
        }
        return await self._call(
            "GET", self._hub("/sessions"), shapes.check_sessions_page, params=params
        )

    async def list_all_sessions(
        self,
        *,
        include_archived: bool = False,
        search: str | None = None,
        on_page: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Every websocket session of every page, de-duplicated by ``sessionId``.

        Pages after the first are fetched concurrently, as many at a time as the
        first page's round trip calls for and at most ``list_concurrency`` (from a hub
        far away, every remaining page of up to 3,300 sessions at once);
        see ``reconciler.client.paging`` for how a listing changing underneath is handled.
        ``on_page`` sees each page's items as it arrives (while later pages are still on
        their way), before de-duplication: a caller can start its own work on them.
        """

        def seen(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            if on_page is not None:
                on_page(items)
            return items

        return await self._collect(seen, paging.session_id, include_archived, search)

    async def list_all_groups(
        self, *, include_archived: bool = False, search: str | None = None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``list_all_sessions``, and every page's sandbox entries beside it (each
        de-duplicated by ``sessionId``): the whole listing, as ``sessions list --all``
        shows it."""
        sandbox: dict[str, dict[str, Any]] = {}

        async def fetch(offset: int, limit: int) -> paging.Page[dict[str, Any]]:
            page = await self.list_sessions(
                search=search, include_archived=include_archived, limit=limit, offset=offset
            )
            for entry in page["sessions"]["sandbox"]:
                sandbox[paging.session_id(entry)] = entry
            return shapes.session_items(page), shapes.page_total(page)

        await self._load_backend()
        items = await paging.collect_all(
            fetch,
            key=paging.session_id,
            page_size=self.page_size,
            concurrency=self.list_concurrency,
        )
        return items, list(sandbox.values())

    async def list_all_converted(
        self,
        convert: Callable[[dict[str, Any]], T],
        key: Callable[[T], str],
        *,
        include_archived: bool = False,
        search: str | None = None,
    ) -> list[T]:
        """``list_all_sessions``, each item converted as soon as its page arrives.

        Only the converted values are kept (de-duplicated by ``key``, which must give the
        item's sessionId), so a large listing holds what the caller needs of each item,
        not every field the service sends; the conversion overlaps later pages.
        """

        def converted(items: list[dict[str, Any]]) -> list[T]:
            return [convert(item) for item in items]

        return await self._collect(converted, key, include_archived, search)

    async def _collect(
        self,
        convert_page: Callable[[list[dict[str, Any]]], list[T]],
        key: Callable[[T], str],
        include_archived: bool,
        search: str | None,
    ) -> list[T]:
        async def fetch(offset: int, limit: int) -> paging.Page[T]:
            page = await self.list_sessions(
                search=search, include_archived=include_archived, limit=limit, offset=offset
            )
            return convert_page(shapes.session_items(page)), shapes.page_total(page)

        await self._load_backend()
        return await paging.collect_all(
            fetch, key=key, page_size=self.page_size, concurrency=self.list_concurrency
        )

    async def _load_backend(self) -> None:
        """Load what httpx's own transport loads at its first request (anyio's asyncio
        backend: about 12 ms of CPU), before a listing's first page: the fan-out reads
        that page's CPU as what a page costs (``paging.fan_out``), and a far hub's first
        listing in a process got 8 pages in flight instead of 32. Nothing for a
        transport given to the client, which never loads it."""
        if not self._backend_loaded:
            self._backend_loaded = True
            import anyio.lowlevel

            await anyio.lowlevel.checkpoint()

    async def get_session(self, session_id: str) -> dict[str, Any]:
        """``GET /hub/session/{id}``: the full session (task, env, metadata included)."""
        return await self._call("GET", self._session(session_id), _session_object)

    async def update_session(self, session_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``PATCH /hub/session/{id}`` with any of label, agent, visibility, tags, skills."""
        return await self._call(
            "PATCH", self._session(session_id), shapes.check_object, json_body=dict(body)
        )

    async def archive_session(self, session_id: str) -> dict[str, Any]:
        """``POST /hub/session/{id}/archive``."""
        return await self._lifecycle("POST", self._session(session_id, "/archive"), session_id)

    async def resume_session(self, session_id: str) -> dict[str, Any]:
        """``POST /hub/session/{id}/resume``."""
        return await self._lifecycle("POST", self._session(session_id, "/resume"), session_id)

    async def delete_session(self, session_id: str) -> dict[str, Any]:
        """``DELETE /hub/session/{id}``. A retry answered 404 after an attempt whose
        outcome is unknown (a dropped response) is success: the session is gone, most
        likely by that attempt."""
        try:
            return await self._lifecycle("DELETE", self._session(session_id), session_id)
        except NotFoundError as exc:
            if not exc.after_unknown_outcome:
                raise
            log.info("DELETE %s: gone on retry; an earlier attempt's response was lost", session_id)
            return {"sessionId": session_id, "status": "deleted"}  # as the answer says

    async def get_loop(self, session_id: str) -> dict[str, Any]:
        """``GET /hub/session/{id}/loop``: ``{sessionId, workflowMode, loop}``, loop maybe null."""
        return await self._call("GET", self._session(session_id, "/loop"), shapes.check_object)

    async def get_replay(self, session_id: str) -> dict[str, Any]:
        """``GET /hub/session/{id}/replay``: ``entries`` always present."""
        return await self._call(
            "GET",
            self._session(session_id, "/replay"),
            lambda d: shapes.check_list_field(d, "entries"),
        )

    async def list_participants(
        self, session_id: str, *, limit: int | None = None, include_disconnected: bool = False
    ) -> dict[str, Any]:
        """``GET /hub/session/{id}/participants``: ``participants`` always present."""
        params: dict[str, str | int | None] = {
            "limit": limit,
            "includeDisconnected": "true" if include_disconnected else None,
        }
        return await self._call(
            "GET",
            self._session(session_id, "/participants"),
            lambda d: shapes.check_list_field(d, "participants"),
            params=params,
        )

    async def list_events(
        self, session_id: str, *, limit: int | None = None, before_id: int | None = None
    ) -> dict[str, Any]:
        """``GET /hub/session/{id}/events/history``: ``events`` always present."""
        return await self._call(
            "GET",
            self._session(session_id, "/events/history"),
            lambda d: shapes.check_list_field(d, "events"),
            params={"limit": limit, "beforeId": before_id},
        )

    async def list_users(
        self, *, search: str | None = None, limit: int | None = None, offset: int | None = None
    ) -> dict[str, Any]:
        """``GET /hub/users``: ``{"users": [...], ...}`` (a bare array is wrapped)."""
        return await self._call(
            "GET",
            self._hub("/users"),
            shapes.check_users,
            params={"search": search, "limit": limit, "offset": offset},
        )

    # -- plumbing ----------------------------------------------------------------------

    def _hub(self, path: str) -> str:
        return self.hub_prefix + path

    def _session(self, session_id: str, suffix: str = "") -> str:
        if not session_id:
            raise UsageError("a session id is required")
        # Quoted whole so an id can never reach another route ("../users").
        return self._hub(f"/session/{quote(session_id, safe='')}{suffix}")

    async def _lifecycle(self, method: str, path: str, session_id: str) -> dict[str, Any]:
        def check(data: Any) -> dict[str, Any]:
            # An empty 2xx body (204) is success; say which session it was.
            return {"sessionId": session_id} if data is None else shapes.check_object(data)

        return await self._call(method, path, check)

    async def _call(
        self,
        method: str,
        path: str,
        check: Callable[[Any], dict[str, Any]],
        *,
        params: Params | None = None,
        json_body: Any = None,
        retryable: bool = True,
    ) -> dict[str, Any]:
        response = await self._send(
            method, path, params=params, json_body=json_body, retryable=retryable
        )
        try:
            data = self._decode(method, path, response)
            try:
                return check(data)
            except shapes.ShapeError as exc:
                raise protocol_error(
                    method, path, response.status_code, str(exc), secrets=self._secrets
                ) from None
        except ApiError as exc:  # a 2xx we cannot read: the hub did it
            exc.may_have_taken_effect = True
            raise

    def _decode(self, method: str, path: str, response: httpx.Response) -> Any:
        if not response.content.strip():
            return None
        try:
            return json.loads(response.content)
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise protocol_error(
                method,
                path,
                response.status_code,
                f"response is not JSON ({kind})",
                secrets=self._secrets,
            ) from None

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None,
        json_body: Any,
        retryable: bool,
    ) -> httpx.Response:
        """Send with the retry policy; return a 2xx response or raise a translated error."""
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        self._secrets.update(secret_values(json_body))  # before sending: an answer may echo them
        if self.org_id:
            query["orgId"] = self.org_id
        policy = self.retry
        started = self._clock()
        attempt = 0
        uncertain = False  # an earlier attempt may have taken effect
        while True:
            attempt += 1
            self.request_count += 1
            sent = self._clock()
            error: ApiError
            retry_after: float | None = None
            failure = ""  # what went wrong on the way (an exception's text)
            try:
                response = await self._http.request(method, path, params=query, json=json_body)
            except httpx.InvalidURL as exc:  # no URL can carry it (a query too long, say)
                raise UsageError(
                    f"{method} {path}: cannot be sent: {redact(str(exc), self._secrets)}"
                ) from None
            except httpx.HTTPError as exc:
                error = error_from_exception(method, path, exc, secrets=self._secrets)
                if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout):
                    # How long it waited, and what sets it (a slow hub, a large page).
                    error.add_note(
                        f"each request waits {self._http.timeout.read:g} s for its answer: "
                        "--timeout SECONDS (CODER_TIMEOUT) sets it"
                    )
                should_retry = is_retryable_exception(exc)
                # Sent, its answer lost (a reset, a read timeout): it may have taken effect.
                unsent = isinstance(error, ConnectFailedError) or isinstance(exc, _NOTHING_SENT)
                took_effect = not unsent
                failure = redact(str(exc), self._secrets, limit=200) or type(exc).__name__
                log.debug(
                    "%s %s -> %s after %.0f ms",
                    method,
                    path,
                    type(exc).__name__,
                    (self._clock() - sent) * 1000,
                )
            else:
                log.debug(
                    "%s %s -> %d in %.0f ms",
                    method,
                    path,
                    response.status_code,
                    (self._clock() - sent) * 1000,
                )
                if response.is_success:
                    return response
                error = error_from_response(method, path, response, secrets=self._secrets)
                should_retry = response.status_code in policy.statuses
                # A gateway's 502/504 or a 500 may follow work done; 429 and 503 refuse it.
                took_effect = response.status_code in _MAYBE_DONE
                retry_after = parse_retry_after(
                    response.headers.get("retry-after"), now=datetime.now(UTC)
                )
            unreachable = isinstance(error, ConnectFailedError)
            if uncertain and unreachable:
                # This attempt sent nothing, an earlier one may have been carried out:
                # the outcome is unknown, not "nothing was sent".
                error = TransportError(
                    f"an earlier attempt may have been carried out (no usable answer "
                    f"came), and the retry could not connect: {failure}",
                    method=method,
                    path=path,
                )
            if isinstance(error, TransportError) and error.status is None:
                # No answer at all (refused, timed out, dropped): which hub was asked,
                # with only a token set the default one.
                error.add_note(f"tried the hub at {self._where}")
            error.after_unknown_outcome = uncertain
            # A refusal of the request as such (400, 401, 403, 404, 413...) would have
            # met an earlier attempt of it too; a 409 (the state moved: maybe by that
            # attempt) and a 429 (this attempt only) say nothing of the earlier one.
            # Only the hub's own refusal (its error code): a gateway's 403 or 404 during
            # a deploy says nothing of what the hub did.
            refused = error.status is not None and 400 <= error.status < 500
            definite = refused and error.status not in _THIS_ATTEMPT and error.code is not None
            error.may_have_taken_effect = (uncertain and not definite) or took_effect
            if not (retryable and should_retry) or attempt >= policy.attempts:
                raise error
            delay = policy.backoff(attempt, retry_after)
            if self._clock() - started + delay > policy.total_seconds:
                log.info(
                    "%s %s: not retrying, the %.0f s budget would be exceeded",
                    method,
                    path,
                    policy.total_seconds,
                )
                raise error
            log.info(
                "%s %s failed (%s); retry %d/%d in %.2f s",
                method,
                path,
                error.status or "transport",
                attempt,
                policy.attempts - 1,
                delay,
            )
            uncertain = uncertain or took_effect
            await self._sleep(delay)


def _session_object(data: Any) -> dict[str, Any]:
    return shapes.require_str(shapes.check_object(data), "sessionId")
