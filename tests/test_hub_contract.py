"""The hub's contract (docs/reference/api-coverage.md and the local hub's rules), run
in-process and over TCP.

Every test gets its own tenant (org and tokens), so the served hub can be shared
(conftest's ``served_hub``): one subprocess start instead of one per test.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hubproc import (
    Hub,
    HubProcess,
    Tenant,
    find_nulls,
    inprocess_config,
    inprocess_hub,
)

from reconciler.connect import LocalHubTransport
from reconciler.hub.app import create_app
from reconciler.hub.config import HubConfig

SESSION_ID = re.compile(r"^codesess_[0-9a-z]+$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

LIST_ITEM_REQUIRED = {
    "sessionId": str,
    "label": str,
    "status": str,
    "mode": str,
    "visibility": str,
    "owner": dict,
    "origin": dict,
    "sessionKind": str,
    "workflowMode": str,
    "createdAt": str,
    "lastActivityAt": str,
    "taskCount": int,
    "subAgentCount": int,
    "observerCount": int,
    "participantCount": int,
    "tags": list,
    "skills": list,
    "bucket": str,
    "runtimeAvailable": bool,
    "controlAvailable": bool,
    "manageAvailable": bool,
    "wakeAvailable": bool,
    "historyOnly": bool,
    "liveExpected": bool,
}

# Every endpoint, with a placeholder for a session id, for the auth and org sweeps.
ENDPOINTS: list[tuple[str, str]] = [
    ("GET", "/coder"),
    ("POST", "/hub/session"),
    ("GET", "/hub/sessions"),
    ("GET", "/hub/users"),
    ("GET", "/hub/session/{id}"),
    ("PATCH", "/hub/session/{id}"),
    ("DELETE", "/hub/session/{id}"),
    ("POST", "/hub/session/{id}/archive"),
    ("POST", "/hub/session/{id}/resume"),
    ("GET", "/hub/session/{id}/loop"),
    ("GET", "/hub/session/{id}/replay"),
    ("GET", "/hub/session/{id}/participants"),
    ("GET", "/hub/session/{id}/events/history"),
    ("POST", "/hub/session/{id}/_admin"),
]
REASON_PHRASES = {"Bad Request", "Not Found", "Payload Too Large", "Unauthorized", "Forbidden"}
SESSION_ENDPOINTS = [(m, p) for m, p in ENDPOINTS if "{id}" in p]


@pytest.fixture(params=["inprocess", pytest.param("subprocess", marks=pytest.mark.subprocess)])
async def hub(request: pytest.FixtureRequest, tenant: Tenant) -> AsyncIterator[Hub]:
    if request.param == "inprocess":
        the_hub = inprocess_hub(tenant)
    else:
        served: HubProcess = request.getfixturevalue("served_hub")
        the_hub = Hub("subprocess", served.url, tenant)
    try:
        yield the_hub
    finally:
        await the_hub.aclose()
        if the_hub.app is not None:
            the_hub.app.state.store.close()


@pytest.fixture
def api(hub: Hub) -> httpx.AsyncClient:
    return hub.client()


async def create(api: httpx.AsyncClient, **body: Any) -> str:
    body.setdefault("task", "Write the tests")
    answer = await api.post("/hub/session", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["sessionId"])


async def listing(api: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    answer = await api.get("/hub/sessions", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [item["sessionId"] for item in body["sessions"]["websocket"]]


def assert_error(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error", "message", "code"}
    assert body["code"] == code
    assert isinstance(body["error"], str) and isinstance(body["message"], str)
    # The official clients show `error` first: it carries the reason, not "Bad Request".
    assert body["error"] == body["message"] and body["error"] not in REASON_PHRASES


# -- discovery and auth ---------------------------------------------------------------


async def test_discovery_answers_its_own_base_url(hub: Hub, api: httpx.AsyncClient) -> None:
    answer = await api.get("/coder")
    assert answer.status_code == 200
    assert answer.json() == {"url": hub.base_url.rstrip("/")}


@pytest.mark.parametrize("prefix", ["/hub", "/api/hub"])
async def test_every_endpoint_is_401_without_a_known_token(hub: Hub, prefix: str) -> None:
    session_id = await create(hub.client())
    anonymous = hub.client(None)
    strangers = [hub.client("not-a-token"), hub.client(None, Authorization="Basic abc")]
    for method, path in ENDPOINTS:
        url = path.replace("/hub", prefix, 1).replace("{id}", session_id)
        for client in (anonymous, *strangers):
            answer = await client.request(method, url, json={"task": "x"})
            assert_error(answer, 401, "CODER_UNAUTHORIZED")
    # Nothing was created by the refused POSTs.
    assert (await listing(hub.client()))["total"] == 1


async def test_org_by_query_or_header_and_other_orgs_are_403(
    hub: Hub, api: httpx.AsyncClient
) -> None:
    own = hub.tenant.org_id
    assert (await api.get("/hub/sessions", params={"orgId": own})).status_code == 200
    header = {"x-agentuity-orgid": own}
    assert (await api.get("/hub/sessions", headers=header)).status_code == 200
    both = await api.get("/hub/sessions", params={"orgId": own}, headers=header)
    assert both.status_code == 200
    other = hub.tenant.other_org_id
    assert_error(await api.get("/hub/sessions", params={"orgId": other}), 403, "CODER_FORBIDDEN")
    answer = await api.get("/hub/sessions", headers={"x-agentuity-orgid": other})
    assert_error(answer, 403, "CODER_FORBIDDEN")
    answer = await api.post("/hub/session", params={"orgId": other}, json={"task": "x"})
    assert_error(answer, 403, "CODER_FORBIDDEN")
    assert_error(await api.get("/coder", params={"orgId": other}), 403, "CODER_FORBIDDEN")
    mixed = await api.get(
        "/hub/sessions", params={"orgId": own}, headers={"x-agentuity-orgid": other}
    )
    assert_error(mixed, 400, "CODER_INVALID_REQUEST")


async def test_orgs_never_see_each_others_sessions(hub: Hub, api: httpx.AsyncClient) -> None:
    session_id = await create(api, tags=["mine"])
    outsider = hub.client(hub.tenant.other_token)
    for method, path in SESSION_ENDPOINTS:
        answer = await outsider.request(method, path.replace("{id}", session_id), json={})
        assert_error(answer, 404, "CODER_SESSION_NOT_FOUND")
    assert (await listing(outsider))["total"] == 0
    assert (await listing(outsider, search="mine"))["total"] == 0
    # ...and the session is untouched.
    assert (await api.get(f"/hub/session/{session_id}")).json()["status"] == "active"
    # A colleague in the same org sees it.
    assert ids(await listing(hub.client(hub.tenant.token2))) == [session_id]


# -- create -----------------------------------------------------------------------------


async def test_create_answers_201_with_the_documented_fields(
    hub: Hub, api: httpx.AsyncClient
) -> None:
    answer = await api.post("/hub/session", json={"task": "Implement feature X"})
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"sessionId", "sandboxId", "status", "mode", "visibility"}
    assert SESSION_ID.match(body["sessionId"])
    assert isinstance(body["sandboxId"], str)
    assert body["status"] == "active"
    assert body["mode"] == "sandbox"
    assert body["visibility"] == "private"
    detail = (await api.get(f"/hub/session/{body['sessionId']}")).json()
    assert detail["workflowMode"] == "standard"
    assert detail["label"] == "Implement feature X"
    assert detail["owner"]["userId"] == hub.tenant.user_id


async def test_create_defaults_and_long_visibility_forms(api: httpx.AsyncClient) -> None:
    long_task = "Refactor the authentication module " * 10 + "\nsecond line"
    session_id = await create(api, task=long_task, visibility="org")
    detail = (await api.get(f"/hub/session/{session_id}")).json()
    assert detail["visibility"] == "organization"
    assert "\n" not in detail["label"] and 0 < len(detail["label"]) <= 80
    assert detail["task"] == long_task
    answer = await api.post("/hub/session", json={"task": "t", "visibility": "collab"})
    assert answer.json()["visibility"] == "collaborate"
    loop_id = await create(api, loop={"goal": "green CI"})
    assert (await api.get(f"/hub/session/{loop_id}")).json()["workflowMode"] == "loop"
    explicit = await create(api, workflowMode="loop")
    assert (await api.get(f"/hub/session/{explicit}/loop")).json()["loop"]["status"] == "running"


async def test_create_stores_every_documented_field(api: httpx.AsyncClient) -> None:
    repo = {"fullName": "acme/api", "url": "https://github.com/acme/api", "branch": "main"}
    body = {
        "task": "Ship it",
        "label": "Ship",
        "agent": "claude",
        "visibility": "organization",
        "tags": ["a", "b", "a"],
        "skills": [{"skillId": "s1", "repo": "acme/skills", "name": "Lint"}],
        "savedSkillIds": ["ss1"],
        "skillBucketIds": ["sb1"],
        "repo": repo,
        "repos": [repo, {"fullName": "acme/web"}],
        "workspaceId": "ws_1",
        "env": {"DEBUG": "1"},
        "metadata": {"team": "core", "n": 3},
        "somethingNew": {"the real service": "ignores it"},
    }
    session_id = await create(api, **body)
    detail = (await api.get(f"/hub/session/{session_id}")).json()
    assert detail["label"] == "Ship"
    assert detail["defaultAgent"] == "claude"
    assert detail["tags"] == ["a", "b"]
    assert detail["skills"] == body["skills"]
    assert detail["repo"] == repo
    assert detail["repos"] == body["repos"]
    assert detail["workspace"]["id"] == "ws_1"
    assert detail["env"] == {"DEBUG": "1"}
    assert detail["metadata"] == {"team": "core", "n": 3}
    assert "somethingNew" not in detail
    assert ISO.match(detail["updatedAt"])


BAD_CREATES: list[tuple[str, Any]] = [
    ("no task", {"label": "x"}),
    ("empty task", {"task": ""}),
    ("blank task", {"task": "   "}),
    ("task not a string", {"task": 3}),
    ("label not a string", {"task": "t", "label": 1}),
    ("agent not a string", {"task": "t", "agent": ["a"]}),
    ("unknown visibility", {"task": "t", "visibility": "public"}),
    ("unknown workflowMode", {"task": "t", "workflowMode": "turbo"}),
    ("standard with a loop", {"task": "t", "workflowMode": "standard", "loop": {}}),
    ("loop not an object", {"task": "t", "loop": "yes"}),
    ("loop goal not a string", {"task": "t", "loop": {"goal": 1}}),
    ("loop maxIterations not a number", {"task": "t", "loop": {"maxIterations": "3"}}),
    ("loop maxIterations zero", {"task": "t", "loop": {"maxIterations": 0}}),
    ("loop autoContinue not a boolean", {"task": "t", "loop": {"autoContinue": "yes"}}),
    ("loop allowDetached not a boolean", {"task": "t", "loop": {"allowDetached": 1}}),
    ("tags not an array", {"task": "t", "tags": "a"}),
    ("tags with a number", {"task": "t", "tags": ["a", 1]}),
    ("savedSkillIds not strings", {"task": "t", "savedSkillIds": [1]}),
    ("skillBucketIds not an array", {"task": "t", "skillBucketIds": {}}),
    ("skills not an array", {"task": "t", "skills": {"skillId": "s"}}),
    ("skill without repo", {"task": "t", "skills": [{"skillId": "s"}]}),
    ("skill without skillId", {"task": "t", "skills": [{"repo": "r"}]}),
    ("skill not an object", {"task": "t", "skills": ["s"]}),
    ("repo not an object", {"task": "t", "repo": "acme/api"}),
    ("repo field not a string", {"task": "t", "repo": {"branch": 1}}),
    ("repos not an array", {"task": "t", "repos": {"name": "x"}}),
    ("repos item field not a string", {"task": "t", "repos": [{"url": False}]}),
    ("workspaceId not a string", {"task": "t", "workspaceId": 5}),
    ("env not an object", {"task": "t", "env": ["A=1"]}),
    ("env value not a string", {"task": "t", "env": {"A": 1}}),
    ("metadata not an object", {"task": "t", "metadata": "m"}),
    ("body an array", [{"task": "t"}]),
    ("body a string", "task"),
]


async def test_create_rejects_bad_bodies_without_an_effect(api: httpx.AsyncClient) -> None:
    for why, body in BAD_CREATES:
        answer = await api.post("/hub/session", json=body)
        assert answer.status_code == 400, why
        assert_error(answer, 400, "CODER_INVALID_REQUEST")
    for raw in (b"{not json", b"", b"\xff\xfe", b'{"task": "t"'):
        answer = await api.post(
            "/hub/session", content=raw, headers={"content-type": "application/json"}
        )
        assert_error(answer, 400, "CODER_INVALID_REQUEST")
    assert (await listing(api))["total"] == 0


async def test_a_body_over_one_mebibyte_is_413(api: httpx.AsyncClient) -> None:
    huge = {"task": "t", "metadata": {"blob": "x" * (1024 * 1024)}}
    assert_error(await api.post("/hub/session", json=huge), 413, "CODER_PAYLOAD_TOO_LARGE")

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length (chunked): the limit holds on the bytes actually read.
        yield b'{"task": "t", "metadata": {"blob": "'
        for _ in range(17):
            yield b"y" * 65536
        yield b'"}}'

    answer = await api.post("/hub/session", content=chunks())
    assert_error(answer, 413, "CODER_PAYLOAD_TOO_LARGE")
    assert (await listing(api))["total"] == 0


# -- list -------------------------------------------------------------------------------


async def test_list_items_carry_every_required_field_and_no_nulls(
    api: httpx.AsyncClient,
) -> None:
    await create(api, tags=["x"], skills=[{"skillId": "s", "repo": "r"}])
    await create(api, loop={"maxIterations": 5, "goal": "g"}, agent="claude")
    body = await listing(api)
    assert set(body) == {"sessions", "total"}
    assert body["sessions"]["sandbox"] == []
    assert body["total"] == 2
    assert find_nulls(body) == []
    for item in body["sessions"]["websocket"]:
        for key, kind in LIST_ITEM_REQUIRED.items():
            assert isinstance(item[key], kind), key
        assert "task" not in item and "env" not in item and "metadata" not in item
        assert item["mode"] == "sandbox"
        assert item["bucket"] == "running"
        assert item["participantCount"] == 0
        assert ISO.match(item["createdAt"]) and ISO.match(item["lastActivityAt"])
        assert item["owner"]["userId"]
        assert "parentSessionId" not in item
    standard, loop = sorted(
        body["sessions"]["websocket"], key=lambda i: i["workflowMode"] == "loop"
    )
    assert "loopStatus" not in standard and "defaultAgent" not in standard
    assert loop["loopStatus"] == "running" and loop["loopIteration"] == 0
    assert loop["defaultAgent"] == "claude"


async def test_list_orders_newest_first_and_pages(api: httpx.AsyncClient) -> None:
    created = [await create(api, task=f"task {i}") for i in range(7)]
    newest_first = list(reversed(created))
    body = await listing(api)
    assert ids(body) == newest_first and body["total"] == 7
    page = await listing(api, limit=3, offset=2)
    assert ids(page) == newest_first[2:5] and page["total"] == 7
    assert ids(await listing(api, limit=3, offset=6)) == newest_first[6:]
    assert ids(await listing(api, offset=50)) == []


async def test_list_default_limit_is_50(api: httpx.AsyncClient) -> None:
    for i in range(55):
        await create(api, task=f"t{i}")
    body = await listing(api)
    assert len(ids(body)) == 50 and body["total"] == 55


async def test_list_limit_is_capped_at_500(
    hub: Hub, api: httpx.AsyncClient, request: pytest.FixtureRequest
) -> None:
    from reconciler.hub.storage import HubStore
    from reconciler.hub.validation import parse_create

    # 501 sessions go straight into the store (501 HTTP creates would be slow); a served
    # hub's SQLite file takes a second writer (WAL), and the hub reads it on each list.
    if hub.app is not None:
        store, owned = hub.app.state.store, False
    else:
        served: HubProcess = request.getfixturevalue("served_hub")
        store, owned = HubStore(str(served.db_path)), True
    try:
        for i in range(501):
            new = parse_create({"task": f"{i}"})
            store.create_session(hub.tenant.org_id, hub.tenant.user_id, new)
    finally:
        if owned:
            store.close()
    body = await listing(api, limit=10_000)
    assert len(ids(body)) == 500 and body["total"] == 501


async def test_list_search_matches_label_task_and_tags_case_insensitively(
    api: httpx.AsyncClient,
) -> None:
    by_label = await create(api, task="one", label="Payments Refactor")
    by_task = await create(api, task="fix the PAYMENTS bug")
    by_tag = await create(api, task="three", tags=["team-payments"])
    await create(api, task="unrelated", tags=["billing"])
    found = await listing(api, search="payments")
    assert set(ids(found)) == {by_label, by_task, by_tag} and found["total"] == 3
    assert ids(await listing(api, search="TEAM-PAY")) == [by_tag]
    assert (await listing(api, search="nothing-like-this"))["total"] == 0


async def test_archived_are_hidden_unless_asked_for(api: httpx.AsyncClient) -> None:
    kept = await create(api)
    gone = await create(api)
    assert (await api.post(f"/hub/session/{gone}/archive")).status_code == 200
    assert ids(await listing(api)) == [kept]
    for flag in ("true", "1"):
        everything = await listing(api, includeArchived=flag)
        assert ids(everything) == [gone, kept] and everything["total"] == 2
    assert ids(await listing(api, includeArchived="false")) == [kept]


async def test_bad_query_parameters_are_400(api: httpx.AsyncClient) -> None:
    session_id = await create(api)
    bad = [
        ("/hub/sessions", {"limit": "abc"}),
        ("/hub/sessions", {"limit": "0"}),
        ("/hub/sessions", {"offset": "-1"}),
        ("/hub/sessions", {"offset": str(10**30)}),
        ("/hub/sessions", {"includeArchived": "maybe"}),
        ("/hub/users", {"limit": "-5"}),
        (f"/hub/session/{session_id}/events/history", {"beforeId": "x"}),
        (f"/hub/session/{session_id}/participants", {"includeDisconnected": "2"}),
    ]
    for path, params in bad:
        assert_error(await api.get(path, params=params), 400, "CODER_INVALID_REQUEST")


# -- get, update --------------------------------------------------------------------------


async def test_get_adds_task_env_metadata_and_updated_at(api: httpx.AsyncClient) -> None:
    session_id = await create(api, task="Do it", env={"A": "b"}, metadata={"k": [1]})
    answer = await api.get(f"/hub/session/{session_id}")
    assert answer.status_code == 200
    detail = answer.json()
    assert find_nulls(detail) == []
    assert detail["task"] == "Do it" and detail["env"] == {"A": "b"}
    assert detail["metadata"] == {"k": [1]}
    assert ISO.match(detail["updatedAt"])
    item = (await listing(api))["sessions"]["websocket"][0]
    assert {k: v for k, v in detail.items() if k in item} == item
    answer = await api.get("/hub/session/codesess_doesnotexist")
    assert_error(answer, 404, "CODER_SESSION_NOT_FOUND")


async def test_patch_changes_only_the_mutable_fields(api: httpx.AsyncClient) -> None:
    session_id = await create(api, task="t", tags=["old", "keep"], agent="a1")
    patch = {
        "label": "New label",
        "agent": "claude",
        "visibility": "collab",
        "tags": ["keep", "new"],
        "skills": [{"skillId": "s", "repo": "r", "url": "https://x"}],
    }
    answer = await api.patch(f"/hub/session/{session_id}", json=patch)
    assert answer.status_code == 200
    assert answer.json() == {
        "sessionId": session_id,
        "label": "New label",
        "visibility": "collaborate",
        "tags": ["keep", "new"],
        "skills": patch["skills"],
        "defaultAgent": "claude",
    }
    detail = (await api.get(f"/hub/session/{session_id}")).json()
    assert detail["tags"] == ["keep", "new"] and detail["defaultAgent"] == "claude"
    assert detail["visibility"] == "collaborate" and detail["label"] == "New label"
    # Partial PATCH leaves the rest; clearing the agent answers null in PATCH only.
    answer = await api.patch(f"/hub/session/{session_id}", json={"agent": None})
    assert answer.json()["defaultAgent"] is None and answer.json()["label"] == "New label"
    assert "defaultAgent" not in (await api.get(f"/hub/session/{session_id}")).json()
    # The new tags are searchable, the old ones are gone.
    assert ids(await listing(api, search="new")) == [session_id]
    assert ids(await listing(api, search="old")) == []


async def test_patch_rejects_other_fields_and_bad_types(api: httpx.AsyncClient) -> None:
    session_id = await create(api, task="t")
    for body in (
        {"task": "other"},
        {"label": "x", "env": {}},
        {"workflowMode": "loop"},
        {"repo": {}},
        {"label": 5},
        {"agent": 1},
        {"visibility": "public"},
        {"visibility": None},
        {"tags": "a"},
        {"tags": None},
        {"skills": [{"skillId": "s"}]},
        ["label"],
    ):
        answer = await api.patch(f"/hub/session/{session_id}", json=body)
        assert_error(answer, 400, "CODER_INVALID_REQUEST")
    detail = (await api.get(f"/hub/session/{session_id}")).json()
    assert detail["label"] == "t" and detail["visibility"] == "private"
    answer = await api.patch("/hub/session/codesess_missing", json={"label": "x"})
    assert_error(answer, 404, "CODER_SESSION_NOT_FOUND")


async def test_create_and_update_read_the_official_clients_agent_fields_alike(
    api: httpx.AsyncClient,
) -> None:
    # `agentuity coder create/update --default-agent X --enabled-agents a,b` send these.
    official = {"defaultAgent": "reviewer", "enabledAgents": ["reviewer", "builder"]}
    session_id = await create(api, task="t", **official)
    assert (await api.get(f"/hub/session/{session_id}")).json()["defaultAgent"] == "reviewer"
    answer = await api.patch(
        f"/hub/session/{session_id}", json={"defaultAgent": "lead", "enabledAgents": ["lead"]}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["defaultAgent"] == "lead"
    assert (await api.get(f"/hub/session/{session_id}")).json()["defaultAgent"] == "lead"
    # A bad roster or agent name is refused by both routes.
    for body in ({"enabledAgents": "a,b"}, {"enabledAgents": [1]}, {"defaultAgent": 1}):
        answer = await api.post("/hub/session", json={"task": "t", **body})
        assert_error(answer, 400, "CODER_INVALID_REQUEST")
        answer = await api.patch(f"/hub/session/{session_id}", json=body)
        assert_error(answer, 400, "CODER_INVALID_REQUEST")
    assert (await api.get(f"/hub/session/{session_id}")).json()["defaultAgent"] == "lead"


async def test_agent_and_default_agent_together_keep_the_default_agent(
    api: httpx.AsyncClient,
) -> None:
    # `agentuity coder create "..." --agent lead --default-agent scout` sends both names;
    # the hub keeps one agent, and the official SDK calls defaultAgent the preferred one.
    session_id = await create(api, task="t", agent="lead", defaultAgent="scout")
    detail = (await api.get(f"/hub/session/{session_id}")).json()
    assert detail["defaultAgent"] == "scout" and "agent" not in detail
    [item] = [
        s for s in (await listing(api))["sessions"]["websocket"] if s["sessionId"] == session_id
    ]
    assert item["defaultAgent"] == "scout"
    answer = await api.patch(f"/hub/session/{session_id}", json={"agent": "a", "defaultAgent": "b"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["defaultAgent"] == "b"
    # One name alone is that agent, whichever it is; an empty defaultAgent defers to agent.
    for body, kept in (({"agent": "c"}, "c"), ({"agent": "d", "defaultAgent": ""}, "d")):
        answer = await api.patch(f"/hub/session/{session_id}", json=body)
        assert answer.status_code == 200, answer.text
        assert (await api.get(f"/hub/session/{session_id}")).json()["defaultAgent"] == kept
    bad = {"agent": 1, "defaultAgent": "e"}
    assert_error(
        await api.post("/hub/session", json={"task": "t", **bad}), 400, "CODER_INVALID_REQUEST"
    )


async def test_error_bodies_put_the_reason_where_the_official_clients_show_it(
    api: httpx.AsyncClient,
) -> None:
    answer = await api.post("/hub/session", json={"task": "  "})
    assert answer.json()["error"] == "task is required and must be a non-empty string"
    answer = await api.patch("/hub/session/codesess_missing", json={"label": "x"})
    assert answer.json()["error"] == "session codesess_missing not found"


async def test_bodies_nested_past_the_limit_are_400(api: httpx.AsyncClient) -> None:
    from reconciler.apifacts import MAX_BODY_DEPTH

    def nested(levels: int) -> Any:
        value: Any = "leaf"
        for _ in range(levels):
            value = {"k": value}
        return value

    # The body is level 1 and `metadata` level 2.
    answer = await api.post("/hub/session", json={"task": "t", "metadata": nested(63)})
    assert answer.status_code == 201, answer.text
    answer = await api.post("/hub/session", json={"task": "t", "metadata": nested(64)})
    assert_error(answer, 400, "CODER_INVALID_REQUEST")
    assert f"more than {MAX_BODY_DEPTH} levels" in answer.json()["error"]


# -- lifecycle -------------------------------------------------------------------------


async def test_archive_resume_and_delete(hub: Hub, api: httpx.AsyncClient) -> None:
    session_id = await create(api)
    answer = await api.post(f"/hub/session/{session_id}/archive")
    assert answer.json() == {"sessionId": session_id, "status": "archived"}
    again = await api.post(f"/hub/session/{session_id}/archive")
    assert again.status_code == 200 and again.json()["status"] == "archived"
    item = (await listing(api, includeArchived="true"))["sessions"]["websocket"][0]
    assert item["bucket"] == "history" and item["historyOnly"] is True
    assert item["runtimeAvailable"] is False and item["liveExpected"] is False
    answer = await api.post(f"/hub/session/{session_id}/resume")
    assert_error(answer, 409, "CODER_SESSION_ARCHIVED")
    answer = await api.delete(f"/hub/session/{session_id}")
    assert answer.status_code == 200 and answer.json()["sessionId"] == session_id
    for method, path in SESSION_ENDPOINTS:
        answer = await api.request(method, path.replace("{id}", session_id), json={})
        assert_error(answer, 404, "CODER_SESSION_NOT_FOUND")


async def test_pause_then_resume_goes_through_resuming(api: httpx.AsyncClient) -> None:
    session_id = await create(api)
    # Resuming an active session is a no-op.
    answer = await api.post(f"/hub/session/{session_id}/resume")
    assert answer.json() == {"sessionId": session_id, "status": "active"}
    paused = await api.post(f"/hub/session/{session_id}/_admin", json={"status": "paused"})
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused" and paused.json()["bucket"] == "paused"
    assert paused.json()["wakeAvailable"] is True
    answer = await api.post(f"/hub/session/{session_id}/resume")
    assert answer.json() == {"sessionId": session_id, "status": "active"}
    events = (await api.get(f"/hub/session/{session_id}/events/history")).json()["events"]
    names = [e["event"] for e in events]
    assert names[:3] == ["session_resumed", "session_resuming", "session_paused"]
    assert events[1]["payload"]["status"] == "resuming"
    # A paused session can also be archived.
    await api.post(f"/hub/session/{session_id}/_admin", json={"status": "paused"})
    answer = await api.post(f"/hub/session/{session_id}/archive")
    assert answer.json()["status"] == "archived"


# -- session data -----------------------------------------------------------------------


async def test_event_history_records_every_change_and_pages(api: httpx.AsyncClient) -> None:
    session_id = await create(api, task="t")
    for i in range(4):
        await api.patch(f"/hub/session/{session_id}", json={"label": f"l{i}"})
    await api.post(f"/hub/session/{session_id}/archive")
    body = (await api.get(f"/hub/session/{session_id}/events/history")).json()
    assert body["sessionId"] == session_id
    events = body["events"]
    assert find_nulls(events) == []
    assert [e["event"] for e in events] == ["session_archived"] + ["session_updated"] * 4 + [
        "session_created"
    ]
    event_ids = [e["id"] for e in events]
    assert all(isinstance(i, int) for i in event_ids)
    assert event_ids == sorted(event_ids, reverse=True) and len(set(event_ids)) == 6
    for event in events:
        assert event["category"] == "session"
        assert ISO.match(event["occurredAt"]) and ISO.match(event["ingestedAt"])
    assert events[1]["payload"] == {"changes": {"label": "l3"}}
    first = (await api.get(f"/hub/session/{session_id}/events/history?limit=2")).json()
    assert [e["id"] for e in first["events"]] == event_ids[:2]
    rest = await api.get(
        f"/hub/session/{session_id}/events/history",
        params={"limit": 10, "beforeId": event_ids[1]},
    )
    assert [e["id"] for e in rest.json()["events"]] == event_ids[2:]


async def test_replay_is_synthesised_from_the_event_history(api: httpx.AsyncClient) -> None:
    session_id = await create(api, task="Build the thing")
    await api.patch(f"/hub/session/{session_id}", json={"tags": ["x"]})
    body = (await api.get(f"/hub/session/{session_id}/replay")).json()
    assert body["sessionId"] == session_id
    assert body["entriesSource"] == "event_history"
    counts = body["sourceCounts"]
    assert set(counts) == {"durableStream", "sessionEntries", "eventHistory"}
    assert counts["eventHistory"] == len(body["entries"]) >= 2
    allowed = {"message", "thinking", "tool_call", "tool_result", "task_result",
               "runtime_status", "runtime_output", "turn", "user_prompt"}  # fmt: skip
    for entry in body["entries"]:
        assert entry["type"] in allowed
        assert isinstance(entry["timestamp"], int) and entry["timestamp"] > 1_600_000_000_000
    assert body["entries"][0] == {**body["entries"][0], "type": "user_prompt",
                                  "content": "Build the thing"}  # fmt: skip


async def test_participants_and_presence(hub: Hub, api: httpx.AsyncClient) -> None:
    session_id = await create(api)
    path = f"/hub/session/{session_id}/participants"
    assert (await api.get(path)).json() == {"sessionId": session_id, "participants": []}
    everyone = (await api.get(path, params={"includeDisconnected": "true"})).json()
    [lead] = everyone["participants"]
    assert lead["id"] == hub.tenant.user_id
    assert lead["role"] == "lead" and lead["transport"] == "ws"
    assert ISO.match(lead["connectedAt"]) and ISO.match(lead["disconnectedAt"])
    assert isinstance(lead["metadata"], dict)
    admin = f"/hub/session/{session_id}/_admin"
    item = (await api.post(admin, json={"connectParticipant": "user_watcher"})).json()
    assert item["participantCount"] == 1 and item["observerCount"] == 1
    [watcher] = (await api.get(path)).json()["participants"]
    assert watcher["id"] == "user_watcher" and "disconnectedAt" not in watcher
    await api.post(admin, json={"connectParticipant": hub.tenant.user_id})
    assert (await listing(api))["sessions"]["websocket"][0]["participantCount"] == 2
    assert len((await api.get(path, params={"limit": 1})).json()["participants"]) == 1
    item = (await api.post(admin, json={"disconnectParticipants": True})).json()
    assert item["participantCount"] == 0 and item["observerCount"] == 0
    assert (await api.get(path)).json()["participants"] == []


async def test_loop_state(api: httpx.AsyncClient) -> None:
    standard = await create(api)
    body = (await api.get(f"/hub/session/{standard}/loop")).json()
    assert body == {"sessionId": standard, "workflowMode": "standard", "loop": None}
    loop_id = await create(api, loop={"goal": "green", "maxIterations": 4, "autoContinue": True})
    loop = (await api.get(f"/hub/session/{loop_id}/loop")).json()["loop"]
    assert loop["status"] == "running" and loop["iteration"] == 0
    assert loop["goal"] == "green" and loop["maxIterations"] == 4
    assert loop["autoContinue"] is True and loop["allowDetached"] is False
    assert isinstance(loop["startedAt"], int) and isinstance(loop["updatedAt"], int)
    bare = await create(api, loop={})
    bare_loop = (await api.get(f"/hub/session/{bare}/loop")).json()["loop"]
    assert "goal" not in bare_loop and "maxIterations" not in bare_loop
    admin = f"/hub/session/{loop_id}/_admin"
    item = (await api.post(admin, json={"loopStatus": "awaiting_input", "loopIteration": 3})).json()
    assert item["loopStatus"] == "awaiting_input" and item["loopIteration"] == 3
    loop = (await api.get(f"/hub/session/{loop_id}/loop")).json()["loop"]
    assert loop["status"] == "awaiting_input" and loop["iteration"] == 3
    answer = await api.post(f"/hub/session/{standard}/_admin", json={"loopStatus": "running"})
    assert_error(answer, 400, "CODER_INVALID_REQUEST")
    # Archiving stops a running loop: an archived session is never live.
    await api.post(f"/hub/session/{loop_id}/archive")
    loop = (await api.get(f"/hub/session/{loop_id}/loop")).json()["loop"]
    assert loop["status"] == "cancelled" and isinstance(loop["completedAt"], int)


async def test_admin_route_rejects_unknown_fields(api: httpx.AsyncClient) -> None:
    session_id = await create(api)
    admin = f"/hub/session/{session_id}/_admin"
    for body in ({"bogus": 1}, {"status": ""}, {"loopIteration": -1}, {"status": 3}, []):
        assert_error(await api.post(admin, json=body), 400, "CODER_INVALID_REQUEST")


async def test_users_are_everyone_whose_token_was_used_in_the_org(hub: Hub) -> None:
    first, second = hub.client(), hub.client(hub.tenant.token2)
    await first.get("/hub/sessions")
    await second.get("/hub/sessions")
    await hub.client(hub.tenant.other_token).get("/hub/sessions")
    body = (await first.get("/hub/users")).json()
    assert set(body) == {"users", "total", "limit", "offset"}
    assert body["total"] == 2 and body["offset"] == 0 and body["limit"] >= 2
    assert {u["userId"] for u in body["users"]} == {hub.tenant.user_id, hub.tenant.user2_id}
    assert find_nulls(body) == []
    for user in body["users"]:
        assert ISO.match(user["lastLoginAt"]) and ISO.match(user["lastSeenAt"])
        assert ISO.match(user["createdAt"]) and isinstance(user["displayName"], str)
    found = (await first.get("/hub/users", params={"search": "_B"})).json()
    assert [u["userId"] for u in found["users"]] == [hub.tenant.user2_id]
    page = (await first.get("/hub/users", params={"limit": 1, "offset": 1})).json()
    assert len(page["users"]) == 1 and page["total"] == 2
    assert page["limit"] == 1 and page["offset"] == 1


# -- routing ----------------------------------------------------------------------------


async def test_api_hub_prefix_serves_the_same_hub(api: httpx.AsyncClient) -> None:
    answer = await api.post("/api/hub/session", json={"task": "via the SDK path"})
    assert answer.status_code == 201
    session_id = answer.json()["sessionId"]
    assert (await api.get(f"/hub/session/{session_id}")).status_code == 200
    assert ids((await api.get("/api/hub/sessions")).json()) == [session_id]
    answer = await api.patch(f"/api/hub/session/{session_id}", json={"label": "L"})
    assert answer.json()["label"] == "L"
    events = await api.get(f"/api/hub/session/{session_id}/events/history")
    assert len(events.json()["events"]) == 2


async def test_unknown_routes_and_methods_answer_json_errors(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/hub/nothing-here"), 404, "CODER_NOT_FOUND")
    answer = await api.put("/hub/sessions")
    assert_error(answer, 405, "CODER_METHOD_NOT_ALLOWED")
    # A trailing slash is no route either: it was a 307 with an empty body, given before
    # any token was checked.
    for path in ("/hub/session/codesess_x/", "/hub/session/", "/hub/sessions/"):
        answer = await api.request("POST" if path == "/hub/session/" else "GET", path)
        assert_error(answer, 404, "CODER_NOT_FOUND")


async def test_admin_route_is_off_unless_enabled(tenant: Tenant) -> None:
    app = create_app(HubConfig(tokens=inprocess_config().tokens))
    try:
        async with httpx.AsyncClient(
            transport=LocalHubTransport(app),
            base_url="http://hub.test",
            headers={"Authorization": f"Bearer {tenant.token}"},
        ) as client:
            created = await client.post("/hub/session", json={"task": "t"})
            session_id = created.json()["sessionId"]
            answer = await client.post(
                f"/hub/session/{session_id}/_admin", json={"status": "paused"}
            )
            assert_error(answer, 404, "CODER_NOT_FOUND")
    finally:
        app.state.store.close()
