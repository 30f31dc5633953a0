"""Every spec field, declared once: what it is, and what a value of it means.

One :class:`SpecField` per field of a Session's ``spec`` (and a Project's ``defaults``),
in export order (the order ``export`` writes them and plans show a create body). Each
says its manifest name and the names the hub reads it under (``agent`` is also
``defaultAgent``) and reports it under, whether PATCH can change it, the value the hub
holds when it is left out, whether it is secret, and how values are normalised and
compared (:attr:`SpecField.compare`). The JSON Schemas (``manifest.schemagen``), the
planner (mutable diff, replacement, the marker hash), ``export``, the renderers and the
hub's request validation read these; a field is added here.

:func:`meaning` is the create-only form as the hub would hold it, with what the hub
would fill in left out: spelling out a default, leaving a field out, ``{}`` or ``[]``
for an absent map or list, key order and repeats in a set are never a difference.
No I/O; imports only ``apifacts``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.apifacts import (
    LOOP_FLAG_DEFAULTS,
    VISIBILITIES,
    VISIBILITY_ALIASES,
    WORKFLOW_MODES,
)

__all__ = [
    "CREATE_ONLY_FIELDS",
    "FIELDS",
    "FIELD_ORDER",
    "IGNORABLE_CHANGES",
    "MUTABLE_FIELDS",
    "REPORTED_CREATE_ONLY",
    "SECRET_FIELDS",
    "STATUS_CHANGE",
    "Compare",
    "Shape",
    "SpecField",
    "spec_field",
    "held_default",
    "is_secret_path",
    "meaning",
    "normalise",
    "reported",
]

# How values of a field are compared:
#   value   equal as JSON (objects: key order never matters)
#   enum    equal once an alias is replaced by its long form (``org`` -> ``organization``)
#   set     a set of strings: order and repeats carry no meaning
#   skills  a set of skills, each compared on the keys a manifest can declare
#   keys    a secret map: only its keys are ever read back from the hub
Compare = Literal["value", "enum", "set", "skills", "keys"]
# What a value looks like (the JSON Schemas are written from it).
Shape = Literal["text", "enum", "strings", "tags", "skills", "repo", "repos", "loop", "env", "map"]


@dataclass(frozen=True)
class SpecField:
    """One spec field.

    ``reported_as`` is the key of the hub's session report that holds it (``None``: the
    single-session GET does not report it; a dotted name reads inside an object).
    ``aliases`` are other names a request body may give it. ``default`` is what the hub
    holds when a create body leaves it out (``None``: nothing; see :func:`held_default`
    for a default that depends on another field). ``empty_is_absent``: ``{}`` / ``[]``
    holds the same as leaving it out.
    """

    name: str
    mutable: bool
    shape: Shape
    description: str
    compare: Compare = "value"
    reported_as: str | None = None
    aliases: tuple[str, ...] = ()
    default: Any = None
    empty_is_absent: bool = False
    secret: bool = False
    enum: tuple[str, ...] = ()
    enum_aliases: Mapping[str, str] | None = None

    @property
    def create_only(self) -> bool:
        return not self.mutable

    @property
    def empty(self) -> Any:
        """The empty value a manifest writes to declare "none", or None when it has none
        (a string, or an object whose emptiness means something else)."""
        if self.shape in ("strings", "tags", "skills", "repos"):
            return []
        if self.shape in ("env", "map"):
            return {}
        return None

    @property
    def accepted(self) -> tuple[str, ...]:
        """Every value a manifest may write (long forms, then aliases)."""
        return (*self.enum, *(self.enum_aliases or {}))


FIELDS: tuple[SpecField, ...] = (
    SpecField(
        "task",
        mutable=False,
        shape="text",
        reported_as="task",
        description="Primary task prompt of the session. Create-only: a change replaces it.",
    ),
    SpecField(
        "label",
        mutable=True,
        shape="text",
        reported_as="label",
        description="Human-readable session label, not blank (leave it out for none). Mutable "
        "(updated in place).",
    ),
    SpecField(
        "agent",
        mutable=True,
        shape="text",
        reported_as="defaultAgent",
        aliases=("defaultAgent",),
        description="Default agent identifier (the hub reports it as defaultAgent), not blank. "
        "Mutable.",
    ),
    SpecField(
        "visibility",
        mutable=True,
        shape="enum",
        compare="enum",
        reported_as="visibility",
        default="private",
        enum=VISIBILITIES,
        enum_aliases=VISIBILITY_ALIASES,
        description="Who can see the session: private, organization or collaborate "
        "(org and collab are accepted and normalised). Mutable.",
    ),
    SpecField(
        "workflowMode",
        mutable=False,
        shape="enum",
        compare="enum",
        reported_as="workflowMode",
        default="standard",  # "loop" when loop settings are given: see held_default
        enum=WORKFLOW_MODES,
        description="Workflow execution mode: standard or loop. Create-only.",
    ),
    SpecField(
        "loop",
        mutable=False,
        shape="loop",
        empty_is_absent=True,
        description="Loop mode settings (with workflowMode: loop). Create-only.",
    ),
    SpecField(
        "tags",
        mutable=True,
        shape="tags",
        compare="set",
        reported_as="tags",
        empty_is_absent=True,
        description="Tags for filtering, managed as a set (the reconciler's marker tag is "
        "added and kept; the prefix `reconciler:` is reserved for it). Mutable.",
    ),
    SpecField(
        "skills",
        mutable=True,
        shape="skills",
        compare="skills",
        reported_as="skills",
        empty_is_absent=True,
        description="Skill definitions attached to the session, managed as a set. Mutable.",
    ),
    SpecField(
        "savedSkillIds",
        mutable=False,
        shape="strings",
        compare="set",
        empty_is_absent=True,
        description="Saved skill IDs attached at creation. Create-only.",
    ),
    SpecField(
        "skillBucketIds",
        mutable=False,
        shape="strings",
        compare="set",
        empty_is_absent=True,
        description="Skill bucket IDs attached at creation. Create-only.",
    ),
    SpecField(
        "repo",
        mutable=False,
        shape="repo",
        reported_as="repo",
        empty_is_absent=True,
        description="A repository mounted in the session. Create-only.",
    ),
    SpecField(
        "repos",
        mutable=False,
        shape="repos",
        reported_as="repos",
        empty_is_absent=True,
        description="Several repositories mounted in the session. Create-only.",
    ),
    SpecField(
        "workspaceId",
        mutable=False,
        shape="text",
        reported_as="workspace.id",
        description="Workspace the session belongs to. Create-only.",
    ),
    SpecField(
        "env",
        mutable=False,
        shape="env",
        compare="keys",
        reported_as="env",
        empty_is_absent=True,
        secret=True,
        description="Environment variables injected into the session runtime. Values "
        "are secret (shown as (sensitive), never logged) and usually ${env:NAME} "
        "references: the only place a variable not declared plainEnv may be referenced. "
        "Create-only (hashed as written, so rotating a secret does not replace the "
        "session).",
    ),
    SpecField(
        "metadata",
        mutable=False,
        shape="map",
        reported_as="metadata",
        empty_is_absent=True,
        description="Arbitrary metadata recorded at creation (any JSON values). The "
        "key `reconciler` is reserved for the tool. Create-only.",
    ),
)

_BY_NAME: dict[str, SpecField] = {f.name: f for f in FIELDS}
# Export order: the order of FIELDS.
FIELD_ORDER: tuple[str, ...] = tuple(f.name for f in FIELDS)
# Fields fixed at creation; their meaning (see ``meaning``) is hashed into the marker.
CREATE_ONLY_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.create_only)
# Fields PATCH can change (the reference's update body).
MUTABLE_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.mutable)
# Create-only fields the single-session GET reports (the others it never shows).
REPORTED_CREATE_ONLY: tuple[str, ...] = tuple(
    f.name for f in FIELDS if f.create_only and f.reported_as is not None
)
SECRET_FIELDS: frozenset[str] = frozenset(f.name for f in FIELDS if f.secret)
# What `lifecycle.ignoreChanges` may name: the mutable fields, whose drift is then left
# alone, and `status`: a paused session is then never resumed.
STATUS_CHANGE = "status"
IGNORABLE_CHANGES: tuple[str, ...] = (*MUTABLE_FIELDS, STATUS_CHANGE)


def is_secret_path(path: Sequence[object]) -> bool:
    """Whether a value at ``path`` (keys and indexes into a document) is under a secret
    field's name: such values are never shown, not even in an error."""
    return any(isinstance(part, str) and part in SECRET_FIELDS for part in path)


def spec_field(name: str) -> SpecField:
    """The field called ``name`` (``KeyError`` for a name that is not a spec field)."""
    return _BY_NAME[name]


def _sorted_set(value: Any) -> Any:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return sorted(set(value))
    return value


# Exact types that hold no float (an ``int`` subclass other than ``bool`` takes the walk).
_NOT_NUMBERS: frozenset[type] = frozenset({str, int, bool, type(None)})


def _whole_numbers(value: Any) -> Any:
    """``value`` with every float that is a whole number (``5.0``) as an integer: JSON has
    one number type, so ``5`` and ``5.0`` are one value (the hub stores the loop's
    ``maxIterations`` as an integer, a JavaScript hub holds ``1.0`` as ``1``)."""
    if type(value) in _NOT_NUMBERS:  # most values: decided without the ABC checks
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {k: v if type(v) in _NOT_NUMBERS else _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [v if type(v) in _NOT_NUMBERS else _whole_numbers(v) for v in value]
    return value


# Shapes whose values may hold numbers (the others are text, or lists and maps of it).
_NUMERIC_SHAPES: frozenset[Shape] = frozenset({"loop", "map"})


# An empty map and an empty list (compared with, never changed).
_EMPTY: tuple[dict[str, Any], list[Any]] = ({}, [])


def normalise(name: str, value: Any) -> Any:
    """``value`` of field ``name`` as the hub would hold it (plain JSON values in).

    Aliases take their long form, sets are sorted without repeats, whole-number floats
    are integers; an empty map or list of a field whose emptiness means "none" becomes
    ``None`` (absent).
    """
    declared = _BY_NAME[name]
    if value is None:
        return None
    if declared.compare == "enum" and isinstance(value, str):
        value = (declared.enum_aliases or {}).get(value, value)
    elif declared.compare == "set":
        value = _sorted_set(value)
    elif declared.shape in _NUMERIC_SHAPES:
        value = _whole_numbers(value)
        if declared.shape == "loop" and isinstance(value, Mapping):
            # A flag written as the hub holds it when left out means the same as left out.
            value = {
                k: v
                for k, v in value.items()
                if k not in LOOP_FLAG_DEFAULTS or v is not LOOP_FLAG_DEFAULTS[k]
            }
    if declared.empty_is_absent and value in _EMPTY:
        return None
    return value


# The defaults that depend on the rest of the body, by field.
_DEPENDENT_DEFAULTS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "workflowMode": lambda held: "loop" if held.get("loop") is not None else "standard",
    "loop": lambda held: {} if held.get("workflowMode") == "loop" else None,
}


def held_default(name: str, held: Mapping[str, Any]) -> Any:
    """What the hub holds for ``name`` when a create body leaves it out, given the rest
    of the body as held (``workflowMode`` is ``loop`` when loop settings are given, and
    loop settings are ``{}`` in loop mode)."""
    dependent = _DEPENDENT_DEFAULTS.get(name)
    return dependent(held) if dependent is not None else _BY_NAME[name].default


# The create-only fields the hub may fill in, last first (the order ``meaning`` drops
# them in); every other one has no default, so nothing it holds is ever dropped.
_DEFAULTED_LAST_FIRST: tuple[str, ...] = tuple(
    name
    for name in reversed(CREATE_ONLY_FIELDS)
    if name in _DEPENDENT_DEFAULTS or _BY_NAME[name].default is not None
)


def _fills(name: str, value: Any, rest: Mapping[str, Any]) -> bool:
    default = held_default(name, rest)
    return default is not None and bool(value == default)


def meaning(form: Mapping[str, Any]) -> dict[str, Any]:
    """The create-only fields of ``form`` (plain values) reduced to their meaning.

    Each value is normalised (:func:`normalise`); one the hub would fill in anyway is
    left out, fields later in ``FIELDS`` first, as their defaults depend on earlier ones
    (``workflowMode: loop`` next to loop settings goes; ``loop: {}`` under
    ``workflowMode: loop`` would, but normalising has already made it absent). Two forms
    with equal meanings create the same session.
    """
    held: dict[str, Any] = {}
    raw_loop = form.get("loop") is not None
    for name in CREATE_ONLY_FIELDS:
        value = form.get(name)
        if value is not None:
            value = normalise(name, value)
            if value is not None:
                held[name] = value
    # Leaving out workflowMode with loop settings given (even {}) means loop.
    if "workflowMode" not in held and raw_loop:
        held["workflowMode"] = "loop"
    for name in _DEFAULTED_LAST_FIRST:
        # ``held`` as the rest: no field's default depends on its own value.
        if name in held and _fills(name, held[name], held):
            del held[name]
    return held


def reported(detail: Mapping[str, Any], name: str) -> Any:
    """The value the hub reports for field ``name`` in a session report, or None."""
    key = _BY_NAME[name].reported_as
    if key is None:
        return None
    value: Any = detail
    for part in key.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None and "." in key:  # a hub may report the id flat (workspaceId)
        value = detail.get(name)
    return value
