"""The per-app state handlers reach through ``request.app.state``."""

from __future__ import annotations

from starlette.requests import Request

from reconciler.hub.config import HubConfig
from reconciler.hub.requests import Principal, authenticate
from reconciler.hub.storage import HubStore

__all__ = ["config_of", "principal", "store_of"]


def store_of(request: Request) -> HubStore:
    store: HubStore = request.app.state.store
    return store


def config_of(request: Request) -> HubConfig:
    config: HubConfig = request.app.state.config
    return config


def principal(request: Request) -> Principal:
    """Authenticate and remember the user as known in that org (for ``/hub/users``)."""
    who = authenticate(request, config_of(request).tokens)
    store_of(request).touch_user(who.org_id, who.user_id)
    return who
