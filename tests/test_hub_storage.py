"""The hub's SQLite store: durability, ordering, search, and speed at benchmark sizes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from reconciler.connect import LocalHubTransport
from reconciler.hub.app import create_app
from reconciler.hub.config import HubConfig, TokenGrant
from reconciler.hub.local import LOCAL_TOKEN, local_app
from reconciler.hub.records import AdminChanges, SessionChanges
from reconciler.hub.storage import HubStore
from reconciler.hub.validation import parse_create


def test_data_survives_closing_and_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "hub.sqlite3")
    store = HubStore(path)
    made = store.create_session("org", "user", parse_create({"task": "t", "tags": ["x"]}))
    store.update_session("org", made.session_id, SessionChanges(label="L"))
    store.touch_user("org", "user")
    store.close()
    assert store.closed
    again = HubStore(path)
    try:
        kept = again.get_session("org", made.session_id)
        assert kept.label == "L" and kept.tags == ("x",)
        assert [e.event for e in again.all_events("org", made.session_id)] == [
            "session_created",
            "session_updated",
        ]
        users, total = again.list_users("org", search=None, limit=10, offset=0)
        assert total == 1 and users[0].user_id == "user"
        assert again._conn is not None
        mode = again._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    finally:
        again.close()


def test_equal_creation_times_keep_a_stable_newest_first_order() -> None:
    store = HubStore(clock=lambda: 1_700_000_000_000)
    try:
        made = [
            store.create_session("org", "u", parse_create({"task": f"{i}"})).session_id
            for i in range(5)
        ]
        first, total = store.list_sessions("org", limit=3)
        rest, _ = store.list_sessions("org", limit=3, offset=3)
        assert total == 5
        assert [r.session_id for r in first + rest] == made[::-1]
    finally:
        store.close()


async def test_the_embedded_hub_lets_its_token_act_in_any_org(tmp_path: Path) -> None:
    app = local_app(str(tmp_path / "local.sqlite3"))
    try:
        async with httpx.AsyncClient(
            transport=LocalHubTransport(app),
            base_url="http://local",
            headers={"Authorization": f"Bearer {LOCAL_TOKEN}"},
        ) as api:
            created = await api.post("/hub/session", params={"orgId": "org_x"}, json={"task": "t"})
            assert created.status_code == 201
            in_x = await api.get("/hub/sessions", headers={"x-agentuity-orgid": "org_x"})
            assert in_x.json()["total"] == 1
            assert (await api.get("/hub/sessions")).json()["total"] == 0  # org_local
    finally:
        app.state.store.close()


# Benchmarks hold 10,000+ sessions; a quarter of that keeps the suite quick and still
# shows whether listing scales (pages late in the order cost as much as early ones).
_MANY = 2_500


@pytest.mark.slow
async def test_thousands_of_sessions_list_fast(tmp_path: Path) -> None:
    config = HubConfig(
        db_path=str(tmp_path / "big.sqlite3"), tokens={"t": TokenGrant("org", "user")}
    )
    app = create_app(config)
    store: HubStore = app.state.store
    try:
        started = time.monotonic()
        for i in range(_MANY):
            body = {"task": f"task {i}", "tags": [f"batch-{i % 100}", "bench"]}
            store.create_session("org", "user", parse_create(body))
        fill_s = time.monotonic() - started
        async with httpx.AsyncClient(
            transport=LocalHubTransport(app),
            base_url="http://hub.test",
            headers={"Authorization": "Bearer t"},
        ) as api:
            started = time.monotonic()
            seen = 0
            for offset in range(0, _MANY, 500):
                page = await api.get("/hub/sessions", params={"limit": 500, "offset": offset})
                assert page.json()["total"] == _MANY
                seen += len(page.json()["sessions"]["websocket"])
            list_s = time.monotonic() - started
            started = time.monotonic()
            found = await api.get("/hub/sessions", params={"search": "BATCH-42", "limit": 500})
            search_s = time.monotonic() - started
        assert seen == _MANY
        assert found.json()["total"] == _MANY // 100
        print(f"\nfill {_MANY}: {fill_s:.2f}s; list {_MANY // 500} pages of 500: {list_s:.2f}s; "
              f"search: {search_s * 1000:.0f}ms")  # fmt: skip
        # Generous bounds (shared 2-core machine); typical numbers are far below.
        assert list_s < 15 and search_s < 2
    finally:
        store.close()


def test_a_list_page_shows_each_session_as_its_whole_record_does() -> None:
    # The page reads a projection of the row; its items must be those of the full record.
    from reconciler.hub import serialize

    store = HubStore()
    try:
        bodies: list[dict[str, object]] = [
            {"task": "plain"},
            {
                "task": "full",
                "label": "Full ü",
                "agent": "claude-code",
                "visibility": "private",
                "workflowMode": "loop",
                "loop": {"goal": "g", "maxIterations": 3},
                "tags": ["a", "b"],
                "skills": [{"skillId": "s", "repo": "o/r"}],
                "repo": {"fullName": "o/r", "branch": "main"},
                "repos": [{"fullName": "o/x"}, {"fullName": "o/y", "branch": "dev"}],
                "workspaceId": "ws_1",
                "env": {"SECRET": "v"},
                "metadata": {"k": [1, 2]},
            },
        ]
        for body in bodies:
            made = store.create_session("org", "u", parse_create(body))
            store.admin_update("org", made.session_id, AdminChanges(connect_participant="obs"))
        page, total = store.list_sessions("org", include_archived=True, limit=10)
        assert total == len(bodies)
        for summary in page:
            whole = store.get_session("org", summary.session_id)
            assert serialize.list_item(summary) == serialize.list_item(whole)
            assert summary.observer_count == 1 and summary.participant_count == 1
    finally:
        store.close()


def test_timestamps_format_as_before_to_the_millisecond() -> None:
    from datetime import UTC, datetime

    from reconciler.hub.timefmt import iso

    def reference(ms: int) -> str:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"

    samples = [0, 1, 999, 1000, 1001, -1, -999, -1000, -1001, 1_700_000_000_123]
    samples += [17 * 10**11 + i * 7_919 for i in range(2000)]
    for ms in samples:
        assert iso(ms) == reference(ms), ms


def test_archiving_records_the_loop_it_cancels_and_the_participants_it_disconnects() -> None:
    store = HubStore()
    try:
        made = store.create_session(
            "org", "u", parse_create({"task": "t", "workflowMode": "loop", "loop": {"goal": "g"}})
        )
        store.admin_update("org", made.session_id, AdminChanges(connect_participant="viewer"))
        archived = store.archive_session("org", made.session_id)
        assert archived.status == "archived" and archived.loop_status == "cancelled"
        events = [(e.event, e.payload) for e in store.all_events("org", made.session_id)]
        assert events[-3:] == [
            ("session_archived", events[-3][1]),
            ("loop_updated", {"loopStatus": "cancelled", "iteration": 0}),
            ("session_leave", {"participantId": "viewer"}),
        ]
        store.archive_session("org", made.session_id)  # idempotent: nothing more recorded
        assert len(store.all_events("org", made.session_id)) == len(events)
    finally:
        store.close()


def _fill(store: HubStore, count: int, *, org: str = "org") -> list[str]:
    return [
        store.create_session(org, "u", parse_create({"task": f"t{i}"})).session_id
        for i in range(count)
    ]


def _reference(store: HubStore, org: str, limit: int, offset: int, archived: bool) -> list[str]:
    """The page as a plain LIMIT/OFFSET query answers it, through another connection."""
    assert store._conn is not None
    where = "org_id = ?" + ("" if archived else " AND status != 'archived'")
    rows = store._conn.execute(
        f"SELECT session_id FROM sessions WHERE {where}"
        " ORDER BY created_ms DESC, pk DESC LIMIT ? OFFSET ?",
        (org, limit, offset),
    ).fetchall()
    return [r[0] for r in rows]


def _ids(store: HubStore, *, limit: int, offset: int, archived: bool = False) -> list[str]:
    page, _ = store.list_sessions("org", limit=limit, offset=offset, include_archived=archived)
    return [s.session_id for s in page]


def test_pages_in_any_order_are_exactly_limit_offset_pages() -> None:
    # Equal creation times everywhere: the key of a page must carry the tie-breaker.
    store = HubStore(clock=lambda: 1_700_000_000_000)
    try:
        _fill(store, 23)
        for offset in (0, 5, 10, 15, 20, 10, 3, 12, 0, 22, 23, 30):
            assert _ids(store, limit=5, offset=offset) == _reference(store, "org", 5, offset, False)
        _fill(store, 1, org="other")  # another org's listing is its own
        other, total = store.list_sessions("other", limit=5)
        assert total == 1 and len(other) == 1
    finally:
        store.close()


def test_every_write_between_pages_is_seen_as_offset_paging_sees_it() -> None:
    ticks = iter(range(1_000_000, 2_000_000))
    store = HubStore(clock=lambda: next(ticks))
    try:
        made = _fill(store, 12)
        assert _ids(store, limit=4, offset=0) == made[::-1][:4]
        # A newer session pushes every later item one offset further.
        newest = _fill(store, 1)[0]
        page, total = store.list_sessions("org", limit=4, offset=4)
        assert total == 13
        assert [s.session_id for s in page] == made[::-1][3:7]
        # Archiving (not listed without includeArchived) pulls them one earlier...
        store.archive_session("org", made[5])
        assert _ids(store, limit=4, offset=8) == _reference(store, "org", 4, 8, False)
        assert store.list_sessions("org", limit=1)[1] == 12
        # ...and an update of the listed fields leaves the order alone.
        store.update_session("org", newest, SessionChanges(label="renamed"))
        assert _ids(store, limit=4, offset=4, archived=True) == _reference(store, "org", 4, 4, True)
    finally:
        store.close()


def test_writes_through_another_connection_to_the_file_are_seen(tmp_path: Path) -> None:
    path = str(tmp_path / "hub.sqlite3")
    store, other = HubStore(path), HubStore(path)
    try:
        made = _fill(store, 6)
        assert _ids(store, limit=3, offset=0) == made[::-1][:3]
        other.delete_session("org", made[4])  # the second newest, on the first page
        page, total = store.list_sessions("org", limit=3, offset=3)
        assert total == 5
        assert [s.session_id for s in page] == [made[1], made[0]]
    finally:
        store.close()
        other.close()


def _sqlite_steps(store: HubStore, sweep: Callable[[], None]) -> int:
    """SQLite virtual-machine steps (in thousands) that ``sweep`` costs: no clock."""
    assert store._conn is not None
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    store._conn.set_progress_handler(count, 1000)
    try:
        sweep()
    finally:
        store._conn.set_progress_handler(None, 0)
    return steps[0]


def test_a_sweep_through_every_page_costs_linear_work() -> None:
    # Counting every match and skipping every earlier row on each page made a sweep
    # quadratic: 100,000 sessions took 5.3 s of the hub's CPU, 10,000 took 0.08 s.
    def steps_for(count: int) -> int:
        store = HubStore()
        try:
            _fill(store, count)
            return _sqlite_steps(
                store,
                lambda: [
                    store.list_sessions("org", limit=10, offset=offset)
                    for offset in range(0, count, 10)
                ],
            )
        finally:
            store.close()

    small, large = steps_for(500), steps_for(1_500)
    # Three times the sessions: linear work measured 3.05x as much, quadratic 8.3x.
    assert large < 4 * small, (small, large)
