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
  rendered value to :data:`MAX_VALUE_CHARS` characters.

So rendering costs at most about the size of the manifest times the number of
sessions, and runs no code of the manifest's author. A value that is one expression
and nothing else (``"{{ item.iterations }}"``) keeps the expression's type (a number,
a boolean, a list, a mapping); any other string renders to a string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache, lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, Undefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.sandbox import SandboxedEnvironment

from reconciler.apifacts import MAX_BODY_BYTES

__all__ = ["ALLOWED_FILTERS", "MAX_VALUE_CHARS", "TemplateProblem", "render_value", "slug"]

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
_WHOLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.S)


class TemplateProblem(Exception):
    """A template that cannot be rendered: the message says why, without values."""


def slug(value: Any) -> str:
    """Lowercase letters, digits and ``-``: ``acme/API_v2`` -> ``acme-api-v2``."""
    return re.sub(r"[^a-z0-9]+", "-", str(value).lower()).strip("-")


class _Environment(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        raise SecurityError("calling functions or methods is not allowed (use a filter)")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("the ** operator is not allowed")
        if operator == "%":
            if isinstance(left, str):
                raise SecurityError("% string formatting is not allowed (use ~ to join text)")
            return left % right
        sized = [v for v in (left, right) if isinstance(v, str | list | tuple)]
        times = [v for v in (left, right) if isinstance(v, int) and not isinstance(v, bool)]
        if sized and times and len(sized[0]) * max(times[0], 0) > MAX_VALUE_CHARS:
            raise SecurityError(f"a repeated value would be over {MAX_VALUE_CHARS} characters")
        return left * right


@cache
def _environment() -> _Environment:
    env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    filters: dict[str, Callable[..., Any]] = {name: FILTERS[name] for name in ALLOWED_FILTERS}
    filters["slug"] = slug
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


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Template:
    _check_statements(source)
    return _environment().from_string(source)


@lru_cache(maxsize=4096)
def _expression(source: str) -> Any:
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


def render_value(source: str, context: Mapping[str, Any]) -> Any:
    """``source`` rendered with ``context``; raises :class:`TemplateProblem`.

    A string without ``{{``, ``{%`` or ``{#`` is returned as it is.
    """
    if not any(marker in source for marker in _MARKERS):
        return source
    try:
        whole = _WHOLE_EXPRESSION.match(source)
        if whole is not None:
            value = _native(_expression(whole["expr"])(**context))
        else:
            value = _compiled(source).render(**context)
    except TemplateError as exc:  # syntax, undefined names, the sandbox's refusals
        raise TemplateProblem(f"{type(exc).__name__}: {exc.message}") from None
    except (TypeError, ValueError, ArithmeticError, RecursionError) as exc:
        raise TemplateProblem(f"{type(exc).__name__}: {exc}") from None
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        raise TemplateProblem(f"the rendered value is over {MAX_VALUE_CHARS} characters")
    return value
