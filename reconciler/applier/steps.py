"""The order in which a plan's actions run: phases of steps.

A replacement is two steps (create the new session, then archive or delete the old
one); every other action is one. Phases run one after another, the steps inside a
phase run in parallel:

    0 creates (new sessions, the new side of replacements, re-creations)
    1 updates and resumes
    2 archives (the old side of a replacement only once its new session exists)
    3 deletes
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from reconciler.model import Action

__all__ = ["PHASE_NAMES", "Operation", "Step", "build_phases"]

Operation = Literal["create", "update", "resume", "archive", "delete"]

PHASE_NAMES: tuple[str, ...] = ("creates", "updates and resumes", "archives", "deletes")
_PHASE_OF: dict[Operation, int] = {"create": 0, "update": 1, "resume": 1, "archive": 2, "delete": 3}


@dataclass(frozen=True)
class Step:
    """One request-level operation of action ``index`` (its position in the plan)."""

    index: int
    operation: Operation
    last: bool  # the action's result is known once this step ends

    @property
    def phase(self) -> int:
        return _PHASE_OF[self.operation]

    @property
    def destroys(self) -> bool:
        return self.operation in ("archive", "delete")


def _operations(action: Action) -> tuple[Operation, ...]:
    if action.kind == "replace":
        return ("create", action.replace_with or "archive")
    return (action.kind,)


def build_phases(actions: Sequence[Action]) -> tuple[tuple[Step, ...], ...]:
    """The steps of ``actions`` grouped by phase, in plan order inside each phase."""
    phases: list[list[Step]] = [[] for _ in PHASE_NAMES]
    for index, action in enumerate(actions):
        operations = _operations(action)
        for position, operation in enumerate(operations):
            step = Step(index, operation, last=position == len(operations) - 1)
            phases[step.phase].append(step)
    return tuple(tuple(p) for p in phases)
