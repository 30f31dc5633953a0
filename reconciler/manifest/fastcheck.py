"""A validator compiled from our JSON Schemas into closures: a yes/no answer, fast.

jsonschema's validator costs about as much per document as libyaml's parse. This module
turns the schema (the same dict jsonschema reads) into nested closures for the keywords
our schemas use, and answers only "valid or not". When it says no, the caller runs
jsonschema to produce the precise, located messages, and jsonschema's verdict stands.

Soundness rule: the compiled check may reject something the schema accepts (the caller
then asks jsonschema, which accepts it), never the reverse. Where the exact semantics
would be subtle (``1.0`` as an integer, uniqueness across mixed types) it says no.
Compiling a schema that uses a keyword not handled here raises ``ValueError``, so the
schema cannot grow past what this module understands without a failing test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Check", "compile_schema"]

Check = Callable[[Any], bool]

# Keywords that never affect validity.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "title", "description", "default", "examples", "$comment"}
)
_HANDLED = _ANNOTATIONS | {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "items",
    "uniqueItems",
    "propertyNames",
    "allOf",
    "anyOf",
    "not",
    "if",
    "then",
    "$ref",
}


def _is_number(value: Any) -> bool:
    return (type(value) is int or type(value) is float) and not isinstance(value, bool)


_TYPE_CHECKS: dict[str, Check] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    # jsonschema also counts 1.0 as an integer: we say no and let it decide.
    "integer": lambda v: type(v) is int,
    "number": _is_number,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


def _true(_: Any) -> bool:
    return True


def _false(_: Any) -> bool:
    return False


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def ref(self, pointer: str) -> Check:
        if not pointer.startswith("#/"):
            raise ValueError(f"only local $ref is supported, not {pointer!r}")
        if pointer not in self.refs:
            # Placeholder first: a recursive schema refers to itself while compiling.
            slot: list[Check] = []
            self.refs[pointer] = lambda v: slot[0](v)
            target: Any = self.root
            for part in pointer[2:].split("/"):
                target = target[part]
            compiled = self.compile(target)
            slot.append(compiled)
            self.refs[pointer] = compiled
        return self.refs[pointer]

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return _true
        if schema is False:
            return _false
        if not isinstance(schema, Mapping):
            raise ValueError(f"not a schema: {schema!r}")
        unknown = set(schema) - _HANDLED
        if unknown:
            raise ValueError(f"keyword(s) not supported by the fast check: {sorted(unknown)}")
        checks: list[Check] = []
        if "$ref" in schema:
            pointer = schema["$ref"]
            checks.append(lambda v: self.refs[pointer](v))
            self.ref(pointer)
        if "type" in schema:
            types = schema["type"]
            if isinstance(types, str):
                checks.append(_TYPE_CHECKS[types])
            else:
                alts = [_TYPE_CHECKS[t] for t in types]
                checks.append(lambda v: any(c(v) for c in alts))
        if "const" in schema:
            checks.append(self.const(schema["const"]))
        if "enum" in schema:
            checks.append(self.enum(schema["enum"]))
        self.add_string(schema, checks)
        self.add_number(schema, checks)
        self.add_array(schema, checks)
        self.add_object(schema, checks)
        self.add_logic(schema, checks)
        return _all(checks)

    @staticmethod
    def const(expected: Any) -> Check:
        if type(expected) is not str:
            raise ValueError("the fast check supports string constants only")
        return lambda v: type(v) is str and v == expected

    @staticmethod
    def enum(values: Any) -> Check:
        if not all(type(x) is str for x in values):
            raise ValueError("the fast check supports string enums only")
        allowed = frozenset(values)
        return lambda v: type(v) is str and v in allowed

    @staticmethod
    def add_string(schema: Mapping[str, Any], checks: list[Check]) -> None:
        if "pattern" in schema:
            search = re.compile(schema["pattern"]).search
            checks.append(lambda v: type(v) is not str or search(v) is not None)
        if "minLength" in schema:
            least = int(schema["minLength"])
            checks.append(lambda v: type(v) is not str or len(v) >= least)

    @staticmethod
    def add_number(schema: Mapping[str, Any], checks: list[Check]) -> None:
        if "minimum" in schema:
            low = schema["minimum"]
            checks.append(lambda v: not _is_number(v) or v >= low)
        if "maximum" in schema:
            high = schema["maximum"]
            checks.append(lambda v: not _is_number(v) or v <= high)

    def add_array(self, schema: Mapping[str, Any], checks: list[Check]) -> None:
        if "items" in schema:
            item = self.compile(schema["items"])
            checks.append(lambda v: type(v) is not list or all(item(x) for x in v))
        if schema.get("uniqueItems") is True:

            def unique(v: Any) -> bool:
                if type(v) is not list:
                    return True
                # Only strings are compared here; anything else goes to jsonschema.
                return all(type(x) is str for x in v) and len(set(v)) == len(v)

            checks.append(unique)

    def add_object(self, schema: Mapping[str, Any], checks: list[Check]) -> None:
        props = {k: self.compile(s) for k, s in schema.get("properties", {}).items()}
        required = tuple(schema.get("required", ()))
        extra = schema.get("additionalProperties", True)
        extra_check = None if extra is True or extra is False else self.compile(extra)
        names = self.compile(schema["propertyNames"]) if "propertyNames" in schema else None
        if not (props or required or extra is not True or names):
            return
        closed = extra is False

        def check_object(v: Any) -> bool:
            if type(v) is not dict:
                return True
            for key in required:
                if key not in v:
                    return False
            for key, value in v.items():
                sub = props.get(key)
                if sub is not None:
                    if not sub(value):
                        return False
                elif closed or (extra_check is not None and not extra_check(value)):
                    return False
                if names is not None and not names(key):
                    return False
            return True

        checks.append(check_object)

    def add_logic(self, schema: Mapping[str, Any], checks: list[Check]) -> None:
        if "allOf" in schema:
            parts = [self.compile(s) for s in schema["allOf"]]
            checks.append(lambda v: all(p(v) for p in parts))
        if "anyOf" in schema:
            alts = [self.compile(s) for s in schema["anyOf"]]
            checks.append(lambda v: any(a(v) for a in alts))
        if "not" in schema:
            negated = self.compile(schema["not"])
            checks.append(lambda v: not negated(v))
        if "if" in schema:
            condition = self.compile(schema["if"])
            then = self.compile(schema.get("then", True))
            checks.append(lambda v: not condition(v) or then(v))
        elif "then" in schema:
            pass  # `then` without `if` has no effect


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _true
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)
    frozen = tuple(checks)

    def every(v: Any) -> bool:
        # A plain loop: measurably faster than all() over a generator on this hot path.
        for check in frozen:  # noqa: SIM110
            if not check(v):
                return False
        return True

    return every


def compile_schema(schema: Mapping[str, Any]) -> Check:
    """A function answering whether an instance is valid under ``schema`` (see above)."""
    return _Compiler(schema).compile(schema)
