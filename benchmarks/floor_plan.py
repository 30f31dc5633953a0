"""The naive script's work through the libraries `reconciler plan` is built on: a floor.

    python benchmarks/floor_plan.py URL PATH... [--page-size 100] [--in-flight 6]

What ``naive_plan.py`` does (libyaml's ``CSafeLoader``, a dict compare), with the
library costs the tool carries by design and none of its own code:

- ``click`` imported (the command line), and httpx without its own command line, as
  the tool imports it;
- every document checked against the manifest schema by ``jsonschema-rs``, yes or no
  (the plan's fast check: its located errors are worded only for an invalid one);
- the listing through httpx's asynchronous client, the first page alone and then
  ``--in-flight`` pages at once: the window the plan's fan-out keeps against a hub on
  the same machine (4 to 7), so that a hub far away is listed in two round trips; and
  for a plain ``http://`` hub no CA bundle loaded, as the tool's client does.

``bench_plan_naive.py`` runs it beside the tool and the script: the floor's CPU over the
script's is what these libraries add to the script's work. The tool's over the floor's
is its own code's cost net of what it saves: it reads YAML through libyaml's composer
and its own builder, cheaper than PyYAML's constructor, which the floor keeps from the
script. It imports nothing of ``reconciler``: the schema is read from the package's
files. Prints its verdict as one JSON line, as the script does.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# httpx as the tool's command line imports it (reconciler.cli.main): without its own
# command line (rich, pygments), which `import httpx` loads whenever they are installed.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import click  # noqa: E402
import httpx  # noqa: E402
import jsonschema_rs  # noqa: E402
from naive_plan import declared, headers, verdict  # noqa: E402

__all__ = ["main"]


def manifest_validator() -> jsonschema_rs.Validator:
    """The tool's manifest schema, from its package's files (nothing imported)."""
    spec = importlib.util.find_spec("reconciler")
    assert spec is not None and spec.submodule_search_locations
    package = Path(next(iter(spec.submodule_search_locations)))
    schema = json.loads((package / "schemas" / "manifest.schema.json").read_text())
    return jsonschema_rs.Draft202012Validator(schema)


def check(validator: jsonschema_rs.Validator) -> Callable[[Any], None]:
    def valid(doc: Any) -> None:
        if not validator.is_valid(doc):
            raise click.ClickException("a manifest is invalid")

    return valid


async def listed(url: str, page_size: int, in_flight: int) -> list[dict[str, Any]]:
    """Every session of the org, archived included: the first page, then the rest
    ``in_flight`` at a time."""
    # No TLS with a plain-http hub: no CA bundle, as reconciler/client/core.py's
    # _tls_verify gives (the benchmarks name no proxy).
    plain = url.startswith("http://")
    verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT) if plain else True
    async with httpx.AsyncClient(base_url=url, headers=headers(), verify=verify) as api:

        async def page(offset: int) -> dict[str, Any]:
            params = {"limit": page_size, "offset": offset, "includeArchived": "true"}
            answer = await api.get("/hub/sessions", params=params)
            document: dict[str, Any] = answer.raise_for_status().json()
            return document

        first = await page(0)
        window = asyncio.Semaphore(in_flight)

        async def held(offset: int) -> dict[str, Any]:
            async with window:
                return await page(offset)

        rest = range(page_size, first["total"], page_size)
        pages = [first, *await asyncio.gather(*map(held, rest))]
    return [item for p in pages for item in p["sessions"]["websocket"] + p["sessions"]["sandbox"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--in-flight", type=int, default=6)
    args = parser.parse_args()
    project, specs = declared(args.paths, check(manifest_validator()))
    items = asyncio.run(listed(args.url, args.page_size, args.in_flight))
    print(json.dumps(verdict(project, specs, items)))


if __name__ == "__main__":
    main()
