"""The CEL implementation, in one place: cel-expr-python (the Python wrapper of cel-cpp,
published by the CEL project itself).

Chosen by measurement (docs/concepts/policies.md, "Choosing the CEL package"): the
five example rules over 10,000 sessions cost 0.18 s with it, 1.2 s with
common-expression-language and about 12 s with cel-python; its errors carry
``line:column`` in the expression. It is imported on first use only: a run without a
``kind: Policy`` document never loads it.

Every variable is declared ``dyn`` (manifests are YAML, not protobuf), so type errors
that depend on the data surface at evaluation as error values, which this module turns
into :class:`CelFailure`. Compiled programs are cached by expression and variables:
each rule is compiled once per run, whoever asks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from reconciler.errors import UsageError

__all__ = [
    "CelFailure",
    "Program",
    "compile_expression",
    "needs_only",
]

_ERROR_RE = re.compile(r"ERROR: <input>:(?P<line>\d+):(?P<column>\d+): (?P<detail>[^\n]*)")


@dataclass
class CelFailure(Exception):
    """An expression that does not compile, or an evaluation that failed.

    ``line``/``column`` are 1-based inside the expression (None when CEL gave none).
    """

    detail: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        return self.detail


@cache
def _cel() -> Any:
    try:
        from cel_expr_python import cel  # type: ignore[import-untyped]
        from cel_expr_python.ext import ext_strings  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - only where no wheel exists
        raise UsageError(
            "kind: Policy documents need the cel-expr-python package, which is not "
            f"installed here ({exc}); install it, or run where a wheel exists "
            "(Linux x86_64/aarch64, macOS arm64)"
        ) from None
    return cel, ext_strings


@cache
def _environment(variables: tuple[str, ...]) -> Any:
    cel, ext_strings = _cel()
    return cel.NewEnv(
        variables={name: cel.Type.DYN for name in variables},
        extensions=[ext_strings.ExtStrings()],
    )


def _failure(exc: Exception) -> CelFailure:
    text = str(exc)
    found = list(_ERROR_RE.finditer(text))
    if not found:
        return CelFailure(text.removeprefix("INVALID_ARGUMENT: ").strip())
    first = found[0]
    detail = "; ".join(m["detail"].strip() for m in found)
    return CelFailure(detail, int(first["line"]), int(first["column"]))


class Program:
    """One compiled expression and what it returns (``bool``, ``string`` or ``dyn``)."""

    __slots__ = ("_expression", "_variables", "result_type")

    def __init__(self, expression: Any, variables: tuple[str, ...], result_type: str) -> None:
        self._expression = expression
        self._variables = variables
        self.result_type = result_type

    def activation(self, data: dict[str, Any]) -> Any:
        """Bindings for every program compiled with the same variables."""
        return _environment(self._variables).Activation(data)

    def holds(self, data: dict[str, Any]) -> bool:
        """Whether the expression gives ``true`` for ``data`` (bound for this one
        evaluation: cheaper than an activation when nothing else evaluates on it); an
        evaluation that fails is not true (``evaluate`` then says why)."""
        try:
            return self._expression.eval(data=data).value() is True
        except (RuntimeError, MemoryError):  # a budget CEL keeps (iterations), or memory
            return False

    def evaluate(self, activation: Any) -> Any:
        """The value, or :class:`CelFailure` for an error value (a missing key, a
        division by zero, no overload for the data's types), or for an evaluation CEL
        stops (its iteration budget) or that runs out of memory."""
        try:
            value = self._expression.eval(activation)
        except RuntimeError as exc:  # cel-expr-python raises RuntimeError for every status
            raise _failure(exc) from None
        except MemoryError:
            raise CelFailure("ran out of memory") from None
        result = value.value()
        if result is True or result is False:
            return result  # the hot path: a boolean (an error's value is its text)
        if value.type().name() == "ERROR":
            raise CelFailure(str(result))
        return value.plain_value()


@cache
def compile_expression(expression: str, variables: tuple[str, ...]) -> Program:
    """``expression`` compiled with ``variables`` declared; :class:`CelFailure` when it
    does not compile."""
    env = _environment(variables)
    try:
        compiled = env.compile(expression)
    except RuntimeError as exc:  # cel-expr-python raises RuntimeError for every status
        raise _failure(exc) from None
    return Program(compiled, variables, compiled.return_type().name().lower())


@cache
def needs_only(expression: str, variables: tuple[str, ...]) -> bool:
    """Whether ``expression`` compiles with only ``variables`` declared (so it needs no
    other: ``validate`` evaluates offline the session rules that need neither ``live``
    nor ``change``)."""
    try:
        compile_expression(expression, variables)
    except CelFailure:
        return False
    return True
