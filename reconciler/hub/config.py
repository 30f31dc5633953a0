"""How a hub is configured: storage, tokens and fault knobs (one frozen value)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "HubConfig",
    "TokenGrant",
    "generate_token",
    "parse_token_spec",
    "parse_token_specs",
]

# `hub serve`'s connection limit (reconciler/serving.py has the other bounds).
DEFAULT_MAX_CONNECTIONS = 1000

# Tokens are bearer values; keep them to characters that survive headers and shells.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9._~+/-]+$")
_ID_RE = re.compile(r"^[A-Za-z0-9._:@-]+$")


@dataclass(frozen=True)
class TokenGrant:
    """What a bearer token stands for. An ``any_org`` token may name any org."""

    org_id: str
    user_id: str
    any_org: bool = False


@dataclass(frozen=True)
class HubConfig:
    """Everything a hub app needs; fault knobs are off by default."""

    db_path: str = ":memory:"
    tokens: Mapping[str, TokenGrant] = field(default_factory=dict)
    latency_ms: float = 0
    fail_rate: float = 0
    lost_response_rate: float = 0
    seed: int | None = None
    admin: bool = False

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        for name in ("fail_rate", "lost_response_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")


def parse_token_spec(spec: str, number: int = 1) -> tuple[str, TokenGrant]:
    """Parse ``KEY=ORG:USER`` into ``(KEY, TokenGrant)``; ValueError says what is wrong,
    naming the spec by ``number`` (its place among those given), never by any of its
    characters: a short token would be shown whole, and any token's start helps guess it."""
    key, sep, grant = spec.strip().partition("=")
    where = f"token #{number}"
    if not sep:
        raise ValueError(f"{where} is not of the form KEY=ORG:USER (tokens are never shown)")
    org, sep, user = grant.partition(":")
    if not sep or not org or not user:
        # With KEY and ORG:USER swapped, what follows '=' is the key.
        raise ValueError(f"{where} needs ORG:USER after '=' (tokens are never shown)")
    if not key or not _TOKEN_RE.fullmatch(key):
        raise ValueError(
            f"{where}: its KEY must be non-empty letters, digits or ._~+/- (tokens are never shown)"
        )
    for what, value in (("org", org), ("user", user)):
        if not _ID_RE.fullmatch(value):
            raise ValueError(f"{where}: its {what} id has characters outside [A-Za-z0-9._:@-]")
    return key, TokenGrant(org_id=org, user_id=user)


def parse_token_specs(specs: Iterable[str]) -> dict[str, TokenGrant]:
    """Parse several specs (e.g. flags plus the comma-separated ``CODER_HUB_TOKENS``),
    numbered in that order for the errors."""
    tokens: dict[str, TokenGrant] = {}
    parts = [part for spec in specs for part in spec.split(",") if part.strip()]
    for number, part in enumerate(parts, start=1):
        key, grant = parse_token_spec(part, number)
        tokens[key] = grant
    return tokens


def generate_token() -> str:
    """A fresh random token for a hub started without any."""
    return "hub_" + secrets.token_urlsafe(24)
