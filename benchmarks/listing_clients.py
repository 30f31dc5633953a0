"""What listing 100 pages costs through each of httpx's ways to send them: a profile.

    python benchmarks/listing_clients.py [--sessions 10000] [--runs 5] [--in-flight 6]

No benchmark (it has no target): the figures behind ``docs/benchmarks.md``'s account of
the libraries' floor. Seeds a served hub with ``--sessions`` small sessions (pages of
100), then lists them all, in fresh processes, alternating, ``--runs`` times each:

- ``sync``: httpx's synchronous client, one page after another (the naive script's way);
- ``threads``: the synchronous client in ``--in-flight`` threads after the first page;
- ``async``: the asynchronous client with ``--in-flight`` pages at once after the first
  (the plan's way; anyio's import is in it, as it is in the plan).

Each process imports httpx and asyncio and loads no CA bundle (a plain-http hub, as the
tool's client). Prints each way's CPU (user + system, from ``wait4``: the whole process,
so start-up and those imports are in every figure and the differences are the
listing's) as the median and range, and each over ``sync``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import LoadWatch, Spread, measured_child, seeded_hub

MODES = ("sync", "threads", "async")
PAGE_SIZE = 100

CHILD = """
import asyncio, json, os, ssl, sys
from concurrent.futures import ThreadPoolExecutor
import httpx
mode, url, in_flight, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
headers = {"Authorization": "Bearer " + os.environ["AGENTUITY_SDK_KEY"],
           "x-agentuity-orgid": os.environ["AGENTUITY_ORG_ID"]}
verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
def params(offset):
    return {"limit": size, "offset": offset, "includeArchived": "true"}
def items(page):
    return page["sessions"]["websocket"] + page["sessions"]["sandbox"]
if mode == "async":
    async def run():
        async with httpx.AsyncClient(base_url=url, headers=headers, verify=verify) as api:
            async def get(offset):
                answer = await api.get("/hub/sessions", params=params(offset))
                return answer.raise_for_status().json()
            first = await get(0)
            window = asyncio.Semaphore(in_flight)
            async def held(offset):
                async with window:
                    return await get(offset)
            rest = range(size, first["total"], size)
            return [first, *await asyncio.gather(*map(held, rest))]
    pages = asyncio.run(run())
else:
    with httpx.Client(base_url=url, headers=headers, verify=verify) as api:
        def get(offset):
            return api.get("/hub/sessions", params=params(offset)).raise_for_status().json()
        pages = [get(0)]
        rest = range(size, pages[0]["total"], size)
        if mode == "threads":
            with ThreadPoolExecutor(in_flight) as pool:
                pages += pool.map(get, rest)
        else:
            pages += map(get, rest)
print(json.dumps({"sessions": sum(len(items(p)) for p in pages)}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=6)
    args = parser.parse_args(argv)
    load = LoadWatch()
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        child = Path(tmp) / "list_child.py"
        child.write_text(CHILD)
        with seeded_hub(Path(tmp), args.sessions, per_file=500, shape="small") as (hub, _, env):
            for _ in range(args.runs):
                for mode in MODES:
                    argv_ = [str(child), mode, hub.url, str(args.in_flight), str(PAGE_SIZE)]
                    seconds, _peak, _code, out = measured_child(argv_, env)
                    if f'"sessions": {args.sessions}' not in out:
                        raise SystemExit(f"error: {mode} listed {out.strip()}")
                    cpu[mode].append(seconds)
    load.end()
    pages = -(-args.sessions // PAGE_SIZE)
    print(f"sessions:  {args.sessions} ({pages} pages), {args.in_flight} in flight")
    for mode in MODES:
        over = Spread.of([a / b for a, b in zip(cpu[mode], cpu["sync"], strict=True)])
        print(f"{mode:8s} CPU {Spread.of(cpu[mode]).text(' s', 3)}; over sync: {over.text('x')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
