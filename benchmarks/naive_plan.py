"""The no-change check a user might write instead of `reconciler plan`: the naive peer.

    python benchmarks/naive_plan.py URL PATH... [--page-size 100]

Reads every manifest with libyaml (``CSafeLoader``), pages through the hub's session
list with httpx, matches sessions by their marker tag and compares the fields PATCH can
change as plain values. The token and org come from ``AGENTUITY_SDK_KEY`` and
``AGENTUITY_ORG_ID``. No validation, no ``${env:...}``, no safety rules, no explanation:
the shortcut that ``bench_plan_naive.py`` holds ``reconciler plan`` against. Prints its
verdict as one JSON line: how many sessions it would create, update and archive.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# httpx without its own command line, as the tool imports it (reconciler.cli.main):
# `import httpx` imports httpx._main (click, rich, pygments) whenever those are
# installed, as they are here for the project's linters but not where httpx alone is
# installed. The script then paid some 30 ms the tool does not, and the ratios favoured
# the tool by that much.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import httpx  # noqa: E402
import yaml  # noqa: E402

MARKER = "reconciler:"


def declared(
    paths: list[str], check: Callable[[Any], object] | None = None
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The project's name and each session's spec, project defaults filled in.
    ``check`` is called with each document (``floor_plan.py`` validates them); the
    script itself passes none."""
    project: dict[str, Any] = {}
    specs: dict[str, dict[str, Any]] = {}
    for path in map(Path, paths):
        for file in sorted(path.rglob("*.yaml")) if path.is_dir() else [path]:
            with open(file, "rb") as handle:
                for doc in yaml.load_all(handle, Loader=yaml.CSafeLoader):
                    if check is not None:
                        check(doc)
                    if doc["kind"] == "Project":
                        project = doc
                    elif doc["kind"] == "Session":
                        specs[doc["name"]] = doc["spec"]
    defaults = project.get("defaults", {})
    return project["name"], {name: {**defaults, **spec} for name, spec in specs.items()}


def listed(api: httpx.Client, page_size: int) -> list[dict[str, Any]]:
    """Every session of the org, archived included, one page after another."""
    items: list[dict[str, Any]] = []
    while True:
        params = {"limit": page_size, "offset": len(items), "includeArchived": "true"}
        page = api.get("/hub/sessions", params=params).raise_for_status().json()
        batch = page["sessions"]["websocket"] + page["sessions"]["sandbox"]
        items += batch
        if not batch or len(items) >= page["total"]:
            return items


def differs(spec: dict[str, Any], item: dict[str, Any]) -> bool:
    have = {
        "label": item.get("label"),
        "agent": item.get("defaultAgent"),
        "visibility": item.get("visibility"),
        "tags": sorted(t for t in item.get("tags", []) if not t.startswith(MARKER)),
        "skills": item.get("skills", []),
    }
    want = {**spec, "tags": sorted(spec.get("tags", []))}
    return any(want[field] != have[field] for field in have if field in spec)


def verdict(
    project: str, specs: dict[str, dict[str, Any]], items: list[dict[str, Any]]
) -> dict[str, int]:
    """How many sessions the script would create, update and archive."""
    prefix = f"{MARKER}{project}/"
    managed: dict[str, dict[str, Any]] = {}
    for item in items:
        for tag in item.get("tags", []):
            if tag.startswith(prefix) and item["status"] != "archived":
                managed[tag[len(prefix) :].split("@")[0]] = item
    return {
        "create": sum(name not in managed for name in specs),
        "update": sum(name in managed and differs(s, managed[name]) for name, s in specs.items()),
        "archive": sum(name not in specs for name in managed),
    }


def headers() -> dict[str, str]:
    """The token and org, from the environment."""
    return {
        "Authorization": f"Bearer {os.environ['AGENTUITY_SDK_KEY']}",
        "x-agentuity-orgid": os.environ["AGENTUITY_ORG_ID"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    project, specs = declared(args.paths)
    with httpx.Client(base_url=args.url, headers=headers()) as api:
        items = listed(api, args.page_size)
    print(json.dumps(verdict(project, specs, items)))


if __name__ == "__main__":
    main()
