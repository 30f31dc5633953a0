"""The template language of SessionSets: Jinja2 expressions in a sandbox.

A string of a set's template may hold ``{{ expression }}`` (filters included) and
``{% if %}`` blocks; nothing else. Jinja2's ``SandboxedEnvironment`` already refuses
attribute access to internals; on top of it this environment:

- makes an undefined name an error (``StrictUndefined``), never an empty string;
- has no globals (no ``range``, ``lipsum``, ``namespace``...), calls no function or
  method (use filters: ``{{ item.repo | lower }}``, not ``item.repo.lower()``), and
  offers a short list of filters plus ``slug`` (lowercase letters, digits and ``-``);
- refuses every statement but ``if`` (no loops, macros, assignments, includes);
- refuses ``**`` and ``%`` string formatting, and bounds ``*`` repetition and every
  rendered value to :data:`MAX_VALUE_CHARS` characters;
- charges what it produces to the run's :class:`ExpansionBudget` (bytes, in
  proportion to the manifests read): every rendered value, and on the way every
  string or list an operation builds (``*``, ``+``, ``~``, slices, and the filters
  that make text), each checked against what is left *before* it is allocated.

So rendering costs at most the run's budget, whatever the expressions, and runs no
code of the manifest's author. A value that is one expression
and nothing else (``"{{ item.iterations }}"``) keeps the expression's type (a number,
a boolean, a list, a mapping); any other string renders to a string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache, lru_cache
from typing import Any, TypeVar

from jinja2 import StrictUndefined, Template, TemplateError, Undefined, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS, make_attrgetter
from jinja2.runtime import Context, str_join
from jinja2.sandbox import SandboxedEnvironment

from reconciler.apifacts import MAX_BODY_BYTES
from reconciler.manifest.budget import (
    RENDERING,
    VALUE_OVERHEAD,
    ExpansionBudget,
    size_of,
    text_size,
)

__all__ = [
    "ALLOWED_FILTERS",
    "MAX_VALUE_CHARS",
    "RENDERING",
    "TemplateProblem",
    "render_value",
    "slug",
]

# No rendered value may be longer than a whole request may be.
MAX_VALUE_CHARS = MAX_BODY_BYTES
ALLOWED_FILTERS = (
    "capitalize",
    "default",
    "first",
    "int",
    "join",
    "last",
    "length",
    "lower",
    "replace",
    "string",
    "title",
    "trim",
    "upper",
)
_MARKERS = ("{{", "{%", "{#")
# The code of a template: what compiling costs (an unclosed tag runs to the end).
_TAG = re.compile(r"\{\{.*?(?:\}\}|\Z)|\{%.*?(?:%\}|\Z)", re.S)
_WHOLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.S)


class TemplateProblem(Exception):
    """A template that cannot be rendered: the message says why, without values."""


def slug(value: Any) -> str:
    """Lowercase letters, digits and ``-``: ``acme/API_v2`` -> ``acme-api-v2``."""
    return re.sub(r"[^a-z0-9]+", "-", str(value).lower()).strip("-")


# The run's budget, while render_value runs: the sandbox's hooks charge it.
_BUDGET: ContextVar[ExpansionBudget] = ContextVar("template_budget")
_T = TypeVar("_T")


def _built(bound: int, build: Callable[[], _T]) -> _T:
    """``build()``'s result, refused before it runs when ``bound`` (the most it can
    produce) does not fit in the budget, and charged once made."""
    budget = _BUDGET.get()
    budget.check_bytes(bound, RENDERING)
    result = build()
    budget.spend_bytes(size_of(result), RENDERING)
    return result


def _times(left: Any, right: Any) -> Any:
    sized = [v for v in (left, right) if isinstance(v, str | list | tuple)]
    times = [v for v in (left, right) if isinstance(v, int) and not isinstance(v, bool)]
    if sized and times:
        count = max(times[0], 0)
        if len(sized[0]) * count > MAX_VALUE_CHARS:
            raise SecurityError(f"a repeated value would be over {MAX_VALUE_CHARS} characters")
        return _built(size_of(sized[0]) * count, lambda: left * right)
    return _built(size_of(left) + size_of(right), lambda: left * right)


class _CodeGenerator(CodeGenerator):
    """Jinja2's code, but ``~`` and slices go through the environment, as binary
    operators do in the sandbox, so that their results are bounded before they exist."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat_checked((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    @optimizeconst
    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if not isinstance(node.arg, nodes.Slice):
            super().visit_Getitem(node, frame)
            return
        self.write("environment.slice_checked(")
        self.visit(node.node, frame)
        for part in (node.arg.start, node.arg.stop, node.arg.step):
            self.write(", ")
            if part is None:
                self.write("None")
            else:
                self.visit(part, frame)
        self.write(")")


class _Environment(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _CodeGenerator

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        raise SecurityError("calling functions or methods is not allowed (use a filter)")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("the ** operator is not allowed")
        if operator == "%":
            if isinstance(left, str):
                raise SecurityError("% string formatting is not allowed (use ~ to join text)")
            return left % right
        if operator == "+":
            return _built(size_of(left) + size_of(right), lambda: left + right)
        return _times(left, right)

    def concat_checked(self, parts: tuple[Any, ...]) -> str:
        """``a ~ b``: the parts as text, joined."""
        return _built(sum(size_of(part) for part in parts), lambda: str_join(parts))

    def slice_checked(self, value: Any, start: Any, stop: Any, step: Any) -> Any:
        """``value[start:stop:step]``."""
        part = slice(start, stop, step)
        if not isinstance(value, str | list | tuple):
            return value[part]
        count = len(range(*part.indices(len(value))))
        # Bytes per character at most, or a pointer per element.
        each = (1 if value.isascii() else 4) if isinstance(value, str) else VALUE_OVERHEAD
        return _built(count * each, lambda: value[part])


def _checked_output(value: Any) -> Any:
    """What ``{{ value }}`` writes among text: refused before ``str()`` when it cannot
    fit (the text written is charged as it is produced)."""
    _BUDGET.get().check_bytes(size_of(value), RENDERING)
    return value


def _text_filter(original: Callable[..., Any], growth: int = 1) -> Callable[..., Any]:
    """A filter that makes text of its input: bounded by ``growth`` times its size
    (case mappings may turn a character into three)."""

    @pass_context
    def checked(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        return _built(size_of(value) * growth, lambda: original(value, *args, **kwargs))

    return checked


@pass_context
def _replace(context: Context, value: Any, old: Any, new: Any, count: Any = None) -> Any:
    budget = _BUDGET.get()
    for part in (value, old, new):
        budget.check_bytes(size_of(part), RENDERING)  # each is made text first
    text, old_text, new_text = str(value), str(old), str(new)
    found = text.count(old_text) if old_text else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    grows = max(0, text_size(new_text) - text_size(old_text))
    return _built(
        text_size(text) + found * grows,
        lambda: FILTERS["replace"](context.eval_ctx, text, old_text, new_text, count),
    )


@pass_context
def _join(context: Context, value: Any, d: Any = "", attribute: Any = None) -> Any:
    separator = str(d)
    if isinstance(value, str):
        count, bound = len(value), text_size(value)
    else:
        if attribute is not None:
            value = [make_attrgetter(context.environment, attribute)(v) for v in value]
        value = list(value)
        count, bound = len(value), sum(size_of(v) for v in value)
    bound += max(count - 1, 0) * text_size(separator)
    return _built(bound, lambda: FILTERS["join"](context.eval_ctx, value, separator))


# The filters that make text or lists, checked; the others return (part of) their input.
_CHECKED_FILTERS: dict[str, Callable[..., Any]] = {
    "capitalize": _text_filter(FILTERS["capitalize"], 3),
    "join": _join,
    "lower": _text_filter(FILTERS["lower"], 3),
    "replace": _replace,
    "string": _text_filter(FILTERS["string"]),
    "title": _text_filter(FILTERS["title"], 3),
    "trim": _text_filter(FILTERS["trim"]),
    "upper": _text_filter(FILTERS["upper"], 3),
}


@cache
def _environment() -> _Environment:
    env = _Environment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_checked_output,
    )
    filters: dict[str, Callable[..., Any]] = {
        name: _CHECKED_FILTERS.get(name, FILTERS[name]) for name in ALLOWED_FILTERS
    }
    filters["slug"] = _text_filter(slug)
    env.filters = filters
    env.globals = {}
    return env


def _check_statements(source: str) -> None:
    env = _environment()
    tree = env.parse(source)
    for node in tree.find_all(nodes.Stmt):
        if not isinstance(node, nodes.Output | nodes.If):
            name = type(node).__name__.lower()
            raise SecurityError(f"the {name} statement is not allowed (only {{% if %}})")


def _charge_code(source: str) -> None:
    """Charge compiling ``source`` (called on a cache miss only: compiled once, paid once)."""
    _BUDGET.get().spend_code(sum(len(tag) for tag in _TAG.findall(source)))


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Template:
    _charge_code(source)
    _check_statements(source)
    return _environment().from_string(source)


@lru_cache(maxsize=4096)
def _expression(source: str) -> Any:
    _charge_code("{{" + source + "}}")
    return _environment().compile_expression(source, undefined_to_none=False)


def _native(value: Any) -> Any:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, str | bool | int | float) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _native(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_native(v) for v in value]
    return str(value)


@contextmanager
def _charging(budget: ExpansionBudget) -> Iterator[None]:
    token = _BUDGET.set(budget)
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _rendered_text(template: Template, context: Mapping[str, Any], budget: ExpansionBudget) -> str:
    pieces: list[str] = []
    for piece in template.generate(**context):  # each piece charged as it comes
        budget.spend_bytes(text_size(piece), RENDERING)
        pieces.append(piece)
    return "".join(pieces)


# What jinja2 says of a name it does not know: an attribute or key, a variable, a filter.
_UNKNOWN = re.compile(
    r"has no attribute '(?P<key>[^']+)'|^UndefinedError: '(?P<name>[^']+)' is undefined"
    r"|No filter named '(?P<filter>[^']+)'"
)


def _nearest(said: str, context: Mapping[str, Any]) -> str:
    """``"; did you mean fullName?"`` for the unknown name jinja2's message ``said``
    names, from the names the template could have meant: the keys of the mappings in
    ``context`` (two levels down: ``item.owner.name``), its variables, the filters.
    Names only: never a value."""
    from reconciler.suggest import did_you_mean

    found = _UNKNOWN.search(said)
    if found is None:
        return ""
    if found["filter"] is not None:
        return did_you_mean(found["filter"], _environment().filters)
    if found["name"] is not None:
        return did_you_mean(found["name"], context)
    keys: set[str] = set()
    level = list(context.values())
    for _ in range(2):
        inner = [v for v in level if isinstance(v, Mapping)]
        keys.update(str(k) for v in inner for k in v)
        level = [w for v in inner for w in v.values()]
    return did_you_mean(found["key"], keys)


def render_value(source: str, context: Mapping[str, Any], budget: ExpansionBudget) -> Any:
    """``source`` rendered with ``context``; raises :class:`TemplateProblem`, or
    :class:`~reconciler.manifest.budget.BudgetExceeded` once ``budget`` is spent.

    A string without ``{{``, ``{%`` or ``{#`` is returned as it is. What rendering
    produces is charged to ``budget``: the value returned, and the strings and lists
    built on the way; a template costs at least its own length each time it is
    rendered, so that one which renders to little (a thousand empty ``{% if %}``) is
    bounded too.
    """
    length = text_size(source)
    if not any(marker in source for marker in _MARKERS):
        budget.spend_bytes(length, RENDERING)
        return source
    budget.check_bytes(length, RENDERING)
    left = budget.bytes_left
    try:
        with _charging(budget):
            whole = _WHOLE_EXPRESSION.match(source)
            if whole is not None:
                result = _expression(whole["expr"])(**context)
                budget.spend_bytes(size_of(result), RENDERING)  # before _native copies it
                value = _native(result)
            else:
                value = _rendered_text(_compiled(source), context, budget)
    except TemplateError as exc:  # syntax, undefined names, the sandbox's refusals
        said = f"{type(exc).__name__}: {exc.message}"
        hint = _nearest(said, context)
        raise TemplateProblem(said.rstrip(".") + hint if hint else said) from None
    except (TypeError, ValueError, ArithmeticError, RecursionError) as exc:
        raise TemplateProblem(f"{type(exc).__name__}: {exc}") from None
    except SyntaxError as exc:  # Python's own limits on the code a template compiles to
        raise TemplateProblem(f"too deeply nested to compile ({exc.msg})") from None
    except MemoryError:
        raise TemplateProblem("ran out of memory") from None
    budget.spend_bytes(max(0, length - (left - budget.bytes_left)), RENDERING)
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        raise TemplateProblem(f"the rendered value is over {MAX_VALUE_CHARS} characters")
    return value
