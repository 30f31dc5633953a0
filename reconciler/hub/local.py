"""The embedded hub behind ``--api-url local``: a fixed token that may act in any org."""

from __future__ import annotations

from starlette.applications import Starlette

from reconciler.hub.app import create_app
from reconciler.hub.config import HubConfig, TokenGrant

__all__ = ["LOCAL_GRANT", "LOCAL_TOKEN", "local_app"]

# Not a secret: the embedded hub runs in-process and is reachable only through it.
LOCAL_TOKEN = "reconciler-local-hub"
LOCAL_GRANT = TokenGrant(org_id="org_local", user_id="user_local", any_org=True)


def local_app(db_path: str) -> Starlette:
    """The embedded hub over ``db_path`` (its directory is created on demand, private)."""
    return create_app(HubConfig(db_path=db_path, tokens={LOCAL_TOKEN: LOCAL_GRANT}))
