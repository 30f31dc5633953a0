"""The async Coder API client: every endpoint, paging, retries, error translation.

    async with CoderClient(base_url, token=token) as client:
        sessions = await client.list_all_sessions(include_archived=True)

The package speaks HTTP through httpx and knows nothing of the hub. ``CoderClient``
takes any httpx transport (``httpx.MockTransport`` in tests);
:func:`reconciler.connect.open_client` builds one for the configured endpoint, the
embedded hub in-process included.
"""

from __future__ import annotations

from reconciler.client.core import USER_AGENT, CoderClient
from reconciler.client.retry import RetryPolicy
from reconciler.client.timeouts import Timeouts

__all__ = ["USER_AGENT", "CoderClient", "RetryPolicy", "Timeouts"]
