"""The scope of a plan, resolved once; ``--selector tag=VALUE`` chooses declared
sessions by a tag, as kubectl's ``-l``.

Selectors widen ``--target``: the plan covers every targeted name and every declared
session that carries one of the selected tags (repeated selectors add up, like repeated
targets). A selector no declared session matches is a usage error naming the close
tags, so a typo never narrows a plan to nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.errors import UsageError
from reconciler.model import DesiredSession
from reconciler.suggest import did_you_mean

__all__ = [
    "SELECTOR_KEYS",
    "Scope",
    "ScopeFlags",
    "check_replace_names",
    "parse_selector",
    "renamed_name",
    "select_names",
]

# What a selector may test; only tags for now (``tag=VALUE``).
SELECTOR_KEYS: tuple[str, ...] = ("tag",)


@dataclass(frozen=True)
class Scope:
    """What a plan covers, resolved once (:meth:`ScopeFlags.resolve`): ``--target``
    names with the selected ones added, ``--exclude`` names, ``--replace`` names (each
    declared active) and ``--destroy``."""

    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    destroy: bool = False

    def includes(self, name: str) -> bool:
        """Whether the plan shows and applies the actions of ``name``."""
        return (not self.targets or name in self.targets) and name not in self.excludes


@dataclass(frozen=True)
class ScopeFlags:
    """The scope as a command was given it (``--target``, ``--exclude``,
    ``--selector``, ``--replace``, ``--destroy``), before the manifests are read."""

    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    selectors: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    destroy: bool = False

    @property
    def given(self) -> bool:
        """Whether any scope flag was given."""
        return bool(self.targets or self.excludes or self.selectors or self.replace or self.destroy)

    def resolve(self, desired: Sequence[DesiredSession]) -> Scope:
        """The :class:`Scope` over ``desired``: selectors become targets; a selector
        nothing matches or a ``--replace`` name not declared active raises
        :class:`UsageError` (exit 64). Names neither declared nor managed are the
        planner's to refuse (it knows the hub's)."""
        targets = self.targets
        if self.selectors:
            targets = tuple(dict.fromkeys([*targets, *select_names(desired, self.selectors)]))
        check_replace_names(desired, self.replace)
        return Scope(targets, self.excludes, self.replace, self.destroy)


def renamed_name(flag: str, old: str, new: str) -> str:
    """What a scope flag given a session's old name (``previously``) is told: the
    declared name its session is planned under."""
    return (
        f"{flag} {old}: renamed to {new} (whose previously names {old}), its session is "
        f"planned as {new}: use {flag} {new}"
    )


def check_replace_names(desired: Sequence[DesiredSession], replace: Sequence[str]) -> None:
    """Raise :class:`UsageError` (exit 64) for a ``--replace`` name that is not declared
    active: only a declared session has a spec to replace it with (an old name of one
    is told the name it has now)."""
    active = sorted(d.name for d in desired if d.state == "active")
    renamed = {old: d.name for d in desired if d.state == "active" for old in d.previously}
    problems = [
        renamed_name("--replace", name, renamed[name])
        if name in renamed
        else f"--replace {name}: no session of that name is declared active"
        + did_you_mean(name, active)
        for name in dict.fromkeys(replace)
        if name not in active
    ]
    if problems:
        raise UsageError("\n".join(problems))


def parse_selector(text: str) -> tuple[str, str]:
    """``"tag=VALUE"`` -> ``("tag", "VALUE")``; :class:`UsageError` for anything else."""
    key, sep, value = text.partition("=")
    if not sep or not value:
        raise UsageError(f"--selector {text}: expected tag=VALUE")
    if key not in SELECTOR_KEYS:
        hint = did_you_mean(key, SELECTOR_KEYS, show=lambda k: f"{k}={value}", n=1)
        raise UsageError(f"--selector {text}: only tag=VALUE selects sessions{hint}")
    return key, value


def _tags(d: DesiredSession) -> tuple[str, ...]:
    tags = d.resolved.get("tags") or ()
    return tuple(t for t in tags if isinstance(t, str))


def select_names(desired: Sequence[DesiredSession], selectors: Sequence[str]) -> tuple[str, ...]:
    """The declared names carrying a selected tag, in declaration order.

    Raises :class:`UsageError` (exit 64) naming each selector that matches nothing and
    the declared tags close to it.
    """
    wanted = [parse_selector(s)[1] for s in dict.fromkeys(selectors)]
    known = sorted({t for d in desired for t in _tags(d)})
    problems = []
    for value in wanted:
        if value not in known:
            hint = did_you_mean(value, known, show=lambda t: f"tag={t}")
            problems.append(f"--selector tag={value}: no declared session carries that tag{hint}")
    if problems:
        raise UsageError("\n".join(problems))
    return tuple(d.name for d in desired if set(_tags(d)) & set(wanted))
