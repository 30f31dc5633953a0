"""Floods for the servers we run (`hub serve`, `watch --metrics-port`), from raw sockets.

Attackers of two kinds: ``half_heads`` connections that each send part of a request head
and then nothing, and ``trickled_bodies`` connections that send a whole head announcing
a large body and then one byte of it every ``trickle_every_s``. An attacker the server
closes opens a new connection (after ``RECONNECT_PAUSE_S``), so the pressure lasts the
whole flood. Meanwhile :func:`measure` sends legitimate requests, each on a fresh
connection, and times every one of them; :func:`descriptors` samples the server's open
file descriptors.

Bounded: at most ``half_heads + trickled_bodies`` connections open at once, everything
ends after ``seconds``, and the caller's server is on 127.0.0.1.

    stats, answers, fds = run_flood(url, pid, legit=[("GET", "/healthz", None)], ...)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "HALF_HEAD",
    "LEGIT_WITHIN_S",
    "Answer",
    "FloodStats",
    "assert_all_served",
    "descriptors",
    "flood",
    "measure",
    "open_half_sent",
    "run_flood",
    "summary",
]

# Every legitimate request is answered within this, flood or not.
LEGIT_WITHIN_S = 1.0
HALF_HEAD = b"GET /hub/sessions HTTP/1.1\r\nHost: hub\r\nAuthorization: Bea"
TRICKLED_LENGTH = 100_000
RECONNECT_PAUSE_S = 1.0
_CONNECT_TIMEOUT_S = 5.0


def _trickled_head(path: str, headers: dict[str, str]) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: flood\r\nContent-Type: application/json\r\n"
        f"{lines}Content-Length: {TRICKLED_LENGTH}\r\n\r\n{{"
    ).encode()


@dataclass
class FloodStats:
    """What the attackers saw."""

    connects: int = 0  # connections opened
    failed_connects: int = 0  # refused, reset or timed out while connecting
    closed_by_server: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # first line of any answer


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    assert host == "127.0.0.1", "floods go to a server of the test's own on 127.0.0.1"
    return host, int(port)


async def _attacker(
    host: str,
    port: int,
    head: bytes,
    trickle: bool,
    every_s: float,
    until: float,
    stats: FloodStats,
) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), _CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            stats.failed_connects += 1
            await asyncio.sleep(RECONNECT_PAUSE_S)
            continue
        stats.connects += 1
        try:
            writer.write(head)
            while loop.time() < until:
                try:
                    answer = await asyncio.wait_for(
                        reader.read(4096), min(every_s, max(0.0, until - loop.time()))
                    )
                except TimeoutError:
                    if trickle:
                        writer.write(b" ")
                    continue
                if answer:
                    stats.statuses[answer.split(b"\r\n", 1)[0].decode(errors="replace")] += 1
                    continue
                stats.closed_by_server += 1
                break
        except OSError:
            stats.closed_by_server += 1
        finally:
            writer.close()
        await asyncio.sleep(RECONNECT_PAUSE_S)


async def flood(
    url: str,
    *,
    half_heads: int,
    trickled_bodies: int,
    seconds: float,
    path: str = "/",
    headers: dict[str, str] | None = None,
    trickle_every_s: float = 1.0,
) -> FloodStats:
    """Run the attackers (module doc) against ``url`` for ``seconds``; the trickled
    bodies go to ``path`` with ``headers`` (a valid token gets them to the handler)."""
    host, port = _host_port(url)
    stats = FloodStats()
    until = asyncio.get_running_loop().time() + seconds
    kinds = [(HALF_HEAD, False)] * half_heads + [
        (_trickled_head(path, headers or {}), True)
    ] * trickled_bodies
    await asyncio.gather(
        *(_attacker(host, port, h, t, trickle_every_s, until, stats) for h, t in kinds)
    )
    return stats


async def open_half_sent(url: str, count: int) -> list[asyncio.StreamWriter]:
    """``count`` connections that each send part of a request head and then nothing
    (those the server refuses or drops under the flood are left out)."""
    host, port = _host_port(url)

    async def one() -> asyncio.StreamWriter | None:
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 20)
        except (OSError, TimeoutError):
            return None
        writer.write(HALF_HEAD)
        return writer

    opened = await asyncio.gather(*(one() for _ in range(count)))
    return [w for w in opened if w is not None]


@dataclass(frozen=True)
class Answer:
    """One legitimate request: its status (or the error instead) and how long it took."""

    what: str
    status: int | None
    error: str | None
    seconds: float


async def measure(
    url: str,
    requests: Sequence[tuple[str, str, Any]],
    *,
    count: int,
    every_s: float,
    headers: dict[str, str] | None = None,
    timeout_s: float = 10.0,
) -> list[Answer]:
    """``count`` legitimate requests, ``every_s`` apart, cycling through ``requests``
    (method, path, JSON body or None), each on a connection of its own; the time of each
    is from sending it (connecting included) to its answer, the client set up before."""
    answers: list[Answer] = []
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=timeout_s, limits=fresh
    ) as client:
        for index in range(count):
            method, path, body = requests[index % len(requests)]
            what = f"{method} {path}"
            started = time.monotonic()
            try:
                response = await client.request(method, path, json=body)
                status, error = response.status_code, None
            except httpx.HTTPError as exc:
                status, error = None, repr(exc)
            answers.append(Answer(what, status, error, time.monotonic() - started))
            await asyncio.sleep(every_s)
    return answers


async def descriptors(pid: int, until: float, every_s: float = 0.1) -> list[int]:
    """How many file descriptors ``pid`` has open, sampled until ``until`` (loop time)."""
    loop = asyncio.get_running_loop()
    samples: list[int] = []
    while loop.time() < until:
        try:
            samples.append(len(os.listdir(f"/proc/{pid}/fd")))
        except OSError:
            break  # gone (or no /proc): what was sampled stands
        await asyncio.sleep(every_s)
    return samples


def run_flood(
    url: str,
    pid: int,
    *,
    legit: Sequence[tuple[str, str, Any]],
    half_heads: int,
    trickled_bodies: int,
    seconds: float,
    legit_count: int,
    headers: dict[str, str] | None = None,
    path: str = "/",
    ramp_s: float = 1.5,
) -> tuple[FloodStats, list[Answer], list[int]]:
    """The flood (in a process of its own, so that the attackers' work does not delay the
    legitimate client), the legitimate requests (from ``ramp_s`` into it, spread over the
    rest) and the descriptor samples of ``pid``, all bounded by ``seconds``."""
    argv = [sys.executable, __file__, url, str(half_heads), str(trickled_bodies), str(seconds)]
    argv += [path, json.dumps(headers or {})]
    attack = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)

    async def scenario() -> tuple[list[Answer], list[int]]:
        until = asyncio.get_running_loop().time() + seconds
        fds = asyncio.create_task(descriptors(pid, until))
        await asyncio.sleep(ramp_s)
        every = max(0.0, (seconds - ramp_s - 0.5) / legit_count)
        answers = await measure(url, legit, count=legit_count, every_s=every, headers=headers)
        return answers, await fds

    try:
        answers, fds = asyncio.run(asyncio.wait_for(scenario(), seconds + 120))
        out, _ = attack.communicate(timeout=seconds + 60)
    finally:
        if attack.poll() is None:
            attack.kill()
            attack.wait()
    assert attack.returncode == 0, f"the flood failed: exit {attack.returncode}"
    found = json.loads(out)
    stats = FloodStats(**{**found, "statuses": Counter(found["statuses"])})
    return stats, answers, fds


def assert_all_served(answers: Sequence[Answer], ok: Sequence[int] = (200,)) -> None:
    """Every legitimate request answered ``ok`` within :data:`LEGIT_WITHIN_S`: none dropped,
    none refused (the attackers never finish a request, so there is always one to make
    room), none late."""
    assert answers
    failed = [a for a in answers if a.status not in ok]
    assert not failed, f"{summary(answers)}; failed: {failed[:5]}"
    late = [a for a in answers if a.seconds >= LEGIT_WITHIN_S]
    assert not late, f"{summary(answers)}; late: {late[:5]}"


def summary(answers: Sequence[Answer]) -> str:
    """Latency max and median, and the statuses, of the legitimate requests."""
    times = [a.seconds for a in answers]
    statuses = Counter(str(a.status or a.error) for a in answers)
    return (
        f"{len(answers)} legitimate requests: max {max(times):.3f}s, "
        f"median {statistics.median(times):.3f}s, statuses {dict(statuses)}"
    )


def _main(url: str, half_heads: str, bodies: str, seconds: str, path: str, headers: str) -> None:
    stats = asyncio.run(
        flood(
            url,
            half_heads=int(half_heads),
            trickled_bodies=int(bodies),
            seconds=float(seconds),
            path=path,
            headers=json.loads(headers),
        )
    )
    print(json.dumps({**vars(stats), "statuses": dict(stats.statuses)}))


if __name__ == "__main__":
    _main(*sys.argv[1:])
