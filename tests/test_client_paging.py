"""list_all_sessions: concurrent pages, de-duplication, listings that change underneath."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from clientkit import make_client
from hubproc import child_environ, start_hub

from reconciler.client import CoderClient, paging
from reconciler.client.core import LIST_CONCURRENCY


class FakeList:
    """A hub's session list, newest first, whose content tests change between requests."""

    def __init__(
        self,
        n: int,
        *,
        cap: int | None = None,
        send_total: bool = True,
        on_request: Callable[[FakeList, int], None] | None = None,
        latency: float = 0.0,
    ) -> None:
        self.ids = [f"s{i:04d}" for i in range(n, 0, -1)]
        self.next_id = n + 1
        self.cap = cap
        self.send_total = send_total
        self.on_request = on_request
        self.latency = latency
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.params: list[dict[str, str]] = []

    def create(self, count: int = 1) -> None:
        for _ in range(count):
            self.ids.insert(0, f"s{self.next_id:04d}")
            self.next_id += 1

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        number = self.requests
        self.params.append(dict(request.url.params))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            # Let the other pages start (measures concurrency); a far hub's round trip.
            await asyncio.sleep(self.latency)
            if self.on_request:
                self.on_request(self, number)
            offset = int(request.url.params.get("offset", 0))
            limit = int(request.url.params.get("limit", 100))
            if self.cap:
                limit = min(limit, self.cap)
            items = [{"sessionId": i, "label": i} for i in self.ids[offset : offset + limit]]
            body: dict[str, Any] = {"sessions": {"websocket": items, "sandbox": []}}
            if self.send_total:
                body["total"] = len(self.ids)
            return httpx.Response(200, json=body)
        finally:
            self.in_flight -= 1


def client_for(fake: FakeList, **kwargs: Any) -> CoderClient:
    return make_client(fake, **kwargs)


@pytest.mark.parametrize("n", [0, 1, 99, 100, 101, 250, 1000])
async def test_stable_listing_costs_one_request_per_page(n: int) -> None:
    fake = FakeList(n)
    async with client_for(fake) as client:
        items = await client.list_all_sessions(include_archived=True)
    assert [i["sessionId"] for i in items] == fake.ids
    assert fake.requests == max(1, math.ceil(n / 100))
    assert all(p["includeArchived"] == "true" and p["limit"] == "100" for p in fake.params)


async def test_pages_are_fetched_concurrently_but_bounded() -> None:
    fake = FakeList(2000)
    async with client_for(fake, page_size=50, list_concurrency=4) as client:
        items = await client.list_all_sessions()
    assert len(items) == 2000
    assert fake.requests == 40
    assert fake.max_in_flight == 4


async def test_from_a_far_hub_every_remaining_page_goes_out_at_once() -> None:
    # 20 pages: page 0, then the other 19 together, so two round trips in all. A round
    # trip of 30 ms is many pages' worth of our CPU (a fraction of a millisecond each).
    fake = FakeList(2000, latency=0.03)
    async with client_for(fake) as client:
        items = await client.list_all_sessions()
    assert len(items) == 2000
    assert fake.requests == 20
    assert fake.max_in_flight == 19


async def test_the_fan_out_is_capped() -> None:
    fake = FakeList(5000, latency=0.03)  # 49 pages after the first: more than the cap
    async with client_for(fake) as client:
        items = await client.list_all_sessions()
    assert len(items) == 5000
    assert fake.requests == 50
    assert fake.max_in_flight == LIST_CONCURRENCY == 32


async def test_a_hub_that_answers_at_once_gets_the_least_fan_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As a hub in this very process (the embedded one): the first page's wall time all
    # spent on our CPU. More connections would only cost CPU.
    monkeypatch.setattr(time, "process_time", time.perf_counter)
    fake = FakeList(5000)
    async with client_for(fake) as client:
        items = await client.list_all_sessions()
    assert len(items) == 5000
    assert fake.requests == 50
    assert fake.max_in_flight == paging.MIN_FAN_OUT == 4


@pytest.mark.parametrize(
    ("wall", "cpu", "cap", "expected"),
    [
        (0.0025, 0.002, 32, 4),  # same machine: the floor
        (0.020, 0.002, 32, 30),  # three pages in flight per page of CPU in a round trip
        (0.057, 0.004, 32, 32),  # 50 ms away (a connection's first page: 4 ms of CPU)
        (0.052, 0.002, 8, 8),  # a caller's lower cap wins
        (0.052, 0.002, 1, 1),  # one at a time (bench_plan_latency's sequential paging)
        (0.003, 0.002, 3, 3),  # a cap under the floor is the cap
        (0.002, 0.003, 32, 4),  # CPU past the wall (other threads): the floor
        (0.0, 0.0, 32, 32),  # nothing measured (a coarse clock): the cap
    ],
)
def test_fan_out(wall: float, cpu: float, cap: int, expected: int) -> None:
    assert paging.fan_out(wall, cpu, cap) == expected


async def test_sessions_created_while_paging_push_none_out() -> None:
    # Three creates land after page 0: every page shifts by three, and the last three
    # original sessions move past the pages planned from the first `total`.
    def churn(fake: FakeList, n: int) -> None:
        if n == 2:
            fake.create(3)

    fake = FakeList(300, on_request=churn)
    async with client_for(fake) as client:
        items = await client.list_all_sessions()
    ids = [i["sessionId"] for i in items]
    assert len(ids) == len(set(ids))  # de-duplicated
    assert set(ids) == set(fake.ids)  # nothing missing, the new ones included
    assert fake.requests == 3 + 4  # one inconsistent sweep, then a consistent one


async def test_sessions_deleted_while_paging_make_none_slip_through() -> None:
    def churn(fake: FakeList, n: int) -> None:
        if n == 2:
            del fake.ids[0:5]  # five newest deleted: later items move to earlier pages

    fake = FakeList(300, on_request=churn)
    async with client_for(fake) as client:
        items = await client.list_all_sessions()
    assert {i["sessionId"] for i in items} == set(fake.ids)
    assert len(items) == 295  # the consistent sweep alone: deleted ones not resurrected


async def test_listing_that_never_settles_returns_the_union() -> None:
    def churn(fake: FakeList, n: int) -> None:
        fake.create(1)

    fake = FakeList(250, on_request=churn)
    original = set(fake.ids)
    async with client_for(fake) as client:
        items = await client.list_all_sessions()
    ids = {i["sessionId"] for i in items}
    assert original <= ids
    assert len(ids) == len(items)
    assert fake.requests <= 3 * 4  # bounded: three sweeps


async def test_server_capping_the_page_size_is_followed() -> None:
    fake = FakeList(120, cap=25)
    async with client_for(fake) as client:
        items = await client.list_all_sessions()
    assert [i["sessionId"] for i in items] == fake.ids
    assert fake.requests == 5


async def test_without_total_pages_are_read_until_a_short_one() -> None:
    fake = FakeList(230, send_total=False)
    async with client_for(fake) as client:
        items = await client.list_all_sessions(search="x")
    assert [i["sessionId"] for i in items] == fake.ids
    assert fake.requests == 3
    assert all(p["search"] == "x" for p in fake.params)


async def test_page_size_is_configurable() -> None:
    fake = FakeList(30)
    async with client_for(fake, page_size=10) as client:
        await client.list_all_sessions()
    assert fake.requests == 3
    assert [p["offset"] for p in fake.params] == ["0", "10", "20"]


async def test_each_page_is_seen_as_it_arrives() -> None:
    fake = FakeList(250)
    pages: list[list[str]] = []
    async with client_for(fake) as client:
        items = await client.list_all_sessions(
            on_page=lambda page: pages.append([i["sessionId"] for i in page])
        )
    assert sorted(len(p) for p in pages) == [50, 100, 100]
    assert sorted(i for p in pages for i in p) == sorted(fake.ids)
    assert [i["sessionId"] for i in items] == fake.ids


async def test_converted_listing_keeps_only_the_converted_values_deduplicated() -> None:
    def grow(fake: FakeList, number: int) -> None:
        if number == 2:
            fake.create(3)  # the later pages shift: the same ids come twice

    fake = FakeList(250, on_request=grow)
    seen: list[str] = []

    def convert(item: dict[str, Any]) -> tuple[str, int]:
        seen.append(item["sessionId"])
        return item["sessionId"], len(item)

    async with client_for(fake) as client:
        values = await client.list_all_converted(convert, lambda v: v[0])
    assert [v[0] for v in values] == fake.ids  # every session once, in listing order
    assert all(v == (v[0], 2) for v in values)
    assert len(seen) > len(values)  # each item converted as its page arrived


async def test_a_total_past_the_page_limit_is_refused_not_queued() -> None:
    # A hub that says twenty million sessions and sends one per page: refused after the
    # first page, where every offset was queued at once.
    from reconciler.client.paging import MAX_PAGES
    from reconciler.errors import ProtocolError

    async def lying(request: httpx.Request) -> httpx.Response:
        items = [{"sessionId": f"s{request.url.params.get('offset')}"}]
        body = {"sessions": {"websocket": items, "sandbox": []}, "total": 20_000_000}
        return httpx.Response(200, json=body)

    requests = 0

    async def counted(request: httpx.Request) -> httpx.Response:
        nonlocal requests
        requests += 1
        return await lying(request)

    async with make_client(counted) as client:
        with pytest.raises(ProtocolError, match=f"more than the {MAX_PAGES} a listing may take"):
            await client.list_all_sessions()
    assert requests == 1


async def test_a_listing_without_a_total_past_the_page_limit_is_refused() -> None:
    # No total, and full pages for ever: refused at the bound, never a partial listing.
    from reconciler.client import paging
    from reconciler.errors import ProtocolError

    async def endless(offset: int, limit: int) -> paging.Page[str]:
        return [f"s{offset + i}" for i in range(limit)], None

    with pytest.raises(ProtocolError, match="goes on past"):
        await paging.collect_all(endless, key=str, page_size=1, concurrency=4)


# A fresh process's listing, the window it chose printed (paging.fan_out spied on).
_FRESH_LISTING = """
import asyncio, json, sys
from reconciler.client import paging
from reconciler.client.core import CoderClient

chosen = []
fan_out = paging.fan_out

def spy(wall, cpu, cap):
    chosen.append(fan_out(wall, cpu, cap))
    return chosen[-1]

paging.fan_out = spy

async def main():
    url, token, org = sys.argv[1:4]
    async with CoderClient(url, token=token, org_id=org, page_size=5) as client:
        items = await client.list_all_sessions()
    print(json.dumps({"items": len(items), "chosen": chosen}))

asyncio.run(main())
"""


@pytest.mark.subprocess
def test_a_fresh_process_far_from_its_hub_fans_out_near_the_cap(tmp_path: Path) -> None:
    # A process's first request also loads httpx's network backend (about 12 ms of CPU);
    # charged to the first page, it made a hub 30 ms away look near: 8 pages in flight
    # instead of about 30. MockTransport never loads it: only a fresh process shows it.
    with start_hub(tmp_path, extra_args=("--latency-ms", "30")) as hub:

        async def seed() -> None:
            async with CoderClient(hub.url, token=hub.token, org_id=hub.org_id) as client:
                await asyncio.gather(*(client.create_session({"task": f"t{i}"}) for i in range(40)))

        asyncio.run(seed())
        done = subprocess.run(
            [sys.executable, "-c", _FRESH_LISTING, hub.url, hub.token, hub.org_id],
            env=child_environ(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["items"] == 40
    [window] = found["chosen"]
    assert window >= 16, window
