"""The status page in a real browser: a served hub, `reconciler watch` on it, a hand
edit, and headless Chromium (Debian's `chromium`, driven by Playwright) loading `/`,
filtering, opening the drifted session's page and checking what it shows; axe-core
(from npm, injected from its file: no CDN) finds no serious or critical violation at
desktop and phone width; screenshots of each are kept as artefacts (the folder is
printed). The watcher also notifies a JSON webhook on 127.0.0.1.

Skipped with the reason when chromium, npm or Playwright is missing; under CI=true a
missing chromium or npm fails (tests/tools.py). Bounded: every wait has a deadline,
every browser step a timeout.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubproc import start_hub
from test_e2e_watch import _sessions, _until, watching
from tools import require_tool
from webhook import receiver

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

AXE_VERSION = "4.10.3"
CANARY = "canary-browser-5ecret-4410"
DECLARED = "Declared label"
EDITED = "Edited by hand"
STEP_TIMEOUT_MS = 20_000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# No network of its own (updates, sync, QUIC), no GPU, no first-run dialogs.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def axe_js(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """axe-core's axe.min.js, installed once with npm into pytest's cache (or, with the
    cache plugin off, into this session's temp dir)."""
    cache = getattr(pytestconfig, "cache", None)
    name = f"axe-core-{AXE_VERSION}"
    prefix = cache.mkdir(name) if cache is not None else tmp_path_factory.mktemp(name)
    script = prefix / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file():
        npm = require_tool("npm")
        argv = [npm, "install", "--prefix", str(prefix), "--ignore-scripts", "--no-audit"]
        argv += ["--no-fund", "--save-exact", f"axe-core@{AXE_VERSION}"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not script.is_file():
            pytest.skip(f"npm could not install axe-core@{AXE_VERSION}: {done.stderr[-500:]}")
    return script


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium = require_tool("chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the test extra installs it")
    # launch() gives the browser a fresh temporary profile of its own (and removes it).
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield browser
        finally:
            browser.close()


def _manifests(root: Path) -> Path:
    path = root / "manifests"
    path.mkdir()
    docs = ["apiVersion: reconciler/v1\nkind: Project\nname: watched\n"]
    for name, tag in (("alpha", "nightly"), ("beta", "review"), ("gamma", "nightly")):
        docs.append(
            f"apiVersion: reconciler/v1\nkind: Session\nname: {name}\n"
            f"spec: {{task: t {name}, label: {DECLARED}, tags: [{tag}],"
            " env: {API_KEY: '${env:CANARY}'}}\n"
        )
    (path / "all.yaml").write_text("---\n".join(docs), encoding="utf-8")
    return path


def _serious(page: Any, axe: Path) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(axe))
    found: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in found["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _check_page(page: Any, axe: Path, shots: Path, name: str, width: str) -> None:
    page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
    assert _serious(page, axe) == [], f"{name} at {width} width"
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} scrolls sideways at {width} width"


def test_the_status_page_in_chromium(
    tmp_path: Path, browser: Any, axe_js: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANARY", CANARY)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots in {shots}")
    manifests = _manifests(tmp_path)
    with start_hub(tmp_path) as hub, receiver() as (hook, received):
        with watching(hub, tmp_path, manifests, "--self-heal") as watcher:
            _until("three sessions", lambda: len(_sessions(hub)) == 3)
            assert watcher.stop() == 0
        beta = _sessions(hub)["beta"]
        edit = httpx.patch(
            f"{hub.url}/hub/session/{beta['sessionId']}",
            json={"label": EDITED},
            headers=hub.headers,
            timeout=10,
        )
        assert edit.status_code == 200

        with watching(hub, tmp_path, manifests, "--notify", hook) as watcher:
            base = f"http://127.0.0.1:{watcher.port()}"

            def drifted() -> bool:
                status = httpx.get(f"{base}/status.json", timeout=5).json()
                return bool(status["counts"]["drifted"] == 1)

            _until("beta drifted on /status.json", drifted)
            context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
            page = context.new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)

            page.goto(f"{base}/")
            assert page.locator("h1").inner_text() == "Sessions of watched"
            counts = page.get_by_role("list", name="Counts")
            assert "1\ndrifted" in counts.inner_text()
            assert "2\nin-sync" in counts.inner_text()
            _check_page(page, axe_js, shots, "index", "desktop")

            page.get_by_label("State").select_option("drifted")
            page.get_by_role("button", name="Filter").click()
            page.wait_for_url("**/?*state=drifted*")
            rows = page.locator("tbody tr th[scope=row]")
            assert rows.all_inner_texts() == ["beta"]
            page.get_by_label("Tag").select_option("nightly")
            page.get_by_label("State").select_option("")
            page.get_by_role("button", name="Filter").click()
            page.wait_for_url("**/?*tag=nightly*")
            assert page.locator("tbody tr th[scope=row]").all_inner_texts() == ["alpha", "gamma"]

            page.goto(f"{base}/?state=drifted")
            page.get_by_role("link", name="beta", exact=True).click()
            page.wait_for_url("**/sessions/beta")
            assert "drifted" in page.locator("h1").inner_text()
            label_row = page.locator("table tr", has=page.locator("th", has_text="label"))
            cells = label_row.locator("td").all_inner_texts()
            assert cells[:3] == [EDITED, DECLARED, "the hub"]
            assert (
                "update"
                in page.get_by_role("heading", name="Last plan")
                .locator("xpath=following-sibling::p[1]")
                .inner_text()
            )
            assert CANARY not in page.content()
            _check_page(page, axe_js, shots, "session", "desktop")

            page.goto(f"{base}/history")
            assert "update beta (not applied)" in page.locator("tbody").inner_text()
            _check_page(page, axe_js, shots, "history", "desktop")

            phone = browser.new_context(viewport=PHONE, bypass_csp=True, is_mobile=True)
            small = phone.new_page()
            small.set_default_timeout(STEP_TIMEOUT_MS)
            for name, path in (
                ("index", "/"),
                ("session", "/sessions/beta"),
                ("history", "/history"),
            ):
                small.goto(f"{base}{path}")
                _check_page(small, axe_js, shots, name, "phone")
            phone.close()
            context.close()

            _until("the drift event", lambda: len(received) >= 1)
            assert watcher.stop() == 0
    assert received[0]["title"] == "watched: 1 session out of sync"
    assert CANARY not in json.dumps(received)
    assert hub.token not in watcher.log_path.read_text()
    assert sorted(p.name for p in shots.iterdir()) == [
        f"{n}-{w}.png" for n in ("history", "index", "session") for w in ("desktop", "phone")
    ]
    assert all(p.stat().st_size > 1000 for p in shots.iterdir())
