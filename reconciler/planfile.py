"""Saved plans: ``plan --out FILE`` writes one, ``apply --plan FILE`` reads it back.

The file is the JSON plan document (``schemas/plan.schema.json``) with create and PATCH
bodies as written, so ``${env:...}`` references stay unresolved and no secret value is
ever in it, plus ``checksum``: sha256 over the canonical JSON of every other member.
A file that fails the checksum, the schema or the format version is refused.

Values under ``env`` are secret, so one written literally in a manifest (no
``${env:...}`` in it) cannot be saved: ``write_plan`` refuses the whole plan, naming
each such value's session, file and line, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from reconciler.errors import ManifestError, ManifestErrors, PlanFileError
from reconciler.manifest.envref import holds_reference
from reconciler.model import Plan, canonical_json
from reconciler.render.jsondoc import FORMAT_VERSION, plan_from_dict, plan_to_dict

__all__ = [
    "checksum",
    "literal_env_values",
    "plan_schema",
    "read_plan",
    "validate_plan_document",
    "write_plan",
]


@cache
def plan_schema() -> dict[str, Any]:
    """``schemas/plan.schema.json``, shipped inside the package."""
    text = resources.files("reconciler").joinpath("schemas/plan.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def checksum(document: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` over the canonical JSON of ``document`` without its checksum."""
    content = {k: v for k, v in document.items() if k != "checksum"}
    return "sha256:" + hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def validate_plan_document(document: Any) -> None:
    """Raise :class:`PlanFileError` unless ``document`` follows the plan schema."""
    validator = Draft202012Validator(plan_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise PlanFileError(
            f"saved plan does not follow the plan schema at {where}: {first.message}"
        )


def literal_env_values(plan: Plan) -> list[ManifestError]:
    """One error per ``env`` value of a create body that holds no ``${env:...}``."""
    found: list[ManifestError] = []
    for action in plan.actions:
        env = (action.body or {}).get("env")
        if not isinstance(env, Mapping):
            continue
        for key, value in env.items():
            if holds_reference(value):
                continue
            where = action.source
            found.append(
                ManifestError(
                    f"session {action.name}: spec.env.{key} is written literally (here or "
                    "in the Project's defaults.env), and a saved plan never holds a value "
                    f'under env (they are secret): use "${{env:{key}}}" and set it where '
                    "apply runs",
                    file=where.file if where else None,
                    line=where.line if where else None,
                    field=f"spec.env.{key}",
                )
            )
    return found


def write_plan(plan: Plan, path: str | os.PathLike[str]) -> str:
    """Write ``plan`` to ``path`` (atomically, mode 0600); return its checksum.

    Raises :class:`ManifestErrors` (exit 65), writing nothing, when a value under
    ``env`` is literal (see :func:`literal_env_values`).
    """
    literal = literal_env_values(plan)
    if literal:
        raise ManifestErrors(literal)
    document = plan_to_dict(plan, mask_env=False)
    document["checksum"] = checksum(document)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(document["checksum"])


def read_plan(path: str | os.PathLike[str]) -> Plan:
    """The Plan saved at ``path``; :class:`PlanFileError` if unreadable or tampered with."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanFileError(f"cannot read saved plan {path}: {exc.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanFileError(f"saved plan {path} is not JSON (line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise PlanFileError(f"saved plan {path} is not a JSON object")
    version = document.get("formatVersion")
    if version != FORMAT_VERSION:
        raise PlanFileError(
            f"saved plan {path} has format version {version!r}; this reconciler reads "
            f"version {FORMAT_VERSION}"
        )
    recorded = document.get("checksum")
    if recorded is None:
        raise PlanFileError(f"saved plan {path} has no checksum")
    if recorded != checksum(document):
        raise PlanFileError(
            f"saved plan {path} fails its checksum: it was changed after it was made"
        )
    validate_plan_document(document)
    return plan_from_dict(document)
