"""``apply_plan``: run a plan's actions through a client, phase by phase, in parallel.

Guarantees:
- phases in order (steps.py); inside a phase at most ``parallelism`` requests at once;
- every body's ``${env:...}`` is resolved before the first request (envresolve.py);
- a create is never repeated blindly (create.py);
- a failed action does not stop independent ones; its dependants are skipped: the old
  side of a replacement whose new session failed, and any archive or delete of a name
  whose creation failed in this apply (so a name is never left with no session);
- right before a phase that archives duplicates the plan found, the hub is listed
  again: a duplicate that would now be the last active session of its name (the one
  kept was archived meanwhile) is not archived (``duplicates.last_copies``);
- once ``stop_event`` is set no new step starts; running ones finish; unstarted actions
  are reported as skipped and the report says it was interrupted;
- after ``unreachable_after`` consecutive actions failed because no connection could be
  made (nothing was sent), the hub is taken as unreachable: no new step starts, the
  rest are reported as not started and the report says ``unreachable``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.applier import create as create_mod
from reconciler.applier import lifecycle
from reconciler.applier.duplicates import last_copies
from reconciler.applier.envresolve import resolve_bodies
from reconciler.applier.protocol import ApplyClient
from reconciler.applier.steps import Step, build_phases
from reconciler.errors import ConnectFailedError, ReconcilerError
from reconciler.model import (
    Action,
    ActionOutcome,
    ActionResult,
    ApplyReport,
    Plan,
    RemoteSession,
)
from reconciler.planner.core import beside_the_kept

__all__ = ["apply_plan"]

OnResult = Callable[[ActionResult], None]

INTERRUPTED = "not started: interrupted"
UNREACHABLE = "not started: hub unreachable"
# A second Ctrl-C (or SIGTERM: a CI runner's cancel sends both) cancels the requests
# under way: whether each took effect is known only from the hub.
ABANDONED = (
    "abandoned while running (a second interrupt): it may have taken effect; the next "
    "plan shows what it did"
)
UNREACHABLE_AFTER = 5


def _not_sent(exc: BaseException) -> bool:
    """The failure, or one it arose from (a settlement's listing, a status GET), is a
    connection that could not be made."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectFailedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class _Progress:
    """What is known so far about one action while its steps run."""

    action: Action
    duration_s: float = 0.0
    session_id: str | None = None
    adopted: bool = False
    created: bool = False  # the create step (if any) has a session
    result: ActionResult | None = None
    notes: list[str] = field(default_factory=list)
    abandoned: bool = False  # its request was cancelled under way (``ABANDONED``)


class _Run:
    def __init__(
        self,
        plan: Plan,
        client: ApplyClient,
        bodies: Mapping[int, dict[str, Any]],
        *,
        on_result: OnResult | None,
        stop_event: asyncio.Event,
        clock: Callable[[], float],
        create_retries: int,
        full_list_settlement: bool,
        unreachable_after: int,
    ) -> None:
        self.client = client
        self.project = plan.project
        self.bodies = bodies
        self.on_result = on_result
        self.stop = stop_event
        self.clock = clock
        self.create_retries = create_retries
        self.full_list_settlement = full_list_settlement
        self.progress = [_Progress(a, session_id=a.session_id) for a in plan.actions]
        # Names whose creation failed or never ran: their destroys must wait.
        self.uncreated: set[str] = set()
        self.unreachable_after = unreachable_after
        self.connect_failures = 0  # consecutive, reset by any answer
        self.unreachable = False

    @property
    def halted(self) -> bool:
        """Start nothing new: Ctrl-C, or the hub cannot be reached."""
        return self.stop.is_set() or self.unreachable

    def finish(
        self,
        index: int,
        outcome: ActionOutcome,
        *,
        error: str | None = None,
        in_doubt: bool = False,
    ) -> None:
        p = self.progress[index]
        if p.result is not None:
            return
        p.result = ActionResult(
            action=p.action,
            outcome=outcome,
            session_id=p.session_id,
            duration_s=round(p.duration_s, 3),
            error=error,
            in_doubt=in_doubt,
        )
        if p.action.kind in ("create", "replace") and not p.created:
            self.uncreated.add(p.action.name)
        if self.on_result is not None:
            self.on_result(p.result)

    async def run_phase(self, steps: tuple[Step, ...], parallelism: int) -> None:
        queue = deque(steps)

        async def worker() -> None:
            while queue and not self.halted:
                await self.run_step(queue.popleft())

        async with asyncio.TaskGroup() as group:
            for _ in range(min(parallelism, len(queue))):
                group.create_task(worker())

    async def keep_last_copies(self, steps: tuple[Step, ...]) -> None:
        """List the hub again before archiving duplicates; skip those that would leave
        their name with no active session, fail them all if the listing fails."""
        duplicates = {
            step.index: p.action.session_id
            for step in steps
            if step.operation in ("archive", "delete")
            and (p := self.progress[step.index]).result is None
            and p.action.kind in ("archive", "delete")
            and beside_the_kept(p.action.reason)
            and p.action.session_id is not None
        }
        if not duplicates:
            return
        try:
            listed = await self.client.list_all_sessions(include_archived=False)
        except ReconcilerError as exc:
            for index in duplicates:
                error = (
                    f"left alone: listing the sessions to check its name keeps one failed: {exc}"
                )
                self.finish(index, "failed", error=error)
            return
        actions = [p.action for p in self.progress]
        observed = (RemoteSession.from_api(item) for item in listed)
        spared = last_copies(
            self.project, actions, {sid for sid in duplicates.values() if sid}, observed
        )
        for index, sid in duplicates.items():
            if sid in spared:
                error = (
                    f"left alone: it is now the last active session of {spared[sid]} "
                    "(the one kept was archived meanwhile)"
                )
                self.finish(index, "skipped", error=error)

    async def run_step(self, step: Step) -> None:
        p = self.progress[step.index]
        if p.result is not None:  # an earlier step of this action already decided it
            return
        action = p.action
        if step.destroys and action.name in self.uncreated:
            why = (
                "creating the new session failed"
                if action.kind == "replace"
                else (f"creating {action.name} failed in this apply")
            )
            self.finish(step.index, "skipped", error=f"skipped: {why}")
            return
        started = self.clock()
        try:
            outcome = await self._perform(step, p)
        except asyncio.CancelledError:
            p.abandoned = True
            raise
        except ReconcilerError as exc:
            p.duration_s += self.clock() - started
            self._count_connect(failed=_not_sent(exc))
            self.finish(
                step.index,
                "failed",
                error=self._failure(step, p, exc),
                in_doubt=isinstance(exc, create_mod.CreateInDoubtError),
            )
            return
        p.duration_s += self.clock() - started
        self._count_connect(failed=False)
        if step.last:
            self.finish(step.index, outcome)

    async def _perform(self, step: Step, p: _Progress) -> ActionOutcome:
        action = p.action
        if step.operation == "create":
            made = await create_mod.create_idempotent(
                self.client,
                self.bodies[step.index],
                action.marker_tag,
                retries=self.create_retries,
                full_list=self.full_list_settlement,
                replaces=action.session_id,
            )
            p.session_id = made.session_id
            p.adopted = made.adopted
            p.created = True
            return "adopted" if made.adopted else "succeeded"
        target = action.session_id
        if target is None:
            raise ReconcilerError(f"{action.kind} {action.name} has no session id")
        if step.operation == "update":
            outcome: ActionOutcome = await lifecycle.update(
                self.client, target, self.bodies.get(step.index, {})
            )
        elif step.operation == "resume":
            outcome = await lifecycle.resume(self.client, target)
        elif step.operation == "archive":
            outcome = await lifecycle.archive(self.client, target)
        else:
            outcome = await lifecycle.delete(self.client, target)
        if action.kind == "replace":
            # The result is about the new session; how it came to be is what matters.
            return "adopted" if p.adopted else "succeeded"
        return outcome

    def _count_connect(self, *, failed: bool) -> None:
        self.connect_failures = self.connect_failures + 1 if failed else 0
        if self.connect_failures >= self.unreachable_after:
            self.unreachable = True

    @staticmethod
    def _failure(step: Step, p: _Progress, exc: ReconcilerError) -> str:
        if p.action.kind == "replace" and step.destroys:
            return (
                f"new session {p.session_id} exists; {step.operation} of old session "
                f"{p.action.session_id} failed: {exc}"
            )
        return str(exc)

    def abandon(self) -> None:
        """After a second interrupt cancelled the run: the actions under way failed,
        their outcome unknown (``ABANDONED``); :meth:`report` skips the rest."""
        for index, p in enumerate(self.progress):
            if p.result is None and p.abandoned:
                self.finish(index, "failed", error=ABANDONED)

    def report(self) -> ApplyReport:
        interrupted = self.stop.is_set()
        why = "interrupted" if interrupted else "hub unreachable"
        for index, p in enumerate(self.progress):
            if p.result is None:
                if p.action.kind == "replace" and p.created:
                    note = (
                        f"{why}: new session {p.session_id} exists; old session "
                        f"{p.action.session_id} not yet {p.action.replace_with or 'archive'}d"
                    )
                    self.finish(index, "skipped", error=note)
                else:
                    self.finish(index, "skipped", error=INTERRUPTED if interrupted else UNREACHABLE)
        results = tuple(p.result for p in self.progress if p.result is not None)
        return ApplyReport(
            results=results,
            interrupted=interrupted,
            unreachable=self.unreachable and not interrupted,
        )


async def apply_plan(
    plan: Plan,
    client: ApplyClient,
    *,
    environ: Mapping[str, str],
    parallelism: int = 8,
    on_result: OnResult | None = None,
    stop_event: asyncio.Event | None = None,
    create_retries: int = 2,
    full_list_settlement: bool = True,
    unreachable_after: int = UNREACHABLE_AFTER,
    clock: Callable[[], float] = time.monotonic,
) -> ApplyReport:
    """Execute ``plan`` and report every action's outcome, in plan order.

    ``on_result`` is called once per action as soon as its outcome is known (in
    completion order). Raises ``UnsetEnvError`` before any request when a body needs an
    unset variable; every other failure is an outcome in the report, never an exception.
    """
    if parallelism < 1:
        raise ValueError("parallelism must be at least 1")
    bodies = resolve_bodies(plan.actions, environ)
    stop = stop_event if stop_event is not None else asyncio.Event()
    run = _Run(
        plan,
        client,
        bodies,
        on_result=on_result,
        stop_event=stop,
        clock=clock,
        create_retries=create_retries,
        full_list_settlement=full_list_settlement,
        unreachable_after=unreachable_after,
    )
    try:
        for steps in build_phases(plan.actions):
            if run.halted:
                break
            if steps:
                await run.keep_last_copies(steps)
                await run.run_phase(steps, parallelism)
    except asyncio.CancelledError:
        # Cancelled after a first interrupt (``stop_event``): a second one abandoned the
        # requests under way. The report still says what was done, and what may have
        # been (a CI runner's cancel sends a second signal seconds after the first).
        task = asyncio.current_task()
        if not stop.is_set() or task is None or task.uncancel() > 0:
            raise
        run.abandon()
    return run.report()
