"""The JSON Schemas: well-formed, generated from one source, documented.

That every example manifest names its schema and validates is tests/test_examples.py's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from docs_pages import page
from jsonschema import Draft202012Validator

from reconciler.manifest.schemagen import build_manifest_schema, build_project_schema, render

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "reconciler" / "schemas"


def _schema_files() -> list[Path]:
    return sorted(SCHEMAS.glob("*.schema.json"))


@pytest.mark.parametrize("path", _schema_files(), ids=lambda p: p.name)
def test_every_schema_is_a_valid_2020_12_schema(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/" + path.name)


@pytest.mark.parametrize(
    ("name", "build"),
    [("manifest", build_manifest_schema), ("project", build_project_schema)],
)
def test_shipped_schema_matches_its_source(name: str, build: Any) -> None:
    shipped = (SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8")
    assert shipped == render(build()), "run: python -m reconciler.manifest.schemagen"


def _walk(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, dict):
        out.append((path, schema))
        for key, value in schema.items():
            out.extend(_walk(value, f"{path}/{key}"))
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            out.extend(_walk(value, f"{path}/{i}"))
    return out


def _properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path, node in _walk(schema):
        for name, sub in node.get("properties", {}).items():
            if "/if/" not in path + "/":
                found[f"{path}/{name}"] = sub
    return found


@pytest.mark.parametrize("build", [build_manifest_schema, build_project_schema])
def test_objects_are_closed_and_fields_described(build: Any) -> None:
    schema = build()
    for path, node in _walk(schema):
        # The document root only dispatches on `kind`; each kind's branch is closed. Open
        # by design: env and metadata (the user's keys), a set's matrix (the user's names).
        open_maps = ("/env", "/metadata", "/matrix")
        if path and node.get("type") == "object" and not path.endswith(open_maps):
            assert node.get("additionalProperties") is False, path
    for path, sub in _properties(schema).items():
        if path.startswith("/properties/") or "$ref" in sub:
            continue  # the top-level dispatch restates kind/apiVersion; $ref targets are described
        assert sub.get("description"), f"no description: {path}"


def test_the_manifest_field_reference_names_every_field() -> None:
    """docs/reference/manifest-fields.md is generated from the schema (tests/test_docs.py
    checks it is current); this checks the generator leaves no field out."""
    reference = page("reference/manifest-fields.md")
    names = {path.rsplit("/", 1)[-1] for path in _properties(build_manifest_schema())}
    missing = sorted(n for n in names if f"`{n}`" not in reference and f".{n}`" not in reference)
    assert not missing, f"fields missing from the manifest field reference: {missing}"
