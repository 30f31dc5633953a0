"""Check one document against the manifest schema; turn failures into located errors.

jsonschema-rs answers first, valid or not (about 60 times faster than jsonschema); only
a document it rejects goes through jsonschema, the reference, whose errors are mapped
back to the offending YAML node (so jsonschema is imported only then). Values under
``env`` are secret: no message here ever echoes one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import jsonschema_rs
from yaml.nodes import ScalarNode

from reconciler.apifacts import ENV_NAME
from reconciler.errors import ManifestError
from reconciler.fields import is_secret_path
from reconciler.manifest.envref import REF_PREFIX, find_malformed
from reconciler.manifest.yamlread import RawDocument, located, node_at
from reconciler.masking import SENSITIVE
from reconciler.suggest import did_you_mean

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError  # type: ignore[import-untyped]

__all__ = [
    "check_document",
    "fast_check",
    "field_path",
    "load_schema",
    "reference_errors_of",
    "schema_errors",
]

_NAME_HINTS = {
    ("name",): "lowercase letters, digits and '-', starting with a letter or digit",
}


def load_schema(name: str) -> dict[str, Any]:
    """A schema shipped in ``reconciler/schemas`` by name (``manifest``, ``project``...)."""
    text = (resources.files("reconciler") / "schemas" / f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator
    from jsonschema.validators import extend  # type: ignore[import-untyped]

    # JSON Schema's patterns are ECMA-262's, where `$` ends the text: jsonschema reads
    # them with Python's `re`, where `$` also matches before a last newline, so a name
    # "reviewer\n" (YAML's `name: |`) passed here after jsonschema-rs refused it.
    checker = extend(Draft202012Validator, {"pattern": _ecma_pattern})
    return checker(load_schema("manifest"))


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """The ``pattern`` keyword with ECMA-262's ``$``: the end of the text only."""
    from jsonschema import ValidationError

    if isinstance(instance, str) and not _python_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _python_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` for ``re``: a closing unescaped ``$`` (every anchored pattern of the
    schema ends so) becomes ``\\Z``."""
    escaped = len(pattern[:-1]) - len(pattern[:-1].rstrip("\\"))
    if pattern.endswith("$") and escaped % 2 == 0:
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


@cache
def fast_check() -> jsonschema_rs.Draft202012Validator:
    """The fast yes/no check of the manifest schema (``.is_valid(document)``)."""
    return jsonschema_rs.Draft202012Validator(load_schema("manifest"))


def field_path(path: Sequence[Any]) -> str:
    """``spec.skills[0].skillId``: a path as errors name it."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


def _secret(path: Sequence[Any]) -> bool:
    return is_secret_path(path)


def _show(value: Any, secret: bool) -> str:
    if secret:
        return SENSITIVE
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# Why a plain scalar is no string: said beside a type error that wanted one.
_QUOTE_HINT = "YAML reads true, false, yes, no, on, off and numbers unquoted as values"


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null" if value is None else type(value).__name__


_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "null": "null",
}


def _locate(
    doc: RawDocument, error: ValidationError, message: str, key: Any = None
) -> ManifestError:
    path = list(error.absolute_path)
    if doc.node is None:
        return doc.error(path, message)
    node, key_node = node_at(doc.node, [*path, key] if key is not None else path)
    target = key_node if key is not None and key_node is not None else node
    return located(doc.file, target, message)


def _text_hint(doc: RawDocument, path: list[Any]) -> str:
    """What to do about a number or boolean where text is wanted: `task: yes`,
    `version: 1.10` (a plain scalar YAML read as a value) are quoted; a quoted one is a
    value only by a tag written on it (`label: !!int "42"`), which quoting cannot undo."""
    node = node_at(doc.node, path)[0] if doc.node is not None else None
    if isinstance(node, ScalarNode) and node.style:  # quoted or a block ("" is plain)
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        return f"; its tag {tag} makes it one: drop the tag for the text"
    return f"; quote it for the text ({_QUOTE_HINT})"


def _translate(doc: RawDocument, error: ValidationError) -> list[ManifestError]:
    path = list(error.absolute_path)
    where = field_path(path)
    secret = _secret(path)
    kind = error.validator
    value = error.instance
    in_names = "propertyNames" in error.relative_schema_path
    if in_names:
        # `value` is the offending key; the path is the mapping's. Keys are not secret.
        if path and path[-1] == "metadata":
            message = f"{where}: the key 'reconciler' is reserved for the tool"
        else:
            message = f"{where}: {value!r} is not a valid variable name ({ENV_NAME})"
        return [_locate(doc, error, message, key=value)]
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = error.schema.get("properties", {})
        extras = [k for k in value if k not in allowed]
        names = ", ".join(sorted(allowed))
        return [
            _locate(
                doc,
                error,
                f"{where}: unknown field {k!r}{did_you_mean(str(k), allowed)} (allowed: {names})",
                key=k,
            )
            for k in extras
        ]
    if kind == "required":
        message = f"{where}: {error.message}"
    elif kind == "type":
        expected = error.validator_value
        words = (
            _TYPE_WORDS.get(expected, expected)
            if isinstance(expected, str)
            else " or ".join(_TYPE_WORDS.get(t, t) for t in expected)
        )
        message = f"{where}: must be {words}, not {_type_name(value)}"
        wants_text = expected == "string" or (isinstance(expected, list) and "string" in expected)
        if wants_text and isinstance(value, bool | int | float):
            message += _text_hint(doc, path)
    elif kind == "enum":
        choices = ", ".join(str(v) for v in error.validator_value)
        message = f"{where}: {_show(value, secret)} is not one of {choices}"
        if isinstance(value, str) and not secret:
            message += did_you_mean(value, [str(v) for v in error.validator_value], n=1)
    elif kind == "const":
        message = f"{where}: must be {error.validator_value!r}, not {_show(value, secret)}"
    elif kind == "anyOf":
        options = [str(v) for sub in error.validator_value if "enum" in sub for v in sub["enum"]]
        message = (
            f"{where}: {_show(value, secret)} is not one of {', '.join(options)} "
            "(or a ${env:NAME} reference)"
            if options
            else f"{where}: {_show(value, secret)} matches none of the allowed forms"
        )
        if isinstance(value, str) and not secret:
            message += did_you_mean(value, options, n=1)
    elif kind == "not" and not isinstance(value, str):
        # A tag's reserved-prefix rule met a value that is no string: its type error
        # says what is wrong, and this one would show the value (an alias may have put
        # it under env too).
        return []
    elif kind == "not" and isinstance(value, str) and value.startswith("reconciler:"):
        message = (
            f"{where}: {_show(value, secret)}: the prefix 'reconciler:' is reserved for "
            "the tool's marker tags"
        )
    elif kind == "pattern" and tuple(path[-1:]) in _NAME_HINTS:
        limit = "40" if doc.value.get("kind") == "Project" else "63"
        message = (
            f"{where}: {_show(value, secret)} is not a valid name: use "
            f"{_NAME_HINTS[tuple(path[-1:])]}, at most {limit} characters"
        )
    elif kind == "pattern":
        message = f"{where}: {_show(value, secret)} does not match {error.validator_value}"
    elif kind == "minimum":
        message = f"{where}: must be at least {error.validator_value}"
    elif kind == "maximum":
        message = f"{where}: must be at most {error.validator_value}"
    elif kind == "minLength":
        message = f"{where}: must not be empty"
    elif kind == "uniqueItems":
        message = f"{where}: items must be unique"
    else:
        message = f"{where}: invalid value" if secret else f"{where}: {error.message}"
    return [_locate(doc, error, message)]


def reference_errors_of(value: Any) -> list[ValidationError]:
    """The reference validator's errors for ``value`` (a document), untranslated, in the
    order of the places they are about as ``value`` holds them: jsonschema meets the
    keys ``additionalProperties`` judges in a set's order, which follows string
    hashing, and the same manifests would list their errors differently run to run."""
    indexes: dict[int, dict[Any, int]] = {}  # each mapping's keys, numbered once

    def place(error: ValidationError) -> tuple[int, ...]:
        at: Any = value
        order = []
        for part in error.absolute_path:
            if isinstance(at, dict):
                numbered = indexes.get(id(at))
                if numbered is None:
                    numbered = indexes[id(at)] = {k: i for i, k in enumerate(at)}
                if part not in numbered:
                    break
                order.append(numbered[part])
            elif isinstance(at, list) and isinstance(part, int) and 0 <= part < len(at):
                order.append(part)
            else:
                break
            at = at[part]
        return tuple(order)

    return sorted(_validator().iter_errors(value), key=place)


def schema_errors(doc: RawDocument) -> list[ManifestError]:
    """Every schema violation of ``doc``, located at its node (empty when valid)."""
    if fast_check().is_valid(doc.value):
        return []
    found: dict[str, ManifestError] = {}
    for error in reference_errors_of(doc.value):
        for problem in _translate(doc, error):
            # The top level and the kind's branch both require apiVersion: say it once.
            found.setdefault(problem.located(), problem)
    if not found:  # the two validators disagree: refused all the same, never let through
        return _fast_errors(doc)
    return list(found.values())


def _fast_errors(doc: RawDocument) -> list[ManifestError]:
    """jsonschema-rs's own errors, located: for a document only it refuses (jsonschema
    reads a few characters, U+FEFF among them, as `\\s` where ECMA-262 does not)."""
    errors = []
    for error in fast_check().iter_errors(doc.value):
        path = list(error.instance_path)
        # Its message quotes the value: only a plain scalar's, never a secret's, never a
        # mapping's or list's (one may hold env values).
        if _secret(path) or not isinstance(error.instance, str | int | float | bool):
            said = "is not valid here (`reconciler schema manifest` prints the rules)"
        else:
            said = error.message
        errors.append(doc.error(path, f"{field_path(path)}: {said}"))
    return errors or [doc.error([], "does not match the manifest schema (`reconciler schema`)")]


def check_document(doc: RawDocument) -> list[ManifestError]:
    """Schema violations and malformed ``${env:...}`` references of one document."""
    errors = schema_errors(doc)
    for ref in doc.refs:
        for fragment in find_malformed(ref.value):
            shown = "in a secret value" if ref.secret else repr(fragment)
            nested = REF_PREFIX in fragment[len(REF_PREFIX) :]
            errors.append(
                ManifestError(
                    f"malformed reference {shown}: use ${{env:NAME}} or "
                    f"${{env:NAME:-default}}, NAME matching {ENV_NAME}"
                    + ("; a default cannot hold a reference" if nested else ""),
                    file=doc.file,
                    line=ref.line,
                    column=ref.column,
                )
            )
    return errors
