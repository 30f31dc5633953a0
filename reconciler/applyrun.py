"""The apply workflow: from manifests (or a saved plan) to an :class:`ApplyReport`.

``run_apply(opts, request, hooks)`` is the whole of ``reconciler apply`` but drawing and
asking, which it leaves to ``hooks`` (the command draws on stderr and asks on a
terminal; a library caller may leave the defaults: nothing drawn, no question).

- Fresh plan: load and check the manifests (no request while any is invalid), open one
  client, plan, show the plan, check safety, resolve every ``${env:...}`` the bodies
  use, confirm, execute.
- Saved plan (``plan_file``): check its checksum, that endpoint, org and project are
  this run's, and the ``${env:...}`` names (all before any request); list the hub,
  check safety and staleness (the whole plan is refused if one action is stale),
  execute.
- On the embedded hub the run holds the database's lock (``runlock``) from before the
  listing to the end, so two applies there run one after the other.
- After the actions, the markers this run wrote are settled: duplicates a concurrent
  apply made are archived, the oldest of each kept (``applier.duplicates``).

Errors are raised as the tool's error tree (safety 3, stale 4, unset env 65, locked 1,
usage 64); action failures are outcomes in the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from reconciler.applier import apply_plan, check_stale
from reconciler.applier.duplicates import settle_duplicates
from reconciler.applier.envresolve import resolve_bodies
from reconciler.errors import ApiError, UsageError
from reconciler.model import ActionResult, ApplyReport, Plan, RemoteSession
from reconciler.runlock import DEFAULT_LOCK_TIMEOUT_S, exclusive_run

if TYPE_CHECKING:
    # The settings object; its home moves out of the CLI package (issue 13, "Seams").
    from reconciler.client.core import CoderClient
    from reconciler.pipeline import PlanContext
    from reconciler.settings import GlobalOptions

__all__ = ["ApplyHooks", "ApplyRequest", "ApplyRun", "ApplyStatus", "PlanMaker", "run_apply"]

ApplyStatus = Literal["applied", "no-changes", "cancelled"]
PlanMaker = Callable[["PlanContext", "CoderClient"], Awaitable[Plan]]


@dataclass(frozen=True)
class ApplyRequest:
    """What to apply, and how: the flags of ``reconciler apply``."""

    paths: tuple[str, ...] = ()
    project_name: str | None = None
    plan_file: str | None = None  # a plan saved by `plan --out`
    force: bool = False
    parallelism: int = 8
    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    selectors: tuple[str, ...] = ()  # tag=VALUE: the declared sessions carrying it
    replace: tuple[str, ...] = ()  # replace these even when unchanged
    destroy: bool = False  # remove every managed session (retiring the project)
    overrides: tuple[str, ...] = ()  # --override-policy: overridable Policy denies lifted
    # Instead of the manifests' plan, the plan this makes from it (`forget`, `import`:
    # plans of marker tag updates, see ``reconciler.markerops``); it may raise to refuse.
    make_plan: PlanMaker | None = None


class ApplyHooks:
    """What the workflow tells its caller, and asks. Override what you draw or ask."""

    def notice(self, message: str) -> None:
        """A warning, or a wait for the embedded hub's lock."""

    def planned(self, context: PlanContext) -> None:
        """A fresh plan with what it was made from (``watch`` counts drift from it)."""

    def show_plan(self, plan: Plan) -> None:
        """The fresh plan, before safety is checked (a refused plan is shown too)."""

    def confirm(self, plan: Plan) -> bool:
        """Whether to apply ``plan``; may raise ``UsageError`` when nobody can answer."""
        return True

    def executing(self, plan: Plan, stop: asyncio.Event) -> AbstractContextManager[None]:
        """Held while the actions run; setting ``stop`` starts no new action."""
        return contextlib.nullcontext()

    def on_result(self, result: ActionResult) -> None:
        """One finished action (in completion order)."""


@dataclass(frozen=True)
class ApplyRun:
    """How the run ended: ``report`` is None unless actions were executed."""

    status: ApplyStatus
    plan: Plan | None = None
    report: ApplyReport | None = None
    elapsed_s: float = 0.0


async def run_apply(
    opts: GlobalOptions, request: ApplyRequest, hooks: ApplyHooks | None = None
) -> ApplyRun:
    """Apply the manifests of ``request.paths``, or ``request.plan_file`` (module doc)."""
    hooks = hooks if hooks is not None else ApplyHooks()
    if request.plan_file is not None:
        return await _saved_plan(opts, request, request.plan_file, hooks)
    return await _fresh_plan(opts, request, hooks)


@contextlib.asynccontextmanager
async def _hub(
    opts: GlobalOptions, request: ApplyRequest, hooks: ApplyHooks, org_id: str | None
) -> AsyncIterator[CoderClient]:
    """One client (one connection pool) for the listing and the writes after it, and
    on the embedded hub its lock for as long."""
    from reconciler.connect import open_client, resolve_endpoint

    endpoint = resolve_endpoint(opts)
    # Built first: for the embedded hub this prepares the database's directory.
    client = open_client(opts, org_id=org_id)
    async with client:
        if endpoint.kind == "local" and endpoint.local_db is not None:
            with exclusive_run(
                endpoint.local_db, timeout_s=request.lock_timeout_s, on_wait=hooks.notice
            ):
                yield client
        else:
            yield client


async def _fresh_plan(opts: GlobalOptions, request: ApplyRequest, hooks: ApplyHooks) -> ApplyRun:
    from reconciler.pipeline import build_plan, load_checked
    from reconciler.planner import check_safety

    paths = list(request.paths) or ["."]
    excludes, selectors = request.excludes, request.selectors
    targets = request.targets
    load = load_checked(
        opts,
        paths,
        targets=targets,
        excludes=excludes,
        project_name=request.project_name,
        selectors=selectors,
        overrides=request.overrides,
    )
    async with _hub(opts, request, hooks, load.project.org_id) as client:
        context = await build_plan(
            opts,
            paths,
            targets=targets,
            excludes=excludes,
            client=client,
            load=load,
            selectors=selectors,
            replace=request.replace,
            destroy=request.destroy,
            overrides=request.overrides,
        )
        for warning in context.load.warnings:
            hooks.notice(f"warning: {warning}")
        hooks.planned(context)
        plan = context.plan
        if request.make_plan is not None:
            plan = await request.make_plan(context, client)
        hooks.show_plan(plan)
        # Before the no-changes return: a deny Policy refuses a plan without changes too.
        check_safety(plan, context.desired, force=request.force)
        if not plan.has_changes:
            return ApplyRun("no-changes", plan)
        resolve_bodies(plan.actions, opts.environ)  # before asking, and before any write
        if not hooks.confirm(plan):
            return ApplyRun("cancelled", plan)
        return await _execute(plan, client, opts, request, hooks)


async def _saved_plan(
    opts: GlobalOptions, request: ApplyRequest, plan_file: str, hooks: ApplyHooks
) -> ApplyRun:
    from reconciler.planfile import read_plan
    from reconciler.planner import check_safety

    plan = read_plan(plan_file)
    _check_plan_matches_run(plan, opts, request)
    resolve_bodies(plan.actions, opts.environ)  # an unset variable stops before any request
    if not plan.has_changes:
        return ApplyRun("no-changes", plan)
    async with _hub(opts, request, hooks, plan.org_id) as client:
        listed = await client.list_all_sessions(include_archived=True)
        observed = [RemoteSession.from_api(item) for item in listed]
        # After the listing: a duplicate whose twin stays does not count as a destroy.
        check_safety(plan, force=request.force, observed=observed)
        check_stale(plan, observed)
        return await _execute(plan, client, opts, request, hooks)


def _check_plan_matches_run(plan: Plan, opts: GlobalOptions, request: ApplyRequest) -> None:
    from reconciler.connect import resolve_endpoint

    if (
        request.paths
        or request.targets
        or request.excludes
        or request.selectors
        or request.replace
        or request.destroy
    ):
        raise UsageError(
            "--plan applies a saved plan as it is: no PATH, --target, --exclude, "
            "--selector, --replace or --destroy"
        )
    if request.overrides:
        raise UsageError(
            "--plan applies a saved plan as it is: no --override-policy (a plan that a "
            "deny Policy refuses is never saved)"
        )
    if request.project_name and request.project_name != plan.project:
        raise UsageError(
            f"the saved plan is for project {plan.project!r}, not {request.project_name!r}"
        )
    endpoint = resolve_endpoint(opts)
    if plan.endpoint and plan.endpoint != endpoint.display:
        raise UsageError(f"the saved plan was made against {plan.endpoint}, not {endpoint.display}")
    # An org named for this run (--org, AGENTUITY_ORG_ID) must be the plan's, even when
    # the plan was made without one (the token's default org): a reviewed plan never
    # lands in another organisation. Without one here, the plan's org is used.
    if endpoint.org_id and endpoint.org_id != plan.org_id:
        made_for = f"org {plan.org_id}" if plan.org_id else "the token's default org"
        raise UsageError(f"the saved plan is for {made_for}, not org {endpoint.org_id}")


async def _execute(
    plan: Plan, client: CoderClient, opts: GlobalOptions, request: ApplyRequest, hooks: ApplyHooks
) -> ApplyRun:
    stop = asyncio.Event()
    started = time.monotonic()
    with hooks.executing(plan, stop):
        report = await apply_plan(
            plan,
            client,
            environ=opts.environ,
            parallelism=request.parallelism,
            on_result=hooks.on_result,
            stop_event=stop,
        )
    if not (report.interrupted or report.unreachable):
        report = await _settle(report, plan, client, force=request.force)
    from reconciler.policy.overrides import overridden_policies

    lifted = overridden_policies(plan.findings)
    if lifted:  # the report says which policies this run lifted
        report = dataclasses.replace(report, policy_overrides=lifted)
    return ApplyRun("applied", plan, report, time.monotonic() - started)


def _written_markers(results: Sequence[ActionResult]) -> set[str]:
    return {
        r.action.marker_tag
        for r in results
        if r.action.kind in ("create", "replace")
        and r.outcome in ("succeeded", "adopted")
        and r.action.marker_tag
    }


async def _settle(
    report: ApplyReport, plan: Plan, client: CoderClient, *, force: bool
) -> ApplyReport:
    markers = _written_markers(report.results)
    try:
        duplicates = await settle_duplicates(
            client, markers, protect_live=plan.policy.protect_live, force=force
        )
    except ApiError as exc:
        error = f"listing the sessions this apply created, to find duplicates, failed: {exc}"
        return dataclasses.replace(report, duplicates_error=error)
    return dataclasses.replace(report, duplicates=duplicates)
