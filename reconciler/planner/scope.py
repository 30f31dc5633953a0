"""``--selector tag=VALUE``: declared sessions chosen by a tag, as kubectl's ``-l``.

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

__all__ = ["SELECTOR_KEYS", "Scope", "parse_selector", "select_names"]

# What a selector may test; only tags for now (``tag=VALUE``).
SELECTOR_KEYS: tuple[str, ...] = ("tag",)


@dataclass(frozen=True)
class Scope:
    """What a plan covers, resolved once: ``--target`` names (selectors already added),
    ``--exclude`` names, ``--replace`` names and ``--destroy``."""

    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    destroy: bool = False

    def includes(self, name: str) -> bool:
        """Whether the plan shows and applies the actions of ``name``."""
        return (not self.targets or name in self.targets) and name not in self.excludes


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
