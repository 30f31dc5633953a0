"""Soak: 20 rounds of random manifest edits applied through a faulty served hub.

Each round edits the manifests (seeded random: add, drop, relabel, retag, change the
task, archive, re-activate) and runs ``reconciler apply --yes`` against a hub that
refuses 10% of requests (503) and loses 5% of responses after their effect. Applies
may partly fail: that is expected. Then the hub is restarted on the same database
without faults, one clean apply runs, and the hub must match the manifests exactly:
one live session per declared active name, none for archived or dropped names, no
duplicates, and every unmanaged session exactly as it was.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubproc import start_hub

from reconciler.cli.main import run
from reconciler.model import ARCHIVED_LIKE, Marker

PROJECT = "soak"
TOKEN, ORG, USER = "soak-token", "org_soak", "user_soak"
ROUNDS = 20
BUDGET_S = 60.0
FAULTS = ["--fail-rate", "0.1", "--lost-response-rate", "0.05", "--seed", "11"]


def write(root: Path, sessions: dict[str, dict[str, Any]]) -> None:
    for old in root.glob("*.yaml"):
        old.unlink()
    docs = [
        {
            "apiVersion": "reconciler/v1",
            "kind": "Project",
            "name": PROJECT,
            "policy": {"prune": "archive", "maxDestroyPercent": 100, "protectLive": False},
        }
    ]
    for name, s in sorted(sessions.items()):
        spec = {"task": s["task"], "label": s["label"], "tags": s["tags"], "state": s["state"]}
        docs.append({"apiVersion": "reconciler/v1", "kind": "Session", "name": name, "spec": spec})
    # JSON is YAML: one document per line of `---`.
    (root / "sessions.yaml").write_text("\n---\n".join(json.dumps(d) for d in docs) + "\n")


def edit(rng: random.Random, sessions: dict[str, dict[str, Any]], counter: list[int]) -> None:
    """One to three random edits; at least one active session always stays declared."""
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["add", "add", "drop", "label", "tags", "task", "archive", "activate"])
        names = sorted(sessions)
        active = [n for n in names if sessions[n]["state"] == "active"]
        if op == "add" or not names:
            counter[0] += 1
            sessions[f"s{counter[0]}"] = {
                "task": f"task {counter[0]}",
                "label": f"Session {counter[0]}",
                "tags": ["soak"],
                "state": "active",
            }
            continue
        name = rng.choice(names)
        s = sessions[name]
        if op == "drop" and len(active) > 1:
            del sessions[name]
        elif op == "label":
            s["label"] = f"{s['label'].split(' v')[0]} v{rng.randint(1, 99)}"
        elif op == "tags":
            s["tags"] = sorted(rng.sample(["soak", "a", "b", "c"], rng.randint(0, 3)))
        elif op == "task":
            s["task"] = f"{s['task'].split(' #')[0]} #{rng.randint(1, 99)}"
        elif op == "archive" and len(active) > 1:
            s["state"] = "archived"
        elif op == "activate":
            s["state"] = "active"


def everything(url: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    items: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        while True:
            page = http.get(
                "/hub/sessions",
                params={"includeArchived": "true", "limit": 500, "offset": len(items)},
            ).json()
            batch = page["sessions"]["websocket"]
            items += batch
            if not batch or len(items) >= page["total"]:
                return items


def apply(hub_url: str, manifests: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("AGENTUITY_SDK_KEY", TOKEN)
    monkeypatch.setenv("AGENTUITY_ORG_ID", ORG)
    return run(["--api-url", hub_url, "apply", str(manifests), "--yes", "--parallelism", "4"])


@pytest.mark.slow
@pytest.mark.subprocess
def test_random_edits_under_faults_then_a_clean_apply_match_the_manifests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    rng = random.Random(20240611)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    tokens = {TOKEN: (ORG, USER)}
    db_args = ["--db", str(tmp_path / "hub.sqlite3")]

    # Someone else's sessions, made before any fault is switched on.
    with start_hub(tmp_path, extra_args=db_args, tokens=tokens) as clean:
        with httpx.Client(base_url=clean.url, timeout=30) as http:
            for i in range(4):
                body = {"task": f"theirs {i}", "label": f"theirs {i}", "tags": ["other", "soak"]}
                if i == 3:
                    body["tags"].append(Marker("another-project", f"s{i}", "0" * 12).tag)
                answer = http.post(
                    "/hub/session", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
                )
                assert answer.status_code == 201
        unmanaged_before = {i["sessionId"]: i for i in everything(clean.url)}

    sessions: dict[str, dict[str, Any]] = {}
    counter = [0]
    codes: Counter[int] = Counter()
    with start_hub(tmp_path, extra_args=[*db_args, *FAULTS], tokens=tokens) as faulty:
        for _ in range(ROUNDS):
            edit(rng, sessions, counter)
            write(manifests, sessions)
            codes[apply(faulty.url, manifests, monkeypatch)] += 1
            capsys.readouterr()
            assert time.monotonic() - started < BUDGET_S, f"soak over budget after {codes}"
    # Partial failures are expected under faults; anything else is not.
    assert set(codes) <= {0, 1}, codes

    with start_hub(tmp_path, extra_args=db_args, tokens=tokens) as clean:
        code = apply(clean.url, manifests, monkeypatch)
        out, err = capsys.readouterr()
        assert code == 0, out + err
        assert run(["--api-url", clean.url, "plan", str(manifests), "--detailed-exitcode"]) == 0
        capsys.readouterr()
        items = everything(clean.url)

    by_id = {i["sessionId"]: i for i in items}
    # Unmanaged sessions: exactly as they were, every field of their list items.
    assert {i: by_id.get(i) for i in unmanaged_before} == unmanaged_before
    live: Counter[str] = Counter()
    for item in items:
        ours = [m for t in item["tags"] if (m := Marker.parse(t)) and m.project == PROJECT]
        if not ours:
            continue
        assert len(ours) == 1, item["tags"]
        if item["status"] in ARCHIVED_LIKE:
            continue
        name = ours[0].name
        live[name] += 1
        declared = sessions[name]
        assert declared["state"] == "active", (name, item["status"])
        assert item["label"] == declared["label"]
        assert sorted(t for t in item["tags"] if not t.startswith("reconciler:")) == sorted(
            declared["tags"]
        )
    wanted = {n for n, s in sessions.items() if s["state"] == "active"}
    assert set(live) == wanted
    assert all(count == 1 for count in live.values()), live
    assert time.monotonic() - started < BUDGET_S
