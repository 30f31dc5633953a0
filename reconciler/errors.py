"""The error tree of coder-reconciler, and the exit code each error maps to.

Every error the tool raises on purpose is a ``ReconcilerError``; a traceback reaches a
user only for a real bug. Third-party exceptions (httpx, yaml, jsonschema) are
translated into this tree in one place each.

    ReconcilerError                       exit 1
    ├── UsageError                        exit 64  bad flags, no hub configured, no token
    ├── ManifestError                     exit 65  one problem in a manifest (file:line:col)
    │   └── ManifestErrors                exit 65  several, reported together
    ├── UnsetEnvError                     exit 65  ${env:NAME} needed but unset
    ├── SafetyError                       exit 3   a safety rule refused the plan
    ├── StalePlanError                    exit 4   a saved plan no longer matches the hub
    ├── PlanMismatchError                 exit 4   a saved plan is not what a fresh plan
    │                                              would do now (forged, replayed, foreign)
    ├── PlanFileError                     exit 4   a saved plan is corrupt, edited or of
    │                                              another format version
    ├── ApplyError                        exit 1   some apply actions failed
    ├── LockedError                       exit 1   another apply holds the embedded hub
    ├── Interrupted                       exit 130 Ctrl-C
    └── ApiError                          exit 1   anything the Coder API answered or failed
        ├── TransportError                         connection refused, reset, timeout
        │   └── ConnectFailedError                 no connection made: nothing was sent
        ├── ProtocolError                          non-JSON body, required field missing
        └── HttpStatusError                        an HTTP error status
            ├── BadRequestError           400/413/422
            ├── UnauthorizedError         401
            ├── ForbiddenError            403
            ├── NotFoundError             404
            ├── ConflictError             409 (server code kept)
            ├── RateLimitedError          429
            └── ServerError               5xx
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler.textsafe import escape_controls

__all__ = [
    "EXIT_CHANGES",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_SAFETY",
    "EXIT_STALE",
    "EXIT_USAGE",
    "ApiError",
    "ApplyError",
    "BadRequestError",
    "ConflictError",
    "ConnectFailedError",
    "EnvNotTextError",
    "ForbiddenError",
    "HttpStatusError",
    "Interrupted",
    "LocatedWarning",
    "LockedError",
    "ManifestError",
    "ManifestErrors",
    "NotFoundError",
    "PlanFileError",
    "PlanMismatchError",
    "ProtocolError",
    "RateLimitedError",
    "ReconcilerError",
    "SafetyError",
    "SafetyViolation",
    "ServerError",
    "StalePlanError",
    "TokenCopyError",
    "TransportError",
    "UnauthorizedError",
    "UnsetEnvError",
    "UsageError",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_SAFETY = 3
EXIT_STALE = 4
EXIT_USAGE = 64
EXIT_INVALID = 65
EXIT_INTERRUPTED = 130


class ReconcilerError(Exception):
    """Base of every error the tool raises on purpose."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ReconcilerError):
    """Bad flags or settings: no hub configured, no token for a remote hub."""

    exit_code = EXIT_USAGE


class ManifestError(ReconcilerError):
    """One problem in a manifest, located at ``file:line:col``."""

    exit_code = EXIT_INVALID

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        self.detail = message
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        super().__init__(self.located())

    def located(self) -> str:
        """``file:line:col: message`` (parts that are unknown are left out), one line:
        control characters a value or an expression carried are escaped."""
        where = ":".join(
            str(part) for part in (self.file, self.line, self.column) if part is not None
        )
        return escape_controls(f"{where}: {self.detail}" if where else self.detail)

    def problems(self) -> tuple[ManifestError, ...]:
        """Each located problem this error reports (itself, here)."""
        return (self,)

    def to_dict(self) -> dict[str, Any]:
        """As JSON documents carry it (`validate --format json`, the error document)."""
        return {"file": self.file, "line": self.line, "column": self.column, "message": self.detail}


class LocatedWarning(Protocol):
    """A manifest warning (``manifest.build.ManifestWarning``) as errors carry it."""

    def located(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


class ManifestErrors(ManifestError):
    """Several manifest problems, all reported together.

    ``warnings`` are what the same manifests warn of (a secret written literally, an
    unset variable) when they were read far enough to know: said beside the errors, so
    that fixing the errors is not the first a user hears of a secret in the tree.
    """

    def __init__(
        self, errors: Sequence[ManifestError], warnings: Sequence[LocatedWarning] = ()
    ) -> None:
        self.errors = tuple(errors)
        self.warnings = tuple(warnings)
        first = self.errors[0] if self.errors else None
        super().__init__(
            "\n".join(e.located() for e in self.errors) or "invalid manifests",
            file=first.file if first else None,
        )

    def located(self) -> str:
        return "\n".join(e.located() for e in self.errors)

    def problems(self) -> tuple[ManifestError, ...]:
        return self.errors or (self,)


class UnsetEnvError(ReconcilerError):
    """``${env:NAME}`` references that a command needs are unset.

    Only the names are kept; values are never part of an error.
    """

    exit_code = EXIT_INVALID

    def __init__(self, names: Iterable[str], *, where: Sequence[str] = ()) -> None:
        self.names = tuple(sorted(set(names)))
        self.where = tuple(where)
        places = f" (used by {_listed(self.where)})" if self.where else ""
        super().__init__("environment variable(s) not set: " + _listed(self.names) + places)


# The most names an error lists before "and N more": a manifest with hundreds of
# references still fits its error on a screen.
_LISTED_NAMES = 20


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED_NAMES])
    more = len(names) - _LISTED_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


class TokenCopyError(ReconcilerError):
    """Variables under ``env`` that hold the API token where apply runs, alone or put
    together by several references: never sent into a session. Only the names are
    kept."""

    exit_code = EXIT_INVALID

    def __init__(self, names: Iterable[str], *, sources: str, where: Sequence[str] = ()) -> None:
        self.names = tuple(sorted(set(names)))
        self.where = tuple(where)
        places = f" (used by {_listed(self.where)})" if self.where else ""
        super().__init__(
            "environment variable(s) that hold the API token (the value of "
            f"{sources}), alone or put together, are never sent, not even under env: "
            + _listed(self.names)
            + places
        )


class EnvNotTextError(ReconcilerError):
    """A variable a reference names holds bytes that are not UTF-8 text (Python passes
    them on as lone surrogates): no request could carry its value. Only the name is
    kept; the value is never part of the error."""

    exit_code = EXIT_INVALID

    def __init__(self, names: Iterable[str], *, where: Sequence[str] = ()) -> None:
        self.names = tuple(sorted(set(names)))
        self.where = tuple(where)
        places = f" (used by {_listed(self.where)})" if self.where else ""
        super().__init__(
            "environment variable(s) not valid UTF-8 text: "
            + _listed(self.names)
            + places
            + "; values are not shown"
        )


@dataclass(frozen=True)
class SafetyViolation:
    """One safety rule and every session it hits."""

    rule: str  # preventDestroy | maxDestroyPercent | removeAll | protectLive | stillDeclared
    message: str
    sessions: tuple[str, ...]
    overridable: bool  # True when --force lifts it
    # What lifts it, as a command line says it: `--force`, `--override-policy NAME`
    # (an overridable Policy), or None (nothing does).
    lifted_by: str | None = None

    def __post_init__(self) -> None:
        if self.overridable and self.lifted_by is None:
            object.__setattr__(self, "lifted_by", "--force")

    def line(self) -> str:
        """One line saying it (controls escaped, whatever a Policy's message holds)."""
        hint = " (use --force to override)" if self.overridable else " (--force cannot lift it)"
        return escape_controls(
            f"refused by {self.rule}: {self.message}: {', '.join(self.sessions)}{hint}"
        )

    def to_dict(self) -> dict[str, Any]:
        """As JSON documents carry it (`plan --format json`, the error document)."""
        return {
            "rule": self.rule,
            "message": self.message,
            "sessions": list(self.sessions),
            "overridable": self.overridable,
            "liftedBy": self.lifted_by,
        }


class SafetyError(ReconcilerError):
    """A safety rule refused the plan; names each rule and the sessions it hits."""

    exit_code = EXIT_SAFETY

    def __init__(self, violations: Sequence[SafetyViolation]) -> None:
        self.violations = tuple(violations)
        lines = [v.line() for v in self.violations]
        super().__init__("\n".join(lines) or "refused by a safety rule")


class StalePlanError(ReconcilerError):
    """A saved plan no longer matches the hub: names every stale action."""

    exit_code = EXIT_STALE

    def __init__(self, stale: Sequence[str]) -> None:
        self.stale = tuple(stale)
        super().__init__(
            "saved plan is stale; these actions no longer match the hub: " + ", ".join(self.stale)
        )


class PlanMismatchError(ReconcilerError):
    """``apply --plan``: the saved plan is not what a fresh plan would do now, so it is
    not applied. ``difference`` says what differs first (an action, the project, the
    org or the endpoint), in words."""

    exit_code = EXIT_STALE
    # Not what a fresh plan does: applied already (in whole or part), or the hub, the
    # manifests or where it runs changed since.
    refused_because = "mismatch"

    def __init__(self, difference: str, *, advice: str | None = None) -> None:
        self.difference = difference
        what_now = advice or "Make a new plan (`plan --out`), review it and apply that"
        super().__init__(
            f"the saved plan is not what a fresh plan would do now, so nothing was applied: "
            f"{difference}. {what_now}"
        )


class PlanFileError(ReconcilerError):
    """A saved plan file is not JSON, of another version, fails its checksum or schema:
    not a plan this run may apply (a path that cannot be read is a usage error)."""

    exit_code = EXIT_STALE
    refused_because = "file"


class ApplyError(ReconcilerError):
    """Some apply actions failed (the others carried on)."""

    def __init__(self, failed: Sequence[str]) -> None:
        self.failed = tuple(failed)
        super().__init__(f"{len(self.failed)} action(s) failed: " + ", ".join(self.failed))


class LockedError(ReconcilerError):
    """Another apply held the embedded hub's database for longer than the wait allowed."""


class Interrupted(ReconcilerError):
    """The user pressed Ctrl-C."""

    exit_code = EXIT_INTERRUPTED


class ApiError(ReconcilerError):
    """The Coder API failed or answered with an error.

    Carries the request method and path (never the query string's secrets nor any
    header), the HTTP status, and the server's error code and message when it sent them.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        code: str | None = None,
        server_message: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        # Set by the client when an earlier attempt of the same request failed with its
        # outcome unknown (its answer lost, a 500, 502 or 504): it may have taken effect.
        self.after_unknown_outcome = False
        # Set by the client: this request, or an earlier attempt of it, may have been
        # carried out (its answer lost, a 500, 502 or 504); a 429, a 503, a connection
        # never made or no free connection say it was not.
        self.may_have_taken_effect = False
        self.status = status
        self.code = code
        self.server_message = server_message
        where = f"{method} {path}" if method and path else ""
        parts = [p for p in (where, f"HTTP {status}" if status else "", code or "") if p]
        prefix = f"{' '.join(parts)}: " if parts else ""
        super().__init__(prefix + message)


class TransportError(ApiError):
    """Connection refused or reset, a timeout, a dropped response."""


class ConnectFailedError(TransportError):
    """No connection could be made (refused, unreachable, connect timeout, TLS handshake).

    Nothing of the request was sent, so it had no effect and is safe to repeat.
    """


class ProtocolError(ApiError):
    """The server answered something we cannot read: non-JSON, a required field missing."""


class HttpStatusError(ApiError):
    """The server answered with an HTTP error status."""


class BadRequestError(HttpStatusError):
    """400, 413 or 422: the request was refused as invalid."""


class UnauthorizedError(HttpStatusError):
    """401: missing or unknown token."""


class ForbiddenError(HttpStatusError):
    """403: the token may not act in that organisation."""


class NotFoundError(HttpStatusError):
    """404: no such session (or it belongs to another organisation)."""


class ConflictError(HttpStatusError):
    """409: e.g. ``CODER_SESSION_ARCHIVED`` when resuming an archived session."""


class RateLimitedError(HttpStatusError):
    """429: too many requests."""


class ServerError(HttpStatusError):
    """5xx: the server failed."""
