"""Client input never causes a 500: arbitrary JSON at every body-taking endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from hubproc import TenantPool, inprocess_hub
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = st.sampled_from(
    ["task", "label", "agent", "visibility", "workflowMode", "loop", "tags", "skills", "repo",
     "repos", "env", "metadata", "workspaceId", "savedSkillIds", "status", "loopStatus",
     "loopIteration", "connectParticipant", "disconnectParticipants"]
)  # fmt: skip
_BODIES = _JSON | st.dictionaries(_FIELDS, _JSON, max_size=5)
_RAW = st.sampled_from(
    [b"NaN", b'{"task": NaN}', b'{"task": "t", "loop": {"maxIterations": 1e999}}',
     b'"\\ud800"', b'{"task": "\\ud800"}', b"[" * 5000 + b"]" * 5000, b"\x00", b"{}" * 3]
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(_BODIES, min_size=1, max_size=4), raws=st.lists(_RAW, max_size=2))
def test_no_body_makes_the_hub_answer_500(bodies: list[Any], raws: list[bytes]) -> None:
    async def scenario() -> None:
        hub = inprocess_hub(TenantPool().take())
        try:
            api = hub.client()
            made = await api.post("/hub/session", json={"task": "t"})
            session_id = made.json()["sessionId"]
            targets = [
                ("POST", "/hub/session"),
                ("PATCH", f"/hub/session/{session_id}"),
                ("POST", f"/hub/session/{session_id}/_admin"),
            ]
            for method, path in targets:
                for body in bodies:
                    answer = await api.request(method, path, json=body)
                    assert answer.status_code < 500, (method, path, body, answer.text)
                    assert set(answer.json()) >= ({"code"} if answer.status_code >= 400 else set())
                for raw in raws:
                    answer = await api.request(method, path, content=raw)
                    assert answer.status_code < 500, (method, path, raw[:40], answer.text)
            listing = await api.get("/hub/sessions", params={"includeArchived": "true"})
            assert listing.status_code == 200
            for item in listing.json()["sessions"]["websocket"]:
                assert (await api.get(f"/hub/session/{item['sessionId']}")).status_code == 200
                loop = await api.get(f"/hub/session/{item['sessionId']}/loop")
                assert loop.status_code == 200
        finally:
            await hub.aclose()
            hub.app.state.store.close()

    asyncio.run(scenario())


def test_error_answers_are_json_with_a_code() -> None:
    async def scenario() -> httpx.Response:
        hub = inprocess_hub(TenantPool().take())
        try:
            return await hub.client().post("/hub/session", content=b'{"task": NaN}')
        finally:
            await hub.aclose()
            hub.app.state.store.close()

    answer = asyncio.run(scenario())
    assert answer.status_code == 400 and answer.json()["code"] == "CODER_INVALID_REQUEST"
