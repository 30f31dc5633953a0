"""The local hub's boundary: authentication, org isolation, body limits, no 500s.

In-process through an ASGI client (fast, so the fuzzing can be thorough), and
once over a real socket with the shared served hub for what only a socket shows
(chunked bodies with no declared length).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hubproc import HubProcess, Tenant
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import fields
from reconciler.hub.app import create_app
from reconciler.hub.config import HubConfig, TokenGrant
from reconciler.hub.requests import MAX_BODY_BYTES

TOKEN_A, ORG_A, USER_A = "token-a", "org_a", "user_a"
TOKEN_B, ORG_B, USER_B = "token-b", "org_b", "user_b"
PREFIXES = ("/hub", "/api/hub")
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def endpoints(session_id: str) -> list[tuple[str, str]]:
    """Every (method, path) the hub serves, under both prefixes, plus discovery."""
    out = [("GET", "/coder")]
    for p in PREFIXES:
        s = f"{p}/session/{session_id}"
        out += [
            ("POST", f"{p}/session"),
            ("GET", f"{p}/sessions"),
            ("GET", f"{p}/users"),
            ("GET", s),
            ("PATCH", s),
            ("DELETE", s),
            ("POST", f"{s}/archive"),
            ("POST", f"{s}/resume"),
            ("GET", f"{s}/loop"),
            ("GET", f"{s}/replay"),
            ("GET", f"{s}/participants"),
            ("GET", f"{s}/events/history"),
        ]
    return out


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class SyncHub:
    """A synchronous face on an in-process ASGI client (a 500 comes back as a response)."""

    def __init__(self, app: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://hub.test",
        )

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.request(method, path, **kw))

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, **kw)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


@pytest.fixture
def client() -> Iterator[SyncHub]:
    config = HubConfig(
        tokens={TOKEN_A: TokenGrant(ORG_A, USER_A), TOKEN_B: TokenGrant(ORG_B, USER_B)}
    )
    app = create_app(config)
    c = SyncHub(app)
    try:
        yield c
    finally:
        c.close()
        app.state.store.close()


def create(client: SyncHub, token: str, **body: Any) -> str:
    answer = client.post(
        "/hub/session", json={"task": "secret task", "label": "L", **body}, headers=auth(token)
    )
    assert answer.status_code == 201, answer.text
    session_id: str = answer.json()["sessionId"]
    return session_id


def send(client: SyncHub, method: str, path: str, **kw: Any) -> httpx.Response:
    if method in ("POST", "PATCH") and "content" not in kw and "json" not in kw:
        kw["json"] = {"task": "t"} if path.endswith("/session") else {}
    return client.request(method, path, **kw)


# -- authentication ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        auth("wrong"),
        auth(TOKEN_A + "x"),
        auth(TOKEN_A[:-1]),
        {"Authorization": f"Basic {TOKEN_A}"},
        {"Authorization": "Bearer "},
        {"Authorization": TOKEN_A},
        {"Authorization": f"Bearer {TOKEN_A.upper()}"},
    ],
    ids=["none", "wrong", "longer", "prefix", "basic", "empty", "no-scheme", "case"],
)
def test_every_endpoint_refuses_without_a_valid_token(
    client: SyncHub, headers: dict[str, str]
) -> None:
    session_id = create(client, TOKEN_A)
    for method, path in endpoints(session_id):
        answer = send(client, method, path, headers=headers)
        assert answer.status_code == 401, (method, path, answer.status_code)
        assert answer.json()["code"], answer.text
        assert TOKEN_A not in answer.text
    # Nothing was changed by any of those requests.
    listed = client.get("/hub/sessions", headers=auth(TOKEN_A)).json()
    assert [s["sessionId"] for s in listed["sessions"]["websocket"]] == [session_id]
    assert listed["sessions"]["websocket"][0]["status"] == "active"


# -- isolation --------------------------------------------------------------------------


def test_a_token_never_sees_another_orgs_sessions_users_or_data(client: SyncHub) -> None:
    mine = create(client, TOKEN_A, tags=["org-a-only"], env={"K": "org-a-secret"})
    theirs = create(client, TOKEN_B, label="B's")
    for p in PREFIXES:
        listed = client.get(
            f"{p}/sessions", params={"includeArchived": "true"}, headers=auth(TOKEN_B)
        ).json()
        assert [s["sessionId"] for s in listed["sessions"]["websocket"]] == [theirs]
        assert listed["total"] == 1
        searched = client.get(
            f"{p}/sessions", params={"search": "org-a-only"}, headers=auth(TOKEN_B)
        ).json()
        assert searched["sessions"]["websocket"] == [] and searched["total"] == 0
        users = client.get(f"{p}/users", headers=auth(TOKEN_B)).text
        assert USER_A not in users
        for method, path in endpoints(mine):
            if path.endswith(("/session", "/sessions", "/users", "/coder")):
                continue
            answer = send(client, method, path, headers=auth(TOKEN_B))
            assert answer.status_code == 404, (method, path, answer.status_code)
            assert "org-a-secret" not in answer.text and "secret task" not in answer.text
        # Naming the other org outright is refused, by query and by header.
        for kw in ({"params": {"orgId": ORG_A}}, {"headers": {"x-agentuity-orgid": ORG_A}}):
            headers = {**auth(TOKEN_B), **kw.get("headers", {})}
            answer = client.get(f"{p}/sessions", params=kw.get("params"), headers=headers)
            assert answer.status_code in (401, 403, 404), answer.status_code
            assert mine not in answer.text
    # Org A's session is untouched by everything B tried.
    got = client.get(f"/hub/session/{mine}", headers=auth(TOKEN_A)).json()
    assert got["status"] == "active" and got["tags"] == ["org-a-only"]


# -- malformed and oversize bodies --------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_malformed_json_is_400_and_oversize_is_413(client: SyncHub, prefix: str) -> None:
    session_id = create(client, TOKEN_A)
    targets = [("POST", f"{prefix}/session"), ("PATCH", f"{prefix}/session/{session_id}")]
    for method, path in targets:
        for bad in (b"{not json", b"", b"\xff\xfe", b"[1, 2", b"NaN", b'{"task": "t"} x'):
            answer = client.request(
                method,
                path,
                content=bad,
                headers={**auth(TOKEN_A), "Content-Type": "application/json"},
            )
            assert answer.status_code == 400, (method, bad, answer.status_code)
        big = json.dumps({"task": "x" * (MAX_BODY_BYTES + 10)}).encode()
        answer = client.request(
            method, path, content=big, headers={**auth(TOKEN_A), "Content-Type": "application/json"}
        )
        assert answer.status_code == 413, (method, answer.status_code)
    assert (
        len(client.get("/hub/sessions", headers=auth(TOKEN_A)).json()["sessions"]["websocket"]) == 1
    )


# -- fuzzing: no input is a 500 -----------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Every spec field the registry declares (a field added there is fuzzed too).
SPEC_FIELDS = st.sampled_from([f.name for f in fields.FIELDS])
BODIES = JSON | st.dictionaries(SPEC_FIELDS, JSON, max_size=6)
ALLOWED = {200, 201, 400, 404, 409, 413, 422}


@FUZZ
@given(body=BODIES)
def test_fuzzed_create_bodies_never_500(client: SyncHub, body: Any) -> None:
    answer = client.post("/hub/session", json=body, headers=auth(TOKEN_A))
    assert answer.status_code in ALLOWED, (body, answer.status_code, answer.text)
    if answer.status_code == 201:
        # Whatever was accepted can be read back, listed and serialised.
        session_id = answer.json()["sessionId"]
        assert client.get(f"/hub/session/{session_id}", headers=auth(TOKEN_A)).status_code == 200
        assert client.get("/hub/sessions", headers=auth(TOKEN_A)).status_code == 200


@FUZZ
@given(
    body=BODIES,
    query=st.dictionaries(
        st.sampled_from(["limit", "offset", "includeArchived", "search"]),
        st.text(max_size=12),
        max_size=3,
    ),
)
def test_fuzzed_patch_bodies_and_queries_never_500(
    client: SyncHub, body: Any, query: dict[str, str]
) -> None:
    session_id = create(client, TOKEN_A)
    answer = client.patch(f"/api/hub/session/{session_id}", json=body, headers=auth(TOKEN_A))
    assert answer.status_code in ALLOWED, (body, answer.status_code, answer.text)
    for path in ("/hub/sessions", "/hub/users", f"/hub/session/{session_id}/events/history"):
        listed = client.get(path, params=query, headers=auth(TOKEN_A))
        assert listed.status_code in ALLOWED, (path, query, listed.status_code, listed.text)
    assert client.get(f"/hub/session/{session_id}", headers=auth(TOKEN_A)).status_code == 200


# -- over a real socket -----------------------------------------------------------------


def test_served_hub_refuses_unauthenticated_and_chunked_oversize(
    served_hub: HubProcess, tenant: Tenant
) -> None:
    with httpx.Client(base_url=served_hub.url, timeout=30) as http:
        created = http.post("/hub/session", json={"task": "t"}, headers=auth(tenant.token))
        session_id = created.json()["sessionId"]
        for method, path in endpoints(session_id):
            for headers in ({}, auth("wrong")):
                answer = send(http, method, path, headers=headers)  # type: ignore[arg-type]
                assert answer.status_code == 401, (method, path, answer.status_code)

        def chunks() -> Iterator[bytes]:
            yield b'{"task": "'
            for _ in range(MAX_BODY_BYTES // 65536 + 2):
                yield b"x" * 65536
            yield b'"}'

        answer = http.post(
            "/hub/session",
            content=chunks(),
            headers={**auth(tenant.token), "Content-Type": "application/json"},
        )
        assert answer.status_code == 413
        listed = http.get("/hub/sessions", headers=auth(tenant.token)).json()
        assert listed["total"] == 1


def test_a_saved_plan_naming_no_org_applies_only_with_the_token_it_was_made_with(
    served_hub: HubProcess,
    tenant: Tenant,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No --org, AGENTUITY_ORG_ID or orgId: the token's own org is where a plan applies,
    # so a plan replayed with another org's token would create there.
    from reconciler.cli.main import run

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "all.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nname: tokened\n---\n"
        "apiVersion: reconciler/v1\nkind: Session\nname: r2\nspec: {task: t}\n"
    )
    saved = tmp_path / "plan.json"
    hub = ["--api-url", served_hub.url]
    monkeypatch.setenv("AGENTUITY_SDK_KEY", tenant.token)
    assert run([*hub, "plan", str(folder), "--out", str(saved)]) == 0
    text = saved.read_text()
    assert '"credential": "pbkdf2-sha256:' in text and tenant.token not in text
    capsys.readouterr()
    monkeypatch.setenv("AGENTUITY_SDK_KEY", tenant.other_token)
    assert run([*hub, "apply", "--plan", str(saved), str(folder)]) == 4
    assert "it was made with another token and names no org" in capsys.readouterr().err
    other = httpx.get(
        f"{served_hub.url}/hub/sessions",
        headers={"Authorization": f"Bearer {tenant.other_token}"},
    ).json()
    assert other["total"] == 0
    monkeypatch.setenv("AGENTUITY_SDK_KEY", tenant.token)
    assert run([*hub, "apply", "--plan", str(saved), str(folder)]) == 0
