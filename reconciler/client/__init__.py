"""The async Coder API client: every endpoint, paging, retries, error translation.

    async with open_client(opts) as client:          # endpoint from flags/environment
        sessions = await client.list_all_sessions(include_archived=True)

``CoderClient`` can also be built directly with any httpx transport (the local hub
in-process, ``httpx.MockTransport`` in tests).
"""

from __future__ import annotations

from reconciler.client.core import USER_AGENT, CoderClient
from reconciler.client.retry import RetryPolicy
from reconciler.client.timeouts import Timeouts

__all__ = ["USER_AGENT", "CoderClient", "RetryPolicy", "Timeouts"]
