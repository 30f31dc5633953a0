"""``kind: Policy`` documents -> :class:`DeclaredPolicy` values, positions kept.

A Policy holds CEL rules (``reconciler.policy`` compiles and evaluates them; nothing
here imports a CEL library, so loading manifests without policies never pays for one).
Built while the document's node graph is still held: every rule keeps where its
``expression`` and ``messageExpression`` start and how they are written, so a CEL error
at line 1, column 12 of an expression is reported at its place in the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from yaml.nodes import ScalarNode

from reconciler.errors import ManifestError
from reconciler.manifest.yamlread import LINE_BREAK, NODE_PROPERTIES, RawDocument, node_at
from reconciler.model import SourceLocation

__all__ = [
    "DeclaredPolicy",
    "DeclaredRule",
    "ExpressionSource",
    "PolicyMatch",
    "Segment",
    "declared_policy",
    "expression_segments",
    "policy_identity_errors",
]

PolicyAction = Literal["deny", "warn"]
PolicyScope = Literal["session", "plan"]


# Where a run of an expression's characters is written: its offset in the expression,
# and the 1-based file line and column of its first character.
Segment = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class ExpressionSource:
    """Where a CEL expression is written: its first character, and its YAML style.

    ``style`` is the scalar's style (``None`` plain, ``'"'``/``"'"`` quoted, ``"|"``/
    ``">"`` block). ``segments`` place each written line's text in the expression
    (``expression_segments``). :meth:`at` maps a position inside the expression to the
    file.
    """

    file: str
    line: int
    column: int
    style: str | None = None
    segments: tuple[Segment, ...] = ()
    spans_lines: bool = False  # written over more than one line

    def at(self, expression: str, line: int, column: int) -> tuple[int, int | None]:
        """The file's line and column of ``expression``'s ``line:column`` (1-based).

        Exact wherever the segments place it: every line of a plain, quoted, literal
        or folded scalar (one whose escapes hide its text keeps none). Without them:
        exact for one-line plain and quoted scalars, the line alone for a block
        scalar's lines and the first line for others (the column is then left out).
        """
        if self.segments:
            offset = sum(len(text) + 1 for text in expression.split("\n")[: line - 1])
            offset += column - 1
            start, at_line, at_column = self.segments[0]
            for segment in self.segments:
                if segment[0] > offset:
                    break
                start, at_line, at_column = segment
            if at_line < 0:  # past a line whose text an escape hides: its start only
                return self.line, None
            return at_line, at_column + offset - start
        if self.style in ("|", ">"):
            return self.line + line, None
        if line == 1 and not self.spans_lines:
            quote = 1 if self.style in ('"', "'") else 0
            return self.line, self.column + quote + column - 1
        return self.line + line - 1, None

    @property
    def location(self) -> SourceLocation:
        return SourceLocation(self.file, self.line, self.column)


def expression_segments(
    written: str, value: str, line: int, column: int, style: str | None
) -> tuple[Segment, ...]:
    """Where each line of a scalar written as ``written`` (from its first character,
    at 1-based ``line:column``) is in its ``value``: each line's text found in order.
    From a line whose text is not found as written (an escape, say) on, one segment
    with line -1 says the rest is not placed."""
    lines = LINE_BREAK.split(written)
    first = 1 if style in ("|", ">") else 0  # a block scalar's header line holds no text
    segments: list[Segment] = []
    cursor = 0
    for index in range(first, len(lines)):
        raw = lines[index]
        start_column = column if index == 0 else 1
        if index == 0 and (properties := NODE_PROPERTIES.match(raw)):  # `&anchor`, `!!str`
            raw, start_column = raw[properties.end() :], start_column + properties.end()
        if index == 0 and style in ('"', "'"):
            raw, start_column = raw[1:], start_column + 1
        text = raw.strip(" \t\r")
        if index == len(lines) - 1 and style in ('"', "'"):
            text = text[:-1].rstrip(" \t") if text.endswith(style) else text
        if not text:
            continue
        found = value.find(text, cursor)
        if found < 0:
            segments.append((cursor, -1, -1))
            break
        indent = len(raw) - len(raw.lstrip(" \t"))
        segments.append((found, line + index, start_column + indent))
        cursor = found + len(text)
    return tuple(segments)


@dataclass(frozen=True, slots=True)
class DeclaredRule:
    expression: str
    source: ExpressionSource
    message: str | None = None
    message_expression: str | None = None
    message_source: ExpressionSource | None = None


@dataclass(frozen=True, slots=True)
class PolicyMatch:
    """The sessions a session rule applies to: every list given must match (one of
    its entries); an empty match is every session."""

    names: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.names or self.tags or self.sets)


@dataclass(frozen=True, slots=True)
class DeclaredPolicy:
    name: str
    action: PolicyAction
    scope: PolicyScope
    rules: tuple[DeclaredRule, ...]
    source: SourceLocation
    match: PolicyMatch = PolicyMatch()
    overridable: bool = False
    # The sessions left alone (chosen as ``match`` chooses): lasting exceptions.
    exclude: PolicyMatch = PolicyMatch()


def _expression_source(doc: RawDocument, path: Sequence[Any]) -> ExpressionSource:
    assert doc.node is not None, "built before the document is released"
    node, _ = node_at(doc.node, path)
    mark = node.start_mark
    style = node.style if isinstance(node, ScalarNode) else None
    written = doc.source_of(node) if isinstance(node, ScalarNode) else None
    segments = (
        expression_segments(written, node.value, mark.line + 1, mark.column + 1, style or None)
        if written is not None
        else ()
    )
    spans_lines = written is not None and "\n" in written.rstrip("\n")
    line, column = mark.line + 1, mark.column + 1
    return ExpressionSource(doc.file, line, column, style or None, segments, spans_lines)


def _selector(raw: Any) -> PolicyMatch:
    """A schema-valid ``match`` or ``exclude`` (absent: the empty one)."""
    given = raw if isinstance(raw, dict) else {}
    return PolicyMatch(
        names=tuple(given.get("names", ())),
        tags=tuple(given.get("tags", ())),
        sets=tuple(given.get("sets", ())),
    )


def declared_policy(doc: RawDocument) -> tuple[DeclaredPolicy | None, list[ManifestError]]:
    """The policy of a schema-valid ``kind: Policy`` document (before ``release()``)."""
    value = doc.value
    spec = value["spec"]
    scope: PolicyScope = spec.get("scope", "session")
    match, exclude = _selector(spec.get("match")), _selector(spec.get("exclude"))
    if scope == "plan":
        for key, given in (("match", match), ("exclude", exclude)):
            if given:
                message = (
                    f"spec.{key}: a plan-scope policy sees the whole plan; {key} is for "
                    "session rules"
                )
                return None, [doc.error(["spec", key], message)]
    rules: list[DeclaredRule] = []
    for index, rule in enumerate(spec["rules"]):
        where = ["spec", "rules", index]
        has_message_expression = "messageExpression" in rule
        rules.append(
            DeclaredRule(
                expression=rule["expression"],
                source=_expression_source(doc, [*where, "expression"]),
                message=rule.get("message"),
                message_expression=rule.get("messageExpression"),
                message_source=_expression_source(doc, [*where, "messageExpression"])
                if has_message_expression
                else None,
            )
        )
    policy = DeclaredPolicy(
        name=value["name"],
        action=spec.get("action", "deny"),
        scope=scope,
        rules=tuple(rules),
        source=SourceLocation(doc.file, doc.line, doc.column),
        match=match,
        overridable=spec.get("overridable", False),
        exclude=exclude,
    )
    return policy, []


def policy_identity_errors(docs: Sequence[RawDocument]) -> list[ManifestError]:
    """A Policy name declared twice (``--override-policy NAME`` must name one)."""
    first: dict[str, RawDocument] = {}
    errors: list[ManifestError] = []
    for doc in docs:
        value = doc.value
        if not isinstance(value, dict) or value.get("kind") != "Policy":
            continue
        name = value.get("name")
        if not isinstance(name, str):
            continue
        seen = first.setdefault(name, doc)
        if seen is not doc:
            message = f"duplicate Policy name {name!r} (first at {seen.file}:{seen.line})"
            errors.append(doc.error(["name"], message))
    return errors
