"""Compiled policies + a plan and what it was made from -> :class:`PolicyFinding` values.

Session rules run once per declared session they match (one CEL activation per
session, shared by every rule); plan rules once per plan. ``plan=None`` is
``validate``: only the session rules that read neither ``live`` nor ``change``. A rule
whose evaluation fails (a key the data lacks, no overload for its types) or gives no
boolean is a manifest error at the rule (exit 65), naming the session it failed on.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import ManifestError, ManifestErrors
from reconciler.manifest.policies import PolicyMatch
from reconciler.model import DesiredSession, Plan, PolicyFinding, RemoteSession
from reconciler.policy.compile import SESSION_VARIABLES, CompiledPolicy, CompiledRule, PolicySet
from reconciler.policy.engine import CelFailure, Program, compile_expression
from reconciler.policy.variables import (
    Judged,
    change_value,
    live_index,
    live_value,
    plan_value,
    session_actions,
    session_value,
    spec_fields,
)

__all__ = ["evaluate_policies", "matches"]

_OFFLINE = frozenset({"session"})


def matches(match: PolicyMatch, desired: DesiredSession) -> bool:
    """Whether a session rule with ``match`` applies to ``desired``."""
    if match.names and desired.name not in match.names:
        return False
    if match.sets and desired.set_name not in match.sets:
        return False
    if match.tags:
        tags = desired.resolved.get("tags") or ()  # as ``session.tags`` (resolved)
        return any(t in tags for t in match.tags)
    return True


@dataclass
class _Run:
    overrides: frozenset[str]
    findings: list[PolicyFinding] = field(default_factory=list)
    # One error per failing rule (the first session it failed on), and how many more.
    failures: dict[tuple[str, int], tuple[ManifestError, int]] = field(default_factory=dict)

    def fail(self, policy: CompiledPolicy, rule: CompiledRule, on: str, detail: str) -> None:
        key = (policy.name, rule.index)
        if key in self.failures:
            error, more = self.failures[key]
            self.failures[key] = (error, more + 1)
            return
        source = rule.declared.source
        message = f"policy {policy.name}: spec.rules[{rule.index}].expression {detail} on {on}"
        self.failures[key] = (
            ManifestError(message, file=source.file, line=source.line, column=source.column),
            0,
        )

    def check(
        self,
        policy: CompiledPolicy,
        rule: CompiledRule,
        activation: Any,
        desired: DesiredSession | None,
    ) -> None:
        """Evaluate one rule (the hot loop inlines the passing case: see ``_evaluate``)."""
        try:
            result = rule.program.evaluate(activation)
        except CelFailure as failure:
            self.fail(policy, rule, _on(desired), f"failed ({failure})")
            return
        if result is not True:
            self.settle(policy, rule, activation, desired, result)

    def settle(
        self,
        policy: CompiledPolicy,
        rule: CompiledRule,
        activation: Any,
        desired: DesiredSession | None,
        result: Any,
    ) -> None:
        """A rule that did not give ``true``: a finding, or a rule error."""
        if result is not False:
            kind = type(result).__name__
            self.fail(policy, rule, _on(desired), f"gave {kind} {result!r}, not a boolean")
            return
        declared = policy.declared
        self.findings.append(
            PolicyFinding(
                policy=declared.name,
                action=declared.action,
                message=_message(rule, activation),
                rule_source=rule.declared.source.location,
                session=desired.name if desired is not None else None,
                session_source=desired.source if desired is not None else None,
                overridable=declared.overridable,
                overridden=declared.overridable and declared.name in self.overrides,
                rule_index=rule.index,
            )
        )

    def raise_failures(self) -> None:
        if not self.failures:
            return
        errors = []
        for error, more in self.failures.values():
            if more:
                error = ManifestError(
                    f"{error.detail} (and {more} more)",
                    file=error.file,
                    line=error.line,
                    column=error.column,
                )
            errors.append(error)
        raise ManifestErrors(errors)


def _on(desired: DesiredSession | None) -> str:
    if desired is None:
        return "the plan"
    if desired.source is None:
        return f"session {desired.name}"
    return f"session {desired.name} ({desired.source})"


def _message(rule: CompiledRule, activation: Any) -> str:
    declared = rule.declared
    if rule.message_program is not None:
        try:
            text = rule.message_program.evaluate(activation)
        except CelFailure:
            text = None  # the static message, or the expression, says it instead
        if isinstance(text, str) and text:
            return text
    return declared.message or f"{declared.expression} is false"


def _applicable(
    chosen: Sequence[tuple[CompiledPolicy, Sequence[CompiledRule]]], session: DesiredSession
) -> tuple[int, ...]:
    return tuple(i for i, (policy, _) in enumerate(chosen) if _applies(policy, session))


def _applies(policy: CompiledPolicy, session: DesiredSession) -> bool:
    """Whether a session policy judges ``session``: ``match`` chooses it (no ``match``:
    every session) and ``exclude`` does not."""
    declared = policy.declared
    if declared.match and not matches(declared.match, session):
        return False
    return not (declared.exclude and matches(declared.exclude, session))


def _conjunction(
    applicable: Sequence[tuple[CompiledPolicy, Sequence[CompiledRule]]],
) -> Program | None:
    """One program that is true when every rule is (None when it does not compile)."""
    # Each closing parenthesis on a line of its own: a rule ending in a `//` comment
    # would otherwise comment out the `) && (` after it.
    texts = [f"({rule.declared.expression}\n)" for _, rules in applicable for rule in rules]
    try:
        return compile_expression(" && ".join(texts), SESSION_VARIABLES)
    except CelFailure:  # pragma: no cover - each part compiled on its own
        return None


def _texts(groups: Iterable[Iterable[CompiledRule]]) -> list[str]:
    texts = []
    for rules in groups:
        for rule in rules:
            texts.append(rule.declared.expression)
            if rule.message_program is not None and rule.declared.message_expression:
                texts.append(rule.declared.message_expression)
    return texts


def _session_rules(
    policies: Sequence[CompiledPolicy], offline: bool | None
) -> list[tuple[CompiledPolicy, tuple[CompiledRule, ...]]]:
    """The session rules to evaluate: those that read only the declaration
    (``offline``), those that read more (``False``), or all (``None``)."""
    chosen = []
    for policy in policies:
        rules = tuple(
            r for r in policy.rules if offline is None or (r.reads <= _OFFLINE) is offline
        )
        if rules:
            chosen.append((policy, rules))
    return chosen


def evaluate_policies(
    policies: PolicySet,
    *,
    project: str,
    desired: Sequence[DesiredSession],
    plan: Plan | None = None,
    observed: Iterable[RemoteSession] = (),
    overrides: Iterable[str] = (),
    in_scope: Callable[[str], bool] | None = None,
    formerly: Collection[str] = (),
    offline_findings: Sequence[PolicyFinding] | None = None,
) -> tuple[PolicyFinding, ...]:
    """Every violation, in order: sessions as declared, then the plan's rules.

    Without ``plan`` only the rules that read nothing but the declaration are evaluated
    (``validate``, and a plan before it reads the hub: a rule that fails is a manifest
    error then, before any request). ``offline_findings`` are those, already found
    with the same arguments: the rules they come from are not evaluated again.

    ``in_scope`` narrows the sessions checked (``--target``/``--exclude``).
    ``overrides`` are ``--override-policy`` names (checked by ``check_overrides``).
    ``formerly`` is the Project's ``previously``: its sessions are the project's own.
    Raises :class:`ManifestErrors` for rules that fail or give no boolean.
    """
    run = _Run(frozenset(overrides))
    observed = tuple(observed)
    offline: bool | None = True if plan is None else None
    if plan is not None and offline_findings is not None:
        offline = False  # the declaration's rules ran before the hub was read
    chosen = _session_rules(policies.scoped("session"), offline=offline)
    if chosen:
        reads = frozenset().union(*(r.reads for _, rules in chosen for r in rules))
        live = live_index(project, desired, observed, formerly) if "live" in reads else {}
        actions = session_actions(plan) if plan is not None and "change" in reads else {}
        first = chosen[0][1][0].program
        fields = spec_fields(_texts(rules for _, rules in chosen))
        combined: dict[tuple[int, ...], Program | None] = {}
        # Without any match or exclude, every policy applies to every session: one key.
        selective = any(p.declared.match or p.declared.exclude for p, _ in chosen)
        every = None if selective else tuple(range(len(chosen)))
        judged: Judged = {}  # this run's env judgments, dropped with it
        for session in desired:
            if in_scope is not None and not in_scope(session.name):
                continue
            if session.state == "forgotten":  # being let go: no longer the tool's to judge
                continue
            # Which policies apply, as indexes into ``chosen`` (cheap to hash).
            key = every if every is not None else _applicable(chosen, session)
            if not key:
                continue
            data = {
                "session": session_value(session, fields, judged),
                "live": live_value(live.get(session.name)),
                "change": change_value(actions.get(session.name)),
            }
            # The hot path: every applicable rule at once, in one evaluation (most
            # sessions pass them all); only otherwise one by one, to say which broke.
            if key not in combined:
                combined[key] = _conjunction([chosen[i] for i in key])
            together = combined[key]
            if together is not None and together.holds(data):
                continue
            activation = first.activation(data)
            for i in key:
                policy, rules = chosen[i]
                for rule in rules:
                    run.check(policy, rule, activation, session)
    plan_rules = [(p, r) for p in policies.scoped("plan") for r in p.rules]
    if plan is not None and plan_rules:
        activation = plan_rules[0][1].program.activation({"plan": plan_value(plan, observed)})
        for policy, rule in plan_rules:
            run.check(policy, rule, activation, None)
    run.raise_failures()
    if offline is not False or offline_findings is None:
        return tuple(run.findings)
    # In the order of one evaluation: by session as declared, then rule as written.
    position = {d.name: i for i, d in enumerate(desired)}
    ranks = {p.declared.name: i for i, p in enumerate(policies.scoped("session"))}
    found = [*offline_findings, *(f for f in run.findings if f.session is not None)]
    found.sort(key=lambda f: (position.get(f.session or "", -1), ranks[f.policy], f.rule_index))
    return (*found, *(f for f in run.findings if f.session is None))
