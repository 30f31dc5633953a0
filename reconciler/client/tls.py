"""The TLS setting a client is built with: the CA bundle only where TLS can happen.

httpx loads the CA bundle for every client it builds (about 50 ms of CPU), whether or
not the endpoint speaks TLS. A plain-http endpoint (a hub on this machine, say) never
does, as long as no proxy is configured (a proxy URL may itself be https). There the
client gets a context that trusts no certificate at all: unused, and were it ever
used it could only fail, never connect unverified.
"""

from __future__ import annotations

import os
import ssl
from functools import cache

__all__ = ["proxy_configured", "verify_for"]

_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})


@cache
def _trusts_nothing() -> ssl.SSLContext:
    # PROTOCOL_TLS_CLIENT verifies certificates and host names; no CA is loaded.
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def proxy_configured() -> bool:
    """Whether the environment names a proxy httpx would use (``*_PROXY``, any case)."""
    return any(k.lower() in _PROXY_VARIABLES and v for k, v in os.environ.items())


def verify_for(base_url: str) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for ``base_url``: True (its default) unless TLS cannot happen."""
    plain = base_url.lower().startswith("http://")
    if plain and not proxy_configured():
        return _trusts_nothing()
    return True
