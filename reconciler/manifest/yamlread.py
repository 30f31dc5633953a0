"""Read one manifest file into plain values, keeping every node's position.

libyaml composes the node graph (marks included); we construct values ourselves rather
than with PyYAML's constructor because we need what it does not give:

- duplicate keys are errors (PyYAML silently keeps the last one);
- alias expansion is bounded for the whole run, in nodes and in bytes produced, in
  proportion to the bytes read (:mod:`reconciler.manifest.budget`): a "billion laughs"
  document, or one large string aliased a thousand times, fails long before memory
  grows (the composed graph itself is small), however many files hold one;
- nesting is bounded: a document deeper than ``MAX_DOCUMENT_DEPTH`` fails the same way
  whatever the caller's stack depth;
- recursive aliases are refused instead of recursing forever;
- strings holding ``${env:`` are collected with their node, so references are checked
  without a second walk.

Hostile files are refused before parsing: over 5 MiB, NUL bytes, not UTF-8.
"""

from __future__ import annotations

import math
import os
import re
import sys
from bisect import bisect_right
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.apifacts import MAX_INT_DIGITS, NO_BLANK_FIELDS
from reconciler.errors import ManifestError
from reconciler.fields import SECRET_FIELDS
from reconciler.manifest.budget import (
    VALUE_OVERHEAD,
    BudgetExceeded,
    ExpansionBudget,
    text_size,
)
from reconciler.manifest.envref import REF_PREFIX, ref_strings, sole_reference
from reconciler.masking import PLAIN_ENV_KEY

__all__ = [
    "LINE_BREAK",
    "MAP_TAG",
    "MAX_DOCUMENT_DEPTH",
    "MAX_FILE_BYTES",
    "NODE_PROPERTIES",
    "RawDocument",
    "RefString",
    "STR_TAG",
    "node_at",
    "KeyReader",
    "iter_documents",
    "key_position",
    "located",
]

MAX_FILE_BYTES = 5 * 1024 * 1024
# Syntax errors reported per file: reading resumes at the next `---` after each one.
MAX_SYNTAX_ERRORS = 50
# Line breaks as libyaml counts them (its marks' line numbers), and a `---` marker at
# the start of a line: followed by a blank, a break or the end of the file.
LINE_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
# The anchor and tag a node may start with (`&a `, `!!str `): its start mark is theirs.
NODE_PROPERTIES = re.compile(r"(?:[&!]\S*[ \t]+)+")
# What libyaml's reader refuses (besides NUL, refused with the file): C0 controls but
# tab, LF and CR; DEL and C1 controls but NEL; U+FFFE and U+FFFF.
_NOT_PRINTABLE = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")
# Those of them that are ASCII, as bytes: in an ASCII file (the usual one) a translate
# finds them at C speed, where the class's search tests every character in turn (4 ms
# of a plan of 10,000 small sessions, 1.4 MB, against 0.8 ms).
_ASCII_NOT_PRINTABLE = bytes(c for c in range(128) if _NOT_PRINTABLE.match(chr(c)))
_DOCUMENT_START = re.compile(r"---(?:[ \t\r\n\x85\u2028\u2029]|\Z)")
# Mappings and lists nested deeper than this are refused (a document is level 1). Far
# above what the hub takes in a request (apifacts.MAX_BODY_DEPTH, checked later with a
# better message), far below where constructing values would exhaust the stack.
MAX_DOCUMENT_DEPTH = 128
# Positions kept per document for strings holding ``${env:``, and the refused references
# the secrecy check lists (``secrecy.reference_errors``): later ones point at a parent,
# and past that many errors one line says there are more.
MAX_REF_POSITIONS = 100

_Loader: type[Any] = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader

_TAG = "tag:yaml.org,2002:"
STR_TAG = _TAG + "str"
_INT = _TAG + "int"
_FLOAT = _TAG + "float"
_BOOL = _TAG + "bool"
_NULL = _TAG + "null"
_TIMESTAMP = _TAG + "timestamp"
_MERGE = _TAG + "merge"
MAP_TAG = _TAG + "map"
_SEQ = _TAG + "seq"
_BOOL_VALUES: dict[str, bool] = dict(SafeConstructor.bool_values)
# The scalars made into numbers or booleans, and what their text must be.
_CONSTRUCTED: dict[str, str] = {_INT: "an integer", _BOOL: "a boolean", _FLOAT: "a number"}
_SAFE = SafeConstructor()

# Tags of plain scalars already resolved. libyaml calls back into Python's `resolve`
# for every node, and for a plain scalar it tries a list of regular expressions; the
# same short words (keys, enum values) recur in every document, so a look-up answers
# most calls. Bounded: long or rare values are resolved each time.
_PLAIN_TAGS: dict[str, str] = {}
_PLAIN_TAGS_MAX = 50_000
_PLAIN_CACHED_LENGTH = 64
# Keys and short strings are interned: the same few words recur in every document,
# and one copy each instead of one per document is a third of a large run's memory.
_INTERNED_LENGTH = 32


class _ManifestLoader(_Loader):  # type: ignore[misc]
    """libyaml's safe loader with a faster tag resolution (same tags as PyYAML's).

    Used only while no path resolver is registered (PyYAML's ``add_path_resolver``;
    never by us): a tag then depends on the node alone, never on where it is.
    """

    # libyaml calls these two around every node it composes; PyYAML's own return at
    # once when no path resolver is registered. Here they are C callables that do
    # nothing (a Python call each, twice per node, was a tenth of composing a file).
    descend_resolver: staticmethod[[object, object], object] = staticmethod(
        {}.get  # type: ignore[arg-type]  # (parent, index): an empty dict's look-up
    )
    ascend_resolver: staticmethod[[], None] = staticmethod(type(None))

    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is not ScalarNode:
            return MAP_TAG if kind is MappingNode else _SEQ
        if not implicit[0]:
            return STR_TAG  # quoted: a string whatever it looks like
        cached = _PLAIN_TAGS.get(value)
        if cached is not None:
            return cached
        tag: str = super().resolve(kind, value, implicit)
        if len(value) <= _PLAIN_CACHED_LENGTH and len(_PLAIN_TAGS) < _PLAIN_TAGS_MAX:
            _PLAIN_TAGS[value] = tag
        return tag


def _loader(source: str | bytes) -> Any:
    """A loader for ``source``: ours, or PyYAML's own when a path resolver is set."""
    return (_Loader if _Loader.yaml_path_resolvers else _ManifestLoader)(source)


@dataclass(frozen=True)
class RefString:
    """A string that contains ``${env:``, where it is, and whether it is secret."""

    value: str
    line: int
    column: int
    secret: bool  # under an ``env`` key: never shown
    # Where it is in the document's value (keys and indexes); () when not known.
    path: tuple[str | int, ...] = ()


# Positions kept after the node graph is released: what later checks may point at (the
# cross-document checks, and the create-body checks made once defaults are merged).
# Only paths present are kept; an error elsewhere points at the nearest kept parent.
KEPT_PATHS: tuple[tuple[str, ...], ...] = (
    ("name",),
    ("spec",),
    ("defaults",),
    ("spec", "task"),
    ("spec", "visibility"),
    ("spec", "workflowMode"),
    ("spec", "loop"),
    ("spec", "metadata"),
    ("spec", "skills"),
    ("spec", "env"),  # a value written literally is warned of there
    *(("spec", key) for key in NO_BLANK_FIELDS),
)


# The top-level keys whose lists' items are each kept a position: each old name
# (renames), each plain variable (secrecy): checks point at it.
_LISTED_NAMES = ("previously", PLAIN_ENV_KEY)
# KEPT_PATHS by level, each key to its path: the document's own keys, and its spec's.
# The paths themselves are the positions' keys, shared by every document (a tuple made
# per document and key cost 5 MiB of a 10,000-session plan's peak).
_KEPT_TOP: dict[str, tuple[str, ...]] = {path[0]: path for path in KEPT_PATHS if len(path) == 1}
_KEPT_IN_SPEC: dict[str, tuple[str, ...]] = {
    path[1]: path for path in KEPT_PATHS if len(path) == 2 and path[0] == "spec"
}
assert all(len(path) == 1 or path[0] == "spec" for path in KEPT_PATHS) and all(
    len(path) <= 2 for path in KEPT_PATHS
), "_kept_positions reads the top level and the spec only"


def _kept_positions(
    root: Node, positions: dict[tuple[str | int, ...], tuple[int, int]]
) -> dict[str, Node]:
    """The positions of ``KEPT_PATHS`` in ``root``, a tree (no alias, no merge key):
    as :func:`_exactly_at` finds them, the first of a key written twice included.
    Returns the value of each ``_LISTED_NAMES`` key found, met on the same pass."""
    listed: dict[str, Node] = {}
    if root.__class__ is not MappingNode:
        return listed
    spec = _record_kept(root, _KEPT_TOP, positions, listed)
    if spec is not None and spec.__class__ is MappingNode:
        _record_kept(spec, _KEPT_IN_SPEC, positions)
    return listed


def _record_kept(
    node: Node,
    kept: Mapping[str, tuple[str, ...]],
    positions: dict[tuple[str | int, ...], tuple[int, int]],
    listed: dict[str, Node] | None = None,
) -> Node | None:
    """Record where the value of each of ``kept``'s keys in mapping ``node`` starts;
    return the value of ``spec`` when it is one of them. With ``listed``, the value of
    each ``_LISTED_NAMES`` key goes there too (the first, as for ``kept``)."""
    spec: Node | None = None
    for key_node, value_node in node.value:
        if key_node.__class__ is not ScalarNode:
            continue
        key = key_node.value
        path = kept.get(key)
        if path is not None and path not in positions:
            mark = value_node.start_mark
            positions[path] = (mark.line + 1, mark.column + 1)
            if path == ("spec",):
                spec = value_node
        elif listed is not None and key in _LISTED_NAMES:
            listed.setdefault(key, value_node)
    return spec


@dataclass
class RawDocument:
    """One YAML document: its plain value, its refs, and positions.

    ``node`` (the composed graph) is kept only while the document is being checked:
    holding every graph of a large run costs several times the values' memory and
    makes the garbage collector crawl. ``release()`` keeps the few positions that
    cross-document checks need.
    """

    file: str
    value: Any
    line: int
    column: int
    node: Node | None = None
    refs: list[RefString] = field(default_factory=list)
    positions: dict[tuple[str | int, ...], tuple[int, int]] = field(default_factory=dict)
    depth: int = 0  # how deeply mappings and lists nest (the document is level 1)
    # True when ``refs`` holds every occurrence of a string holding ``${env:``, each
    # with its path: the reader knows them all when no alias or merge key repeats one.
    refs_complete: bool = False
    # A Policy's file text (shared by its documents) while ``node`` is kept: what a
    # scalar's marks point into (``source_of``); None for other kinds.
    text: str | None = None
    # True when reading it reported an error (a value it could not take: .inf, an
    # integer too long): the document is reported, never built or sent.
    damaged: bool = False

    def source_of(self, node: Node) -> str | None:
        """The file's text of ``node`` as written (indicators, quotes and line breaks
        included), while the document is kept; None once released."""
        if self.text is None:
            return None
        return self.text[node.start_mark.index : node.end_mark.index]

    def reference_strings(self) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """``(path, string)`` for every string of ``value`` holding ``${env:``, in
        order (as :func:`~reconciler.manifest.envref.ref_strings` finds them): from
        what the reader collected when that is complete, else by walking the value."""
        if self.refs_complete:
            return ((ref.path, ref.value) for ref in self.refs)
        return ref_strings(self.value)

    def release(self) -> None:
        if self.node is None:
            return
        positions = self.positions
        mappings: dict[int, dict[Any, tuple[Node, Node]]] = {}
        if self.refs_complete:
            # No alias and no merge key: the graph is a tree, each key where it is
            # written. One pass over the document's keys and its spec's (every
            # document of a run comes here: the general walk below cost a tenth of
            # reading a small session).
            listed = _kept_positions(self.node, positions)
        else:
            for path in KEPT_PATHS:
                found = _exactly_at(self.node, path, mappings)
                if found is not None:
                    mark = found.start_mark
                    positions[path] = (mark.line + 1, mark.column + 1)
            listed = {}
            for key in _LISTED_NAMES:
                if (names := _exactly_at(self.node, (key,), mappings)) is not None:
                    listed[key] = names
        # Strings holding a reference: the secrecy checks point at them. The first
        # MAX_REF_POSITIONS only (aliases can repeat one a million times; the errors
        # beyond are not listed either). The reader saw where each was, unless an alias
        # repeated one: then each is found through an index of the mappings walked, so
        # a mapping of many keys is not scanned once per reference.
        if self.refs_complete:
            for ref in islice(self.refs, MAX_REF_POSITIONS):
                positions[ref.path] = (ref.line, ref.column)
        elif self.refs:
            for ref_path, _ in islice(ref_strings(self.value), MAX_REF_POSITIONS):
                mark = node_at(self.node, ref_path, mappings)[0].start_mark
                positions[ref_path] = (mark.line + 1, mark.column + 1)
        for key, names in listed.items():
            if isinstance(names, SequenceNode):
                # Each old name (renames), each plain variable (secrecy): checks point at it.
                for index, item in enumerate(names.value):
                    mark = item.start_mark
                    positions[(key, index)] = (mark.line + 1, mark.column + 1)
        self.node = None
        self.text = None

    def error(self, path: Sequence[Any], message: str) -> ManifestError:
        """An error located at ``path`` (or the nearest node known)."""
        line, column = self.position(path)
        return ManifestError(message, file=self.file, line=line, column=column)

    def known_position(self, path: Sequence[Any]) -> tuple[int, int] | None:
        """The 1-based line and column of ``path`` itself, or None when the document no
        longer knows it (past the positions it keeps once released)."""
        if self.node is not None:
            return self.position(path)
        return self.positions.get(tuple(path))

    def position(self, path: Sequence[Any]) -> tuple[int, int]:
        """The 1-based line and column of ``path`` (or of the nearest node known)."""
        if self.node is not None:
            mark = node_at(self.node, path)[0].start_mark
            return mark.line + 1, mark.column + 1
        key = tuple(path)
        while key and key not in self.positions:
            key = key[:-1]
        return self.positions.get(key, (self.line, self.column))


def located(file: str, node: Node | None, message: str) -> ManifestError:
    if node is None:
        return ManifestError(message, file=file)
    mark = node.start_mark
    return ManifestError(message, file=file, line=mark.line + 1, column=mark.column + 1)


class _Abort(Exception):
    """Stop constructing this document (the error is already recorded)."""


# The keys whose value is a spec (a Session's, a SessionSet template's) or the Project's
# defaults for one: where `env` is the secret field.
_SPEC_KEYS = frozenset({"spec", "defaults"})
_UNBUILT = object()  # a repeated scalar not built yet (None is a value)


def _declares_a_set(node: Node | None) -> bool:
    """Whether a document's root declares ``kind: SessionSet``."""
    if not isinstance(node, MappingNode):
        return False
    return any(
        key.value == "kind" and isinstance(value, ScalarNode) and value.value == "SessionSet"
        for key, value in node.value
        if isinstance(key, ScalarNode)
    )


class _Builder:
    """Node graph -> plain values, for one document."""

    def __init__(
        self, file: str, budget: ExpansionBudget, track_aliases: bool, root: Node | None = None
    ) -> None:
        self.file = file
        self.root = root  # the document's (a SessionSet's shows no value in an error)
        self.errors: list[ManifestError] = []
        self.refs: list[RefString] = []
        self.ref_nodes: set[tuple[int, bool]] = set()  # each string's node once (aliases)
        # Each ref's path, innermost part first (completed as the walk returns), and
        # the offset it starts at. Known unless an alias or a merge key can repeat or
        # move a value: then the paths are found by walking the value (``ref_strings``).
        self.paths_known = not track_aliases
        self.ref_parts: list[list[str | int]] = []
        self.ref_offsets: list[int] = []
        self.budget = budget  # the run's: every builder spends the same one
        self.track = track_aliases
        self.seen: set[int] = set()
        self.repeats: dict[tuple[int, bool], Any] = {}  # scalars aliases repeat, built
        self.said: set[tuple[int, str]] = set()  # (node, message) of each error made
        # Errors that show a value met outside env: their index, node, and how to say
        # them without the value.
        self.shown: list[tuple[int, Node, str]] = []
        # Nodes built under a secret field (``env``) and elsewhere: an alias that repeats
        # one across that line would show a secret value (tracking only: aliases).
        self.placed: dict[int, bool] = {}
        self.spec_nodes: set[int] = set()  # mappings that are a spec or Project defaults
        self.active: set[int] = set()
        self.expanding = 0
        self.depth = 0
        self.deepest = 0

    def error(self, node: Node, message: str) -> bool:
        """Record ``message`` at ``node``; False when it was made there already: an alias
        may repeat a bad value (or a collection holding one) a million times, and each
        copy would make the same error again."""
        if (id(node), message) in self.said:
            return False
        self.said.add((id(node), message))
        self.errors.append(located(self.file, node, message))
        return True

    def _place(self, node: Node, secret: bool) -> None:
        """Refuse a node an alias puts both under a secret field and outside one (as a
        value or a mapping key), where it would be shown. A bare reference is the
        variable's, whose secrecy the reference checks judge wherever it is."""
        if self.placed.setdefault(id(node), secret) == secret:
            return
        # One reference (a default too) is the variable's to judge: the reference
        # checks do, wherever it is (a plain variable's default may be shown). An error
        # that showed it where it was met outside env does not show it.
        if node.__class__ is ScalarNode and sole_reference(node.value) is not None:
            self._hide({id(node)})
            return
        # Reading stops here, so the aliases after this one are never met: any value an
        # error showed so far may be one they put under env. None is shown.
        self._hide(None)
        self.error(
            node,
            "an alias repeats this value both under env and outside it, where it would "
            "be shown: values under env are secret; write the other one out",
        )
        raise _Abort

    def _hide(self, nodes: set[int] | None) -> None:
        """Say again, without the value, each error that showed a value met outside env,
        about one of ``nodes`` (all of them: None)."""
        kept = []
        for index, node, message in self.shown:
            if nodes is None or id(node) in nodes:
                self.errors[index] = located(self.file, node, message)
            else:
                kept.append((index, node, message))
        self.shown = kept

    def build(self, node: Node, secret: bool = False) -> Any:
        cls = node.__class__
        if self.track:
            self._place(node, secret)
        if cls is ScalarNode:
            if (self.expanding or self.track) and self._scalar_met(node):
                return self._repeated(node, secret)  # type: ignore[arg-type]
            return self.scalar(node, secret)  # type: ignore[arg-type]
        self.depth += 1
        if self.depth > self.deepest:
            self.deepest = self.depth
            if self.depth > MAX_DOCUMENT_DEPTH:
                self.error(node, f"nested more than {MAX_DOCUMENT_DEPTH} levels deep; refused")
                raise _Abort
        if node.tag != (MAP_TAG if cls is MappingNode else _SEQ):
            # `!!set`, `!!omap`, `!!python/...`, `!custom`: refused as on a scalar, where
            # a collection's tag was dropped and the value read as a plain one.
            self.error(node, f"unsupported YAML tag {node.tag!r}")
        value: Any
        if not self.track:
            if cls is MappingNode:
                value = self.mapping(node, secret)  # type: ignore[arg-type]
            else:
                found = len(self.refs)
                value = [self.build(item, secret) for item in node.value]
                if len(self.refs) != found:
                    self._indexes(node.value, found)
        else:
            value = self.tracked(node, secret)
        self.depth -= 1
        return value

    def _scalar_met(self, node: Node, *, counted: bool = True) -> bool:
        """Charge a scalar that an alias repeats: inside an expanding alias, or itself
        aliased (the same node met again). Whether it was charged (a repeat)."""
        if not self.expanding:
            key = id(node)
            if key not in self.seen:
                self.seen.add(key)
                return False
        self._spend(node, node.value, counted=counted)
        return True

    def _repeated(self, node: ScalarNode, secret: bool) -> Any:
        """A repeated scalar's value: built once (for each side of ``env``), however
        many times aliases repeat it (a million, in an attack), and its errors said once."""
        key = (id(node), secret)
        value = self.repeats.get(key, _UNBUILT)
        if value is _UNBUILT:
            value = self.repeats[key] = self.scalar(node, secret)
        return value

    def _spend(self, node: Node, text: str = "", *, counted: bool = True) -> None:
        """Count what an alias repeats: a node (unless not ``counted``, as keys are not),
        its text and a pointer to it."""
        try:
            if counted:
                self.budget.spend_node("alias expansion")
            self.budget.spend_bytes(VALUE_OVERHEAD + text_size(text), "alias expansion")
        except BudgetExceeded as exc:
            self.error(node, str(exc))
            raise _Abort from None

    def tracked(self, node: Node, secret: bool) -> Any:
        key = id(node)
        if key in self.active:
            self.error(node, "recursive alias; refused")
            raise _Abort
        again = key in self.seen
        self.seen.add(key)
        if again:
            self.expanding += 1
        if self.expanding:
            self._spend(node)
        self.active.add(key)
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node, secret)
            return [self.build(item, secret) for item in node.value]
        finally:
            self.active.discard(key)
            if again:
                self.expanding -= 1

    def scalar(self, node: ScalarNode, secret: bool) -> Any:
        tag = node.tag
        value: str = node.value
        if tag == STR_TAG:
            if REF_PREFIX in value and (id(node), secret) not in self.ref_nodes:
                # Once per node: an aliased reference is the same text at the same place.
                self.ref_nodes.add((id(node), secret))
                mark = node.start_mark
                self.refs.append(RefString(value, mark.line + 1, mark.column + 1, secret))
                self.ref_parts.append([])
                self.ref_offsets.append(mark.index)
            return sys.intern(value) if len(value) <= _INTERNED_LENGTH else value
        if tag in _CONSTRUCTED:
            try:
                return self.constructed(node, tag, value)
            except (ValueError, KeyError):  # an explicit tag on text it cannot take
                what = f"is not {_CONSTRUCTED[tag]} (its tag says it is)"
                # Under env, here or where an alias first put it; or in a SessionSet,
                # whose items its template may put under env.
                if secret or self.placed.get(id(node), False) or _declares_a_set(self.root):
                    self.error(node, f"a secret value {what}")
                    return None
                index = len(self.errors)
                if self.error(node, f"{value!r} {what}") and self.track:
                    # An alias may yet put it under env (``_place``).
                    self.shown.append((index, node, f"a secret value {what}"))
                return None
        if tag == _NULL:
            return None
        if tag == _TIMESTAMP:
            # The API takes JSON strings; a date-looking value stays the text written.
            return value
        self.error(node, f"unsupported YAML tag {tag!r}")
        return None

    def constructed(self, node: ScalarNode, tag: str, value: str) -> Any:
        """An int, bool or float scalar's value (``ValueError`` or ``KeyError`` for text
        that is none: only an explicit tag, such as ``!!int yes``, gets here with one)."""
        if tag == _INT:
            digits = value.lstrip("+-").replace("_", "")
            if (digits.isdigit() and digits[0] != "0" and len(digits) > MAX_INT_DIGITS) or (
                ":" in digits and len(digits) > 2 * MAX_INT_DIGITS  # past 4,300 digits
            ):
                # A decimal int() refuses, or base 60 (1:59:59...), which PyYAML builds in
                # quadratic time before its length could be checked (0x..., 0o..., 0b...
                # convert in linear time and are checked below)
                self.error(
                    node,
                    f"an integer written with {len(digits)} "
                    f"{'digits' if digits.isdigit() else 'characters'}: JSON numbers here "
                    f"take at most {MAX_INT_DIGITS} digits",
                )
                return None
            if value.isdigit() and (value[0] != "0" or len(value) == 1):
                return int(value)
            whole: int = _SAFE.construct_yaml_int(node)
            try:
                str(whole)  # what json writes: refused past the digits Python converts
            except ValueError:  # 0x... or 1:59:59... longer in decimal than written
                self.error(node, f"an integer of more than {MAX_INT_DIGITS} digits")
                return None
            return whole
        if tag == _BOOL:
            return _BOOL_VALUES[value.lower()]
        try:
            number = _SAFE.construct_yaml_float(node)
        except OverflowError:  # base 60 (1:59:...:59.5) past what a float holds
            self.error(node, "a number too large for JSON")
            return None
        if math.isfinite(number):
            return number
        if value.lstrip("+-").lower() in (".inf", ".nan"):
            self.error(node, "numbers must be finite (.inf and .nan are not JSON)")
        else:  # written in full, past what a float holds: it reads as infinity
            self.error(node, "a number too large for JSON")
        return number  # still a number to the schema: "must be a string, not a number"

    def mapping(self, node: MappingNode, secret: bool) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges: list[Node] = []
        tracking = self.expanding or self.track
        # A spec's (or the Project's defaults') `env` holds secrets; `env` elsewhere (a
        # metadata key) is shown like the rest of its field.
        spec_level = id(node) in self.spec_nodes
        for key_node, value_node in node.value:
            if key_node.__class__ is not ScalarNode:
                self.error(key_node, "mapping keys must be plain strings")
                continue
            if key_node.tag == _MERGE:
                if merges:  # as any key written twice (one `<<:` takes a list to merge)
                    self.error(key_node, "duplicate key '<<' (merge several with <<: [*a, *b])")
                    continue
                merges.append(value_node)
                continue
            key: str = sys.intern(key_node.value)
            if tracking:
                self._scalar_met(key_node, counted=False)
            if self.track:
                self._place(key_node, False)  # a key is shown, under env too
            if key in result:
                first = next(k for k, _ in node.value if k.value == key)
                self.error(
                    key_node,
                    f"duplicate key {key!r} (first at line {first.start_mark.line + 1})",
                )
                continue
            if value_node.__class__ is ScalarNode and not tracking:
                text = value_node.value
                if value_node.tag == STR_TAG and REF_PREFIX not in text:
                    # The most common value: a string without a reference, made here.
                    result[key] = sys.intern(text) if len(text) <= _INTERNED_LENGTH else text
                    continue
            found = len(self.refs)
            if key in _SPEC_KEYS:
                self.spec_nodes.add(id(value_node))
            result[key] = self.build(value_node, secret or (spec_level and key in SECRET_FIELDS))
            if len(self.refs) != found:
                for parts in self.ref_parts[found:]:
                    parts.append(key)
        if merges:
            self.paths_known = False  # merged values land under keys they were not at
            if spec_level:  # merged into a spec: its `env` is the spec's
                for merged in merges:
                    sources = merged.value if isinstance(merged, SequenceNode) else [merged]
                    self.spec_nodes.update(id(source) for source in sources)
            self.merge(result, merges, secret)
        return result

    def _indexes(self, items: list[Node], found: int) -> None:
        """Add its list index to each ref found since ``found``: the last item that
        starts at or before the ref (no alias: the document's order is the walk's)."""
        starts = [item.start_mark.index for item in items]
        for at in range(found, len(self.refs)):
            self.ref_parts[at].append(bisect_right(starts, self.ref_offsets[at]) - 1)

    def located_refs(self) -> list[RefString]:
        """The refs, each with its path (when known)."""
        if not self.paths_known:
            return self.refs
        return [
            RefString(ref.value, ref.line, ref.column, ref.secret, tuple(reversed(parts)))
            for ref, parts in zip(self.refs, self.ref_parts, strict=True)
        ]

    def merge(self, result: dict[str, Any], merges: list[Node], secret: bool) -> None:
        # YAML merge keys: keys written in the mapping win, then earlier merged maps.
        sources: list[Node] = []
        for value_node in merges:
            if isinstance(value_node, SequenceNode):
                sources.extend(value_node.value)
            else:
                sources.append(value_node)
        for source in sources:
            if not isinstance(source, MappingNode):
                self.error(source, "a merge key (<<) takes a mapping or a list of mappings")
                continue
            merged = self.build(source, secret)
            for key, value in merged.items():
                result.setdefault(key, value)


def _refuse(file: str, message: str, data: bytes | None = None, offset: int = -1) -> ManifestError:
    if data is None or offset < 0:
        return ManifestError(message, file=file)
    line, column = _line_column(data[:offset].decode("utf-8", "replace"))
    return ManifestError(message, file=file, line=line, column=column)


def _line_column(before: str) -> tuple[int, int]:
    """1-based line and column just after ``before``, lines ended as libyaml ends them."""
    breaks = list(LINE_BREAK.finditer(before))
    return len(breaks) + 1, len(before) - (breaks[-1].end() if breaks else 0) + 1


# libyaml's contexts that name where an unclosed construct began (a block mapping's
# context is its first line: there the problem's own mark is the better one).
_OPENED = re.compile(
    r"while (scanning a simple key|scanning a quoted scalar|parsing a flow (sequence|mapping))"
)


def _never_closed(context: str, opened: yaml.Mark, mark: yaml.Mark, text: str) -> bool:
    """Whether the construct ``context`` names was never closed (a key without its
    colon, a quote: always, libyaml finds them no other way). A flow collection was not
    when libyaml stopped at the next document, the end of the file, or a line indented
    no deeper than the one that opened it (the next key); at a line inside it, its own
    mark is the mistake (a missing comma)."""
    if context.startswith("while scanning"):
        return True
    lines = LINE_BREAK.split(text)
    if mark.line >= len(lines) or opened.line >= len(lines):
        return True
    line = lines[mark.line]
    rest, later = line[mark.column :], "".join(lines[mark.line + 1 :])
    if rest.startswith(("---", "...")) or not (rest + later).strip():
        return True
    opener = lines[opened.line]
    return _indent(line) <= _indent(opener)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _indented_with_tab(text: str, line: int, column: int) -> bool:
    """Whether a 0-based line and column of ``text`` (lines broken as libyaml breaks
    them) is a tab among the line's leading blanks."""
    lines = LINE_BREAK.split(text, line + 1)
    if line >= len(lines):
        return False
    head = lines[line][: column + 1]
    return head.endswith("\t") and not head.strip(" \t")


# A block scalar's first line starting with a tab: libyaml takes the tab for its
# indentation, so an indentation indicator (`|2`) says where the content starts.
_BLOCK_SCALAR = "while scanning a block scalar"
_INDICATOR_DIGIT = re.compile(r"[|>][-+]?[1-9]")


def _block_indent(before: str) -> int:
    """The indentation a block scalar's indicator counts from, given its header line up
    to the indicator: the column of the key it is the value of (after any `- ` of the
    sequence entries it sits in), or of the last `-` when it is an entry itself."""
    column = dash = _indent(before)
    rest = before[column:]
    while rest.startswith("-") and rest[1:2] in (" ", ""):
        dash = column
        after = rest[1:].lstrip(" ")
        column += len(rest) - len(after)
        rest = after
    # An anchor or a tag before the indicator (`- &a |`) is no key: the entry's own.
    return column if NODE_PROPERTIES.sub("", rest).strip() else dash


def _block_indicator(exc: yaml.MarkedYAMLError, mark: yaml.Mark, text: str) -> str | None:
    """The indentation indicator that mends ``mark`` (a tab) when it opens the first
    line of a block scalar whose header gives none, after more spaces than the
    header's line is indented: then the tab is content. None otherwise (on a later
    line, with an indicator written, or at the key's own indentation, the tab is in
    the indentation and must go)."""
    opened = exc.context_mark
    if exc.context != _BLOCK_SCALAR or opened is None or mark.line != opened.line + 1:
        return None
    header_line = LINE_BREAK.split(text, opened.line + 1)[opened.line]
    if _INDICATOR_DIGIT.match(header_line[opened.column :]) is not None:
        return None
    if not NODE_PROPERTIES.sub("", header_line[: opened.column]).strip(" "):
        return None  # the header alone on its line: its key is on another, not read here
    indicator = mark.column - _block_indent(header_line[: opened.column])
    if not 1 <= indicator <= 9:
        return None
    header = header_line[opened.column :]  # `|` or `>`, then maybe a chomping sign
    chomping = header[1:2] if header[1:2] in ("-", "+") else ""
    return f"{header[0]}{indicator}{chomping}"  # the header to write instead


def _yaml_error(file: str, exc: yaml.YAMLError, text: str) -> ManifestError:
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = [p for p in (exc.context, exc.problem) if p]
        message = "; ".join(parts) or "invalid YAML"
        mark = exc.problem_mark or exc.context_mark
        opened = exc.context_mark
        if (
            opened is not None
            and mark is not None
            and _OPENED.match(exc.context or "")
            and opened.line < mark.line
            and _never_closed(exc.context or "", opened, mark, text)
        ):
            # A key, a quote or a flow collection opened there and never closed: libyaml
            # notices it lines later (the next key, `---`, the end of the file), where an
            # editor's or CI's annotation would point at the wrong line.
            message += f" (noticed at line {mark.line + 1})"
            mark = opened
        if mark is not None:
            if _indented_with_tab(text, mark.line, mark.column):
                indicator = _block_indicator(exc, mark, text)
                message += (
                    " (a tab opens the block scalar's first line: give its indentation "
                    f"with an indicator, `{indicator}`)"
                    if indicator is not None
                    else " (a tab: YAML indents with spaces only)"
                )
            return ManifestError(
                f"YAML: {message}", file=file, line=mark.line + 1, column=mark.column + 1
            )
        return ManifestError(f"YAML: {message}", file=file)
    if isinstance(exc, yaml.reader.ReaderError):
        # libyaml reads UTF-8: its position is a byte offset, whatever it was given.
        before = text.encode("utf-8")[: max(0, exc.position)].decode("utf-8", "replace")
        line, column = _line_column(before)
        return ManifestError(
            f"YAML: {exc.reason} (character #x{exc.character:04x})"
            if isinstance(exc.character, int)
            else f"YAML: {exc.reason}",
            file=file,
            line=line,
            column=column,
        )
    return ManifestError(f"YAML: {exc}", file=file)


def iter_documents(
    path: str,
    display: str,
    errors: list[ManifestError],
    budget: ExpansionBudget | None = None,
    *,
    data: bytes | None = None,
) -> Iterator[RawDocument]:
    """Every non-empty document of ``path`` (named ``display`` in errors), one at a time.

    Problems are appended to ``errors``. After a YAML syntax error reading resumes at
    the next ``---``, so the documents around it are still checked and every broken one
    is reported (up to ``MAX_SYNTAX_ERRORS``). Each document comes with its node graph;
    call ``release()`` once done with it. ``budget`` is the run's expansion budget (share
    one across the files of a run); the file's size is added to it. ``data`` is the
    file's content when the caller has read it (at most ``MAX_FILE_BYTES + 1`` bytes),
    so that what is parsed is what it saw.
    """
    data = _read_checked(path, display, errors, data)
    if data is None:
        return
    if budget is None:
        budget = ExpansionBudget()
    budget.add_source(len(data))
    text = data.decode("utf-8")
    if not text.strip():
        return
    source: str | bytes = data
    if _not_printable_in(text, data):
        # libyaml refuses these before parsing anything, so the documents around one
        # would go unchecked: report each here and read the file with a space instead.
        for found in list(_NOT_PRINTABLE.finditer(text))[:MAX_SYNTAX_ERRORS]:
            line, column = _line_column(text[: found.start()])
            errors.append(
                ManifestError(
                    "YAML: control characters are not allowed "
                    f"(character #x{ord(found.group()):04x})",
                    file=display,
                    line=line,
                    column=column,
                )
            )
        text = source = _NOT_PRINTABLE.sub(" ", text)
    # Without an anchor there can be no alias: skip the bookkeeping on the common path.
    track = "&" in text
    started = (0, 0)  # the line the current reading started at, and its offset
    for attempt in range(MAX_SYNTAX_ERRORS):
        failed_at = yield from _documents(source, display, text, errors, budget, track)
        if failed_at is None:
            return
        if attempt == MAX_SYNTAX_ERRORS - 1:
            errors.append(
                ManifestError(
                    f"YAML: stopped after {MAX_SYNTAX_ERRORS} syntax errors; "
                    "the rest of the file is not checked",
                    file=display,
                    line=failed_at + 1,
                )
            )
            return
        # libyaml cannot go on after a syntax error; the next `---` starts a document
        # it can read (the error is often reported on that very line, when a document
        # ends unfinished). Lines before it become blank: positions stay the file's own.
        restart = _document_start(text, started, max(failed_at, started[0] + 1))
        if restart is None:
            return
        started = restart
        line, offset = restart
        source = "\n" * line + text[offset:]


def _document_start(text: str, start: tuple[int, int], from_line: int) -> tuple[int, int] | None:
    """The first ``---`` document marker at or after line ``from_line`` (0-based): its
    line and offset. ``start`` is a known line and its offset, where counting begins.

    Lines end where libyaml ends them (CRLF, CR, LF, NEL, LS, PS), so the numbers agree
    with its marks.
    """
    line, offset = start
    while True:
        if line >= from_line and _DOCUMENT_START.match(text, offset):
            return line, offset
        found = LINE_BREAK.search(text, offset)
        if found is None:
            return None
        line, offset = line + 1, found.end()


def _not_printable_in(text: str, data: bytes) -> bool:
    """Whether ``text`` (``data`` decoded) holds a character libyaml's reader refuses."""
    if text.isascii():  # then its bytes are its characters
        return len(data.translate(None, _ASCII_NOT_PRINTABLE)) != len(data)
    return _NOT_PRINTABLE.search(text) is not None


def _documents(
    source: str | bytes,
    display: str,
    text: str,
    errors: list[ManifestError],
    budget: ExpansionBudget,
    track: bool,
) -> Generator[RawDocument, None, int | None]:
    """Yield the documents of ``source``; return the 0-based line of a syntax error."""
    shown = source if isinstance(source, str) else text  # what error offsets refer to
    loader = _loader(source)
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
            except yaml.YAMLError as exc:
                error = _yaml_error(display, exc, shown)
                # A restart may meet the same broken line again: say it once.
                if all(e.located() != error.located() for e in errors):
                    errors.append(error)
                # Its 0-based line (the error's own, reader errors included).
                return error.line - 1 if error.line is not None else None
            if node is None or (isinstance(node, ScalarNode) and node.tag == _NULL):
                continue  # an empty document (`---` alone): nothing declared
            builder = _Builder(display, budget, track, node)
            try:
                value = builder.build(node)
            except _Abort:
                errors.extend(builder.errors)
                continue
            except RecursionError:
                errors.append(located(display, node, "document nested too deeply; refused"))
                continue
            errors.extend(builder.errors)
            mark = node.start_mark
            yield RawDocument(
                display,
                value,
                mark.line + 1,
                mark.column + 1,
                node=node,
                refs=builder.located_refs(),
                depth=builder.deepest,
                refs_complete=builder.paths_known,
                # Only a Policy reads its text back (its rules' positions): a run of
                # many sessions keeps no file's text longer than it reads the file.
                text=shown if _is_policy(value) else None,
                damaged=bool(builder.errors),
            )
    finally:
        loader.dispose()
    return None


def _is_policy(value: Any) -> bool:
    return isinstance(value, dict) and value.get("kind") == "Policy"


def _read_checked(
    path: str, display: str, errors: list[ManifestError], data: bytes | None = None
) -> bytes | None:
    """The file's bytes (``data`` when given), or None (and an error) when it is too
    big, binary or not UTF-8."""
    try:
        if data is None:
            size = os.stat(path).st_size
            if size > MAX_FILE_BYTES:
                message = f"file is larger than 5 MiB ({size} bytes); refused"
                errors.append(_refuse(display, message))
                return None
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        errors.append(_refuse(display, f"cannot read file: {exc.strerror or exc}"))
        return None
    if len(data) > MAX_FILE_BYTES:
        errors.append(_refuse(display, "file is larger than 5 MiB; refused"))
        return None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        errors.append(
            _refuse(display, "not UTF-8 text (UTF-16 or UTF-32 byte order mark); refused", data, 0)
        )
        return None
    nul = data.find(b"\x00")
    if nul != -1:
        errors.append(_refuse(display, "binary file (NUL byte); refused", data, nul))
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        errors.append(
            _refuse(display, f"not UTF-8 text (byte 0x{bad:02x}); refused", data, exc.start)
        )
        return None
    return data


def _exactly_at(
    root: Node, path: Sequence[str], index: dict[int, dict[Any, tuple[Node, Node]]]
) -> Node | None:
    """The node at ``path`` (mapping keys only), or None when any part is missing.
    ``index`` is kept across calls: each mapping's keys are indexed once."""
    node: Node = root
    for part in path:
        if not isinstance(node, MappingNode):
            return None
        found = _indexed(node, part, index)
        if found is None:
            return None
        node = found[1]
    return node


def node_at(
    root: Node, path: Any, index: dict[int, dict[Any, tuple[Node, Node]]] | None = None
) -> tuple[Node, Node | None]:
    """The node at a JSON path (keys and indexes) and, in a mapping, its key's node.

    Stops at the deepest node that exists, so an error always gets a position. With
    ``index`` (a dict kept across calls), each mapping's keys are indexed once.
    """
    node: Node = root
    key_node: Node | None = None
    for part in path:
        if isinstance(node, MappingNode):
            found = _find_key(node, part) if index is None else _indexed(node, part, index)
            if found is None:
                break
            key_node, node = found
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            key_node, node = None, node.value[part]
        else:
            break
    return node, key_node


def key_position(
    file: str,
    at: tuple[int, int],
    path: Sequence[str],
    cache: dict[str, KeyReader],
) -> tuple[int, int] | None:
    """The 1-based line and column of the key at the end of ``path`` in the document of
    ``file`` that starts at ``at`` (its line and column), reading the file again: for a
    warning about a document already released. None when the file no longer reads, or
    holds no such document or key. ``cache`` keeps, per file, where the reading got
    to: asked in document order (as a run meets them), each file is composed once, up
    to the last document asked about, holding that one only; a document before it
    answers None. The caller closes the readers (``KeyReader.close``)."""
    reader = cache.get(file)
    if reader is None:
        reader = cache[file] = KeyReader(file)
    root = reader.document_at(at)
    if root is None:
        return None
    _, key_node = node_at(root, path, reader.index)
    if isinstance(key_node, ScalarNode) and key_node.value == path[-1]:
        return key_node.start_mark.line + 1, key_node.start_mark.column + 1
    return None


class KeyReader:
    """A file's documents composed again one at a time, forward only (:func:`key_position`)."""

    def __init__(self, file: str) -> None:
        self._roots = _roots(file)
        self._last: Node | None = None
        # The current document's mappings, each indexed by key once (``node_at``): a
        # document with thousands of keys asked about is not scanned once per key.
        self.index: dict[int, dict[Any, tuple[Node, Node]]] = {}

    def document_at(self, at: tuple[int, int]) -> Node | None:
        """The document that starts at ``at``, or None (not in the file, or passed)."""
        root = self._last
        while root is None or _start(root) < at:
            root = self._last = next(self._roots, None)
            self.index = {}
            if root is None:
                return None
        return root if _start(root) == at else None

    def close(self) -> None:
        self._roots.close()  # its loader freed


def _start(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _roots(file: str) -> Generator[Node, None, None]:
    """The composed documents of ``file``, one at a time; none once it no longer reads
    (changed since it was read: the caller has its fallback)."""
    try:
        with open(file, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            return
        loader = _loader(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        return
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield node
    except yaml.YAMLError:
        return
    finally:
        loader.dispose()


_MERGED = object()  # in a mapping's index: it has a merge key (<<)


def _indexed(
    node: MappingNode, key: Any, index: dict[int, dict[Any, tuple[Node, Node]]]
) -> tuple[Node, Node] | None:
    """``_find_key`` through an index of ``node``'s own keys (merged ones looked up)."""
    keys = index.get(id(node))
    if keys is None:
        keys = index[id(node)] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                keys[_MERGED] = (key_node, value_node)
            elif isinstance(key_node, ScalarNode):
                keys.setdefault(key_node.value, (key_node, value_node))
    found = keys.get(key)
    if found is None and _MERGED in keys:
        found = _find_key(node, key)  # a merged key: rare, and the path's only
    return found


def _find_key(node: MappingNode, key: Any, depth: int = 0) -> tuple[Node, Node] | None:
    merges: list[Node] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            merges.append(value_node)
        elif isinstance(key_node, ScalarNode) and key_node.value == key:
            return key_node, value_node
    if depth > 20:
        return None
    for merge in merges:
        sources = merge.value if isinstance(merge, SequenceNode) else [merge]
        for source in sources:
            if isinstance(source, MappingNode):
                found = _find_key(source, key, depth + 1)
                if found is not None:
                    return found
    return None
