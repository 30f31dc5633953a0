"""SessionSets: one template and a generator -> ordinary Session documents.

```yaml
kind: SessionSet
name: repo-reviews            # the set's own name (plans group its sessions under it)
generator:                    # exactly one of:
  items: [api, {name: web, agent: opencode}]     # item: the string or the mapping
  matrix: {repo: [api, web], mode: [fast, deep]} # item: one {repo, mode} per combination
  repos: [acme/api, {fullName: acme/web, branch: develop}]
                              # item: {fullName, owner, name, branch?}; spec.repo is set
template:                     # a Session's name, previously, spec and lifecycle
  name: "review-{{ item.name | slug }}"
  spec: {task: "Review pull requests of {{ item.fullName }}"}
```

Each generated session is an ordinary ``Session`` document (a :class:`GeneratedDocument`)
that goes through the same checks as a written one: the manifest schema, unique names,
renames, the hub's rules after the Project defaults. Its node graph is the template's
(the values rendered, the positions the template's), so an error in a generated
session points at the template line that made it, and a name clash at the set's
``template.name``. Every string of the template is rendered by
:mod:`reconciler.manifest.template` with ``item`` and ``index`` (0-based). What the
sets of a run generate is charged to the run's
:class:`~reconciler.manifest.budget.ExpansionBudget`; once it is spent, a set stops at
the item that spent it, with one error there.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from reconciler.apifacts import body_depth
from reconciler.errors import ManifestError
from reconciler.fields import is_secret_path
from reconciler.manifest.budget import RENDERING, VALUE_OVERHEAD, BudgetExceeded, ExpansionBudget
from reconciler.manifest.envref import ref_strings
from reconciler.manifest.validation import field_path
from reconciler.manifest.yamlread import (
    MAP_TAG,
    MAX_DOCUMENT_DEPTH,
    STR_TAG,
    RawDocument,
    RefString,
    located,
    node_at,
)

__all__ = ["MAX_SET_SESSIONS", "GeneratedDocument", "SetSummary", "expand_set"]

# Sessions one set may yield (a matrix multiplies quickly).
MAX_SET_SESSIONS = 1000


@dataclass
class GeneratedDocument(RawDocument):
    """A Session document a SessionSet generated; ``item`` says which one (``item 2``)."""

    set_name: str = ""
    item: str = ""

    def in_set(self, message: str) -> str:
        """``message`` naming the set and the item: an error at the set's template, said
        once for all the items it fails alike."""
        return f"{message} (SessionSet {self.set_name!r}, {self.item})"


@dataclass(frozen=True)
class SetSummary:
    """A valid SessionSet and how many sessions it yields (what ``validate`` reports)."""

    name: str
    file: str
    line: int
    sessions: int


class _Problem(Exception):
    def __init__(self, path: Sequence[Any], message: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.path = list(path)
        self.message = message
        self.final = final  # the budget is spent: the set stops here


def _render(value: Any, path: list[Any], context: dict[str, Any], budget: ExpansionBudget) -> Any:
    """The template ``value`` rendered: its strings and a pointer per value charged."""
    # jinja2 loads only when a SessionSet is read: plain manifests never import it.
    from reconciler.manifest.template import TemplateProblem, render_value

    try:
        if isinstance(value, str):
            return render_value(value, context, budget)
        count = len(value) if isinstance(value, dict | list) else 1
        budget.spend_bytes(VALUE_OVERHEAD * count, RENDERING)
    except BudgetExceeded as exc:  # says nothing of the template: shown under env too
        raise _Problem(path, str(exc), final=True) from None
    except TemplateProblem as exc:
        if is_secret_path(path):  # a secret value: not even the template's wording
            reason = "cannot be rendered (a secret value: reason not shown)"
            raise _Problem(path, reason) from None
        raise _Problem(path, str(exc)) from None
    if isinstance(value, dict):
        return {k: _render(v, [*path, k], context, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, [*path, i], context, budget) for i, v in enumerate(value)]
    return value


def _items(doc: RawDocument) -> list[tuple[Any, Node, dict[str, Any] | None]]:
    """(item, the node it comes from, the repo it sets) per session, in order."""
    generator = doc.value["generator"]
    assert doc.node is not None
    if "matrix" in generator:
        matrix: dict[str, list[Any]] = generator["matrix"]
        count = math.prod(len(values) for values in matrix.values())
        node, _ = node_at(doc.node, ["generator", "matrix"])
        if count > MAX_SET_SESSIONS:
            raise _Problem(
                ["generator", "matrix"],
                f"the matrix yields {count} sessions, over the {MAX_SET_SESSIONS} a set may",
            )
        keys = list(matrix)
        return [
            (dict(zip(keys, combination, strict=True)), node, None)
            for combination in itertools.product(*(matrix[k] for k in keys))
        ]
    kind = "items" if "items" in generator else "repos"
    entries: list[Any] = generator[kind]
    if len(entries) > MAX_SET_SESSIONS:
        raise _Problem(
            ["generator", kind],
            f"{len(entries)} {kind}, over the {MAX_SET_SESSIONS} sessions a set may yield",
        )
    out: list[tuple[Any, Node, dict[str, Any] | None]] = []
    for index, entry in enumerate(entries):
        node, _ = node_at(doc.node, ["generator", kind, index])
        if kind == "items":
            out.append((entry, node, None))
            continue
        repo = {"fullName": entry} if isinstance(entry, str) else dict(entry)
        owner, _, name = repo["fullName"].partition("/")
        out.append(({**repo, "owner": owner, "name": name}, node, repo))
    return out


def _node(doc: RawDocument, at: Node) -> MappingNode:
    """The template's nodes under a Session's keys: positions of the generated document."""
    assert doc.node is not None
    pairs: list[tuple[Node, Node]] = []
    for key in ("apiVersion", "kind"):
        value, key_node = node_at(doc.node, [key])
        assert key_node is not None
        if key == "kind":
            value = ScalarNode(STR_TAG, "Session", value.start_mark, value.end_mark)
        pairs.append((key_node, value))
    template, _ = node_at(doc.node, ["template"])
    if isinstance(template, MappingNode):
        pairs += template.value
    return MappingNode(MAP_TAG, pairs, at.start_mark, at.end_mark)


def _refs(value: Any, node: Node) -> list[RefString]:
    """The strings of a generated ``value`` holding ``${env:``, each text once per
    template position (a template can repeat one reference many times)."""
    found: dict[RefString, None] = {}
    index: dict[int, dict[Any, tuple[Node, Node]]] = {}
    for path, text in ref_strings(value):
        mark = node_at(node, path, index)[0].start_mark
        found[RefString(text, mark.line + 1, mark.column + 1, is_secret_path(path))] = None
    return list(found)


def _generate(
    doc: RawDocument,
    index: int,
    item: Any,
    at: Node,
    repo: dict[str, Any] | None,
    budget: ExpansionBudget,
) -> GeneratedDocument:
    rendered = _render(doc.value["template"], [], {"item": item, "index": index}, budget)
    value: dict[str, Any] = {"apiVersion": doc.value["apiVersion"], "kind": "Session"}
    value.update(rendered)
    if repo is not None:
        spec = value["spec"]
        base = spec.get("repo")
        spec["repo"] = {**(base if isinstance(base, dict) else {}), **repo}
    node = _node(doc, at)
    refs = _refs(value, node)
    mark = at.start_mark
    return GeneratedDocument(
        doc.file,
        value,
        mark.line + 1,
        mark.column + 1,
        node=node,
        refs=refs,
        depth=body_depth(value, MAX_DOCUMENT_DEPTH),
        set_name=doc.value["name"],
        item=f"item {index + 1}",
    )


def expand_set(
    doc: RawDocument, budget: ExpansionBudget
) -> tuple[list[GeneratedDocument], list[ManifestError]]:
    """The Session documents a schema-valid SessionSet yields, or the errors why not.

    Call it while ``doc`` still holds its node graph. A template error is reported
    once per template value (the first item it fails for), at that value's position.
    What the set generates is charged to ``budget`` (the run's); once it is spent the
    set stops, with one error at the value that spent it.
    """
    assert doc.node is not None
    set_name = doc.value["name"]
    errors: dict[str, ManifestError] = {}

    def fail(problem: _Problem, path: list[Any], context: str) -> None:
        node, _ = node_at(doc.node, path) if doc.node is not None else (None, None)
        where = field_path(path)
        error = located(doc.file, node, f"{where}: {problem.message}{context}")
        errors.setdefault(f"{error.file}:{error.line}:{error.column}", error)

    try:
        items = _items(doc)
    except _Problem as problem:
        fail(problem, problem.path, f" (SessionSet {set_name!r})")
        return [], list(errors.values())
    generated: list[GeneratedDocument] = []
    for index, (item, at, repo) in enumerate(items):
        try:
            generated.append(_generate(doc, index, item, at, repo, budget))
        except _Problem as problem:
            context = f" (SessionSet {set_name!r}, item {index + 1})"
            fail(problem, ["template", *problem.path], context)
            if problem.final:
                break
    return generated, list(errors.values())
