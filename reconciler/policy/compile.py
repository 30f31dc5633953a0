"""Declared policies -> compiled programs, or located manifest errors (exit 65).

A rule that does not compile, or whose type CEL already knows is not a boolean, is an
error at the rule's ``file:line:col`` (the column of the CEL error inside the
expression, mapped to the file). Each rule also learns which variables it needs, so
``validate`` (no hub) evaluates exactly the session rules that need neither ``live``
nor ``change``, and an evaluation builds only the variables some rule reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.errors import ManifestError, ManifestErrors, UsageError
from reconciler.manifest.policies import DeclaredPolicy, DeclaredRule, ExpressionSource
from reconciler.policy.engine import CelFailure, Program, compile_expression, needs_only
from reconciler.suggest import did_you_mean

__all__ = [
    "PLAN_VARIABLES",
    "SESSION_VARIABLES",
    "CompiledPolicy",
    "CompiledRule",
    "PolicySet",
    "check_overrides",
    "compile_policies",
]

# What each scope sees (docs/concepts/policies.md describes each variable).
SESSION_VARIABLES: tuple[str, ...] = ("session", "live", "change")
PLAN_VARIABLES: tuple[str, ...] = ("plan",)
_RESULT_TYPES = {"expression": ("bool", "dyn"), "messageExpression": ("string", "dyn")}


@dataclass(frozen=True)
class CompiledRule:
    declared: DeclaredRule
    index: int
    program: Program
    message_program: Program | None
    # The variables the rule (and its messageExpression) reads, of its scope's.
    reads: frozenset[str]


@dataclass(frozen=True)
class CompiledPolicy:
    declared: DeclaredPolicy
    rules: tuple[CompiledRule, ...]

    @property
    def name(self) -> str:
        return self.declared.name


@dataclass(frozen=True)
class PolicySet:
    """Every compiled policy of a run, in file order."""

    policies: tuple[CompiledPolicy, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.policies)

    def scoped(self, scope: str) -> tuple[CompiledPolicy, ...]:
        return tuple(p for p in self.policies if p.declared.scope == scope)


def _located(
    source: ExpressionSource, expression: str, failure: CelFailure, message: str
) -> ManifestError:
    line, column = source.line, source.column
    if failure.line is not None and failure.column is not None:
        line, mapped = source.at(expression, failure.line, failure.column)
        column = mapped if mapped is not None else source.column
    return ManifestError(message, file=source.file, line=line, column=column)


def _compile_one(
    policy: DeclaredPolicy,
    index: int,
    field: str,
    expression: str,
    source: ExpressionSource,
    variables: tuple[str, ...],
) -> tuple[Program | None, ManifestError | None]:
    where = f"policy {policy.name}: spec.rules[{index}].{field}"
    try:
        program = compile_expression(expression, variables)
    except CelFailure as failure:
        seen = ", ".join(variables)
        return None, _located(
            source, expression, failure, f"{where} does not compile: {failure} (it may use {seen})"
        )
    allowed = _RESULT_TYPES[field]
    if program.result_type not in allowed:
        want = "a boolean" if field == "expression" else "a string"
        message = f"{where} evaluates to {program.result_type}, not {want}"
        return None, ManifestError(
            message, file=source.file, line=source.line, column=source.column
        )
    return program, None


def _reads(texts: Sequence[str], variables: tuple[str, ...]) -> frozenset[str]:
    """The variables the expressions cannot compile without."""
    return frozenset(
        v
        for v in variables
        if not all(needs_only(t, tuple(o for o in variables if o != v)) for t in texts)
    )


def compile_policies(declared: Sequence[DeclaredPolicy]) -> PolicySet:
    """Compile every rule (once per run: programs are cached by expression); raise
    :class:`ManifestErrors` listing every rule that fails, each at its place."""
    errors: list[ManifestError] = []
    compiled: list[CompiledPolicy] = []
    for policy in declared:
        variables = SESSION_VARIABLES if policy.scope == "session" else PLAN_VARIABLES
        rules: list[CompiledRule] = []
        for index, rule in enumerate(policy.rules):
            program, error = _compile_one(
                policy, index, "expression", rule.expression, rule.source, variables
            )
            message_program = None
            if error is None and rule.message_expression is not None:
                assert rule.message_source is not None
                message_program, error = _compile_one(
                    policy,
                    index,
                    "messageExpression",
                    rule.message_expression,
                    rule.message_source,
                    variables,
                )
            if error is not None:
                errors.append(error)
                continue
            assert program is not None
            texts = [rule.expression]
            if message_program is not None and rule.message_expression is not None:
                texts.append(rule.message_expression)
            reads = _reads(texts, variables)
            rules.append(CompiledRule(rule, index, program, message_program, reads))
        compiled.append(CompiledPolicy(policy, tuple(rules)))
    if errors:
        raise ManifestErrors(errors)
    return PolicySet(tuple(compiled))


def check_overrides(declared: Sequence[DeclaredPolicy], overrides: Sequence[str]) -> None:
    """``--override-policy`` names must be declared policies that are ``overridable``
    (exit 64 otherwise, before any request)."""
    by_name = {p.name: p for p in declared}
    for name in overrides:
        policy = by_name.get(name)
        if policy is None:
            known = f" (policies: {', '.join(sorted(by_name))})" if by_name else ""
            raise UsageError(
                f"--override-policy {name}: no such policy{did_you_mean(name, by_name)}{known}"
            )
        if not policy.overridable:
            raise UsageError(
                f"--override-policy {name}: the policy ({policy.source}) is not "
                "overridable; only a policy that declares `overridable: true` can be lifted"
            )
