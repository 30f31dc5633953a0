"""The apply workflow: from manifests (or a saved plan) to an :class:`ApplyReport`.

``run_apply(opts, request, hooks)`` is the whole of ``reconciler apply`` but drawing and
asking, which it leaves to ``hooks`` (the command draws on stderr and asks on a
terminal; a library caller may leave the defaults: nothing drawn, no question).

- Fresh plan: load and check the manifests (no request while any is invalid), open one
  client, plan, show the plan, check safety, resolve every ``${env:...}`` the bodies
  use, confirm, execute.
- Saved plan (``plan_file``): check its checksum (corruption) and the ``${env:...}``
  names, then plan again from the manifests and scope it records, against this run's
  endpoint and org; apply only when every saved action is exactly what that fresh plan
  would do (anything else, a forged or replayed file, other manifests, another
  endpoint, org or project, is refused naming the first difference, exit 4); check
  safety, execute. It does not ask: reviewing the saved plan was the approval (as
  Terraform's ``apply PLANFILE``).
- A plan from the hub alone (``plan_source``, no manifests: ``export --adopt``): make
  it, show it, check safety, confirm, then list the hub again and refuse the plan if a
  session changed meanwhile (the question may have waited), execute.
- On the embedded hub the run holds the database's lock (``runlock``) from before the
  database is opened (or created) to the end, so two applies there run one after the
  other, and none writes under a ``hub serve`` of the same file.
- After the actions, the markers this run wrote (on new sessions, or added to existing
  ones: a rename, an adoption) are settled: duplicates a concurrent apply made are
  archived, the oldest of each declaration's matching copies kept
  (``applier.duplicates``).

Errors are raised as the tool's error tree (safety 3, stale 4, unset env 65, locked 1,
usage 64); action failures are outcomes in the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shlex
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from reconciler.applier import apply_plan
from reconciler.applier.duplicates import Matchers, created_at, settle_duplicates
from reconciler.applier.envresolve import resolve_bodies
from reconciler.errors import (
    ApiError,
    ManifestError,
    PlanFileError,
    PlanMismatchError,
    UsageError,
)
from reconciler.model import (
    ARCHIVED_LIKE,
    Action,
    ActionResult,
    ApplyReport,
    Marker,
    Plan,
    RemoteSession,
)
from reconciler.planner.scope import ScopeFlags
from reconciler.runlock import DEFAULT_LOCK_TIMEOUT_S, exclusive_run

if TYPE_CHECKING:
    # The settings object; its home moves out of the CLI package (issue 13, "Seams").
    from reconciler.client.core import CoderClient
    from reconciler.connect import Endpoint
    from reconciler.manifest.filecache import ManifestCache
    from reconciler.pipeline import PlanContext
    from reconciler.planfile import PlanInputs
    from reconciler.settings import GlobalOptions

__all__ = [
    "ApplyHooks",
    "ApplyRequest",
    "ApplyRun",
    "ApplyStatus",
    "PlanMaker",
    "PlanSource",
    "run_apply",
]

ApplyStatus = Literal["applied", "no-changes", "cancelled"]
PlanMaker = Callable[["PlanContext", "CoderClient"], Awaitable[Plan]]
PlanSource = Callable[["CoderClient"], Awaitable[Plan]]


@dataclass(frozen=True)
class ApplyRequest:
    """What to apply, and how: the flags of ``reconciler apply``."""

    paths: tuple[str, ...] = ()
    project_name: str | None = None
    plan_file: str | None = None  # a plan saved by `plan --out`
    # The saved plan's checksum as `plan --out` printed it: the file must be that one.
    expect_checksum: str | None = None
    force: bool = False
    parallelism: int = 8
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    # --target, --exclude, --selector, --replace, --destroy: resolved once the manifests
    # are read (``ScopeFlags.resolve``).
    scope: ScopeFlags = field(default_factory=ScopeFlags)
    overrides: tuple[str, ...] = ()  # --override-policy: overridable Policy denies lifted
    # Instead of the manifests' plan, the plan this makes from it (`forget`, `import`:
    # plans of marker tag updates, see ``reconciler.markerops``); it may raise to refuse.
    make_plan: PlanMaker | None = None
    # Instead of manifests, a plan made from the hub alone, inside the run (its lock
    # held): `export --adopt`. ``org_id`` is then the org to open the client for.
    plan_source: PlanSource | None = None
    org_id: str | None = None
    # ``reconciler`` and the hub-choosing flags this run was given
    # (``GlobalOptions.invocation``): the start of a command its advice suggests.
    invocation: str = "reconciler"


class ApplyHooks:
    """What the workflow tells its caller, and asks. Override what you draw or ask."""

    def notice(self, message: str) -> None:
        """A warning, or a wait for the embedded hub's lock."""

    def warning(self, message: str) -> None:
        """Something wrong but not stopping the run (an unset variable): a notice."""
        self.notice(f"warning: {message}")

    def planned(self, context: PlanContext) -> None:
        """A fresh plan with what it was made from (``watch`` counts drift from it)."""

    def show_plan(self, plan: Plan) -> None:
        """The plan to apply, before safety is checked (a refused plan is shown too); for
        a saved plan, once a fresh plan has confirmed it."""

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
    opts: GlobalOptions,
    request: ApplyRequest,
    hooks: ApplyHooks | None = None,
    *,
    endpoint: Endpoint,
    cache: ManifestCache | None = None,
) -> ApplyRun:
    """Apply the manifests of ``request.paths``, or ``request.plan_file`` (module doc),
    on ``endpoint`` (resolved once by the caller). ``cache``: a long-running caller's
    (``watch --self-heal``), for the manifest files that did not change."""
    hooks = hooks if hooks is not None else ApplyHooks()
    if request.plan_file is not None:
        return await _saved_plan(opts, endpoint, request, request.plan_file, hooks)
    if request.plan_source is not None:
        return await _sourced_plan(opts, endpoint, request, request.plan_source, hooks)
    return await _fresh_plan(opts, endpoint, request, hooks, cache)


@contextlib.asynccontextmanager
async def _hub(
    endpoint: Endpoint, request: ApplyRequest, hooks: ApplyHooks, org_id: str | None
) -> AsyncIterator[CoderClient]:
    """One client (one connection pool) for the listing and the writes after it, and
    on the embedded hub its lock for as long."""
    from reconciler.connect import open_client

    with contextlib.ExitStack() as held:
        if endpoint.kind == "local" and endpoint.local_db is not None:
            from reconciler.hub.dbfile import private_directory

            # The lock is taken before the embedded database is opened (or created):
            # two first runs never create it at once.
            private_directory(endpoint.local_db)
            held.enter_context(
                exclusive_run(
                    endpoint.local_db, timeout_s=request.lock_timeout_s, on_wait=hooks.notice
                )
            )
        async with open_client(endpoint, org_id=org_id) as client:
            yield client


async def _fresh_plan(
    opts: GlobalOptions,
    endpoint: Endpoint,
    request: ApplyRequest,
    hooks: ApplyHooks,
    cache: ManifestCache | None,
) -> ApplyRun:
    from reconciler.pipeline import build_plan, load_checked
    from reconciler.planner import check_safety

    paths = list(request.paths) or ["."]
    checked = load_checked(
        opts,
        paths,
        project_name=request.project_name,
        flags=request.scope,
        overrides=request.overrides,
        cache=cache,
    )
    async with _hub(endpoint, request, hooks, checked.load.project.org_id) as client:
        # The manifests' own plan is applied; forget's and import's create nothing, and
        # the plan's notes are about applying the manifests, not about them.
        context = await build_plan(
            opts,
            paths,
            endpoint=endpoint,
            client=client,
            checked=checked,
            to_apply=request.make_plan is None,
        )
        _planned(hooks, context, notes=request.make_plan is None)
        plan = context.plan
        if request.make_plan is not None:
            made = await request.make_plan(context, client)
            # Where it applies, named in its header as plan and apply name it.
            plan = dataclasses.replace(
                made, org_id=context.plan.org_id, endpoint=context.plan.endpoint
            )
        hooks.show_plan(plan)
        # Before the no-changes return: a deny Policy refuses a plan without changes too.
        check_safety(plan, context.desired, force=request.force)
        if not plan.has_changes:
            return ApplyRun("no-changes", plan)
        # Before asking, and before any write.
        resolve_bodies(plan.actions, opts.environ, declared={d.name: d for d in context.desired})
        if not hooks.confirm(plan):
            return ApplyRun("cancelled", plan)
        matchers = {d.name: d.matches for d in context.desired}
        return await _execute(plan, client, opts, request, hooks, matchers)


async def _saved_plan(
    opts: GlobalOptions,
    endpoint: Endpoint,
    request: ApplyRequest,
    plan_file: str,
    hooks: ApplyHooks,
) -> ApplyRun:
    from reconciler.pipeline import build_plan, load_checked
    from reconciler.planfile import (
        credential_difference,
        endpoint_difference,
        first_difference,
        identity_difference,
        in_fresh_terms,
        read_saved_plan,
    )
    from reconciler.planner import check_safety

    saved = read_saved_plan(plan_file)
    if request.expect_checksum is not None:
        _check_expected(plan_file, saved.checksum, request.expect_checksum)
    inputs = saved.inputs
    # Planned again from what this apply gives (checked equal to the file's record
    # below), never from the file's own: `m/../m` reads as `m` to the check, and through
    # a symbolic link as another folder to the reader.
    paths = list(request.paths) or ["."]
    elsewhere = endpoint_difference(saved.plan, endpoint.display)
    if elsewhere is not None:  # before the manifests are read, before any request
        raise PlanMismatchError(elsewhere)
    unsaid = _restated(inputs, request, plan_file)
    if unsaid is not None:  # before the manifests are read, before any request
        raise unsaid
    if request.project_name and request.project_name != saved.plan.project:
        raise PlanMismatchError(
            f"it was made for project {saved.plan.project}, and this run is for project "
            f"{request.project_name}"
        )
    try:  # an unset variable: exit 65 before any request
        resolve_bodies(saved.plan.actions, opts.environ)
    except ManifestError as exc:
        # A reference apply never resolves (a credential, or one outside env) cannot come
        # from any manifests: the file was forged or made by something else.
        raise PlanMismatchError(f"no manifests make it: {exc}") from None
    absent = [p for p in paths if not Path(p).exists()]
    if absent:  # planned again from where `plan` ran: relative paths say where that was
        raise UsageError(
            f"saved plan {plan_file} was made from {', '.join(absent)}, which is not here: "
            "run apply --plan from the folder where plan ran"
        )
    checked = load_checked(
        opts,
        paths,
        project_name=request.project_name,
        flags=request.scope,
        # The overrides it was reviewed with: the fresh plan lifts the same denies.
        overrides=tuple(request.overrides),
    )
    project = checked.load.project
    org_id = endpoint.org_for(project.org_id)
    where = identity_difference(
        saved.plan, project=project.name, org_id=org_id, endpoint=endpoint.display
    )
    if where is None and org_id is None:
        # No org named then or now: the token's own org is where it applies.
        where = credential_difference(inputs.credential, endpoint.token)
    if where is not None:
        raise PlanMismatchError(where)
    async with _hub(endpoint, request, hooks, project.org_id) as client:
        context = await build_plan(
            opts,
            paths,
            endpoint=endpoint,
            client=client,
            checked=checked,
            to_apply=True,
        )
        _planned(hooks, context)
        # What a create records of where its declaration was (the commit, the file and
        # line) is the checkout's this apply runs at, never the file's (which anyone can
        # edit): the same manifests at a later commit (a merge) plan the same actions.
        difference = first_difference(in_fresh_terms(saved.plan, context.plan), context.plan)
        if difference is not None:
            raise PlanMismatchError(difference)
        plan = context.plan  # equal to the saved plan, action for action
        hooks.show_plan(plan)
        # Before the no-changes return: a deny Policy refuses a plan without changes too.
        check_safety(plan, context.desired, force=request.force)
        if not plan.has_changes:
            return ApplyRun("no-changes", plan)
        return await _execute(plan, client, opts, request, hooks)


def _planned(hooks: ApplyHooks, context: PlanContext, *, notes: bool = True) -> None:
    for warning in (*map(str, context.load.warnings), *(context.notes if notes else ())):
        hooks.warning(warning)
    hooks.planned(context)


async def _sourced_plan(
    opts: GlobalOptions,
    endpoint: Endpoint,
    request: ApplyRequest,
    source: PlanSource,
    hooks: ApplyHooks,
) -> ApplyRun:
    from reconciler.applier import check_stale
    from reconciler.planner import check_safety

    async with _hub(endpoint, request, hooks, request.org_id) as client:
        plan = await source(client)
        # Where it applies, named in its header as plan and apply name it.
        plan = dataclasses.replace(
            plan, org_id=endpoint.org_for(plan.org_id), endpoint=endpoint.display
        )
        hooks.show_plan(plan)
        if not plan.has_changes:
            return ApplyRun("no-changes", plan)
        check_safety(plan, force=request.force)
        resolve_bodies(plan.actions, opts.environ)
        if not hooks.confirm(plan):
            return ApplyRun("cancelled", plan)
        listed = await client.list_all_sessions(include_archived=True)
        check_stale(plan, [RemoteSession.from_api(item) for item in listed])
        return await _execute(plan, client, opts, request, hooks)


def _check_expected(plan_file: str, checksum: str, expected: str) -> None:
    """Refuse (4) a saved plan whose checksum is not the one ``--expect-checksum`` gives
    (checked to be one by the command line): the file applied is then another than the
    file reviewed (an edit that made its checksum again; a fresh plan of what the hub
    became since passes every other check)."""
    from reconciler.planfile import parse_checksum

    if parse_checksum(expected) != checksum:
        raise PlanFileError(
            f"saved plan {plan_file} has checksum {checksum}, and --expect-checksum says "
            f"{expected.strip()}: it is not the file that was reviewed; nothing was applied"
        )


def _restated(
    inputs: PlanInputs, request: ApplyRequest, plan_file: str
) -> PlanMismatchError | None:
    """The refusal when this apply does not give what the saved plan was made from, as
    ``plan`` was given it: its PATHs (``.`` when none), ``--project`` (when it named
    one), ``--target``, ``--exclude``, ``--selector``, ``--replace``, ``--destroy`` and
    ``--override-policy``. None when it does.

    The file records them, but it cannot be trusted to choose them: anyone who can edit
    it can make its checksum again, and a fresh plan from edited inputs (other paths
    leaving out sessions or a Policy, a destroy, a replacement, a lifted deny, a narrower
    scope applying part of what was reviewed) would then agree with whatever actions
    were written beside them. So the apply command (a reviewed workflow's, a person's)
    says them again; the fresh plan is made from the apply's, the file's only checked
    against them."""
    from reconciler.planfile import command_line, inputs_arguments

    made, asked = inputs_arguments(inputs), inputs_arguments(_as_inputs(request))
    if inputs.project_name is None:  # checked against the plan's project instead
        made.pop("--project"), asked.pop("--project")
    if made == asked:
        return None
    given = request.expect_checksum
    expected = f" --expect-checksum {shlex.quote(given.strip())}" if given else ""
    return PlanMismatchError(
        f"it was made from {command_line(made)}, and this apply gives "
        f"{command_line(asked)}: a saved plan applies only with what it was made from "
        "given again (its PATHs and flags), as the file alone cannot choose them: anyone "
        "who can edit it can make its checksum again",
        advice=(
            f"If {command_line(made)} is what the plan you reviewed was made from, apply "
            f"it with that: `{request.invocation} apply --plan {shlex.quote(plan_file)} "
            f"{command_line(made)}{expected}`; if not, make a new plan (`plan --out`), "
            "review it and apply that"
        ),
    )


def _as_inputs(request: ApplyRequest) -> PlanInputs:
    from reconciler.planfile import PlanInputs

    scope = request.scope
    return PlanInputs(
        paths=tuple(request.paths),
        project_name=request.project_name,
        targets=scope.targets,
        excludes=scope.excludes,
        selectors=scope.selectors,
        replace=scope.replace,
        destroy=scope.destroy,
        overrides=tuple(request.overrides),
    )


async def _execute(
    plan: Plan,
    client: CoderClient,
    opts: GlobalOptions,
    request: ApplyRequest,
    hooks: ApplyHooks,
    matchers: Matchers | None = None,
) -> ApplyRun:
    """Apply ``plan``, then settle duplicates; ``matchers``: each declared name's notion
    of a matching marker (none for a saved plan: it carries no declarations)."""
    stop = asyncio.Event()
    started = time.monotonic()
    # The settlement too runs under the hooks' interrupt handling: a Ctrl-C (or SIGTERM)
    # once every action is done lets it finish, and the report is still printed.
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
            report = await _settle(report, plan, client, force=request.force, matchers=matchers)
    from reconciler.policy.overrides import overridden_policies

    lifted = overridden_policies(plan.findings)
    if lifted:  # the report says which policies this run lifted
        report = dataclasses.replace(report, policy_overrides=lifted)
    return ApplyRun("applied", plan, report, time.monotonic() - started)


def _adds_marker(action: Action) -> bool:
    """An update that puts its marker on the session (a rename, an adoption)."""
    return action.kind == "update" and any(
        c.field == "tags" and action.marker_tag in c.added for c in action.changes
    )


def _written_markers(results: Sequence[ActionResult]) -> set[str]:
    return {
        r.action.marker_tag
        for r in results
        if (r.action.kind in ("create", "replace") or _adds_marker(r.action))
        and r.outcome in ("succeeded", "adopted")
        and r.action.marker_tag
    }


async def _settle(
    report: ApplyReport, plan: Plan, client: CoderClient, *, force: bool, matchers: Matchers | None
) -> ApplyReport:
    markers = _written_markers(report.results)
    kept = _kept_names(report.results)
    if not markers and not kept:
        return report
    try:
        listed = await client.list_all_sessions(include_archived=False)
        observed = [RemoteSession.from_api(item) for item in listed]
        results = _kept_markers(report.results, observed)
        results = await _lost_names(client, results, kept, plan, observed)
        report = dataclasses.replace(report, results=results)
        if not markers:
            return report
        duplicates = await settle_duplicates(
            client,
            markers,
            protect_live=plan.policy.protect_live,
            force=force,
            matchers=matchers,
            observed=observed,
            race_since=_first_create(report.results, observed),
        )
    except ApiError as exc:
        if not markers:  # it created nothing: only the lost-name check is not made
            return report
        error = f"listing the sessions this apply created, to find duplicates, failed: {exc}"
        return dataclasses.replace(report, duplicates_error=error)
    return dataclasses.replace(report, duplicates=duplicates)


def _kept_names(results: Sequence[ActionResult]) -> set[str]:
    """Names of which this apply archived or deleted a session in favour of another it
    kept: a duplicate, one superseded, a replacement's old side."""
    from reconciler.planner.core import beside_the_kept

    return {
        r.action.name
        for r in results
        if r.outcome == "succeeded"
        and (r.action.kind == "replace" or (r.action.destroys and beside_the_kept(r.action.reason)))
    }


# What an archive in favour of a session that another run archived meanwhile says.
LOST_NAME = (
    "no active session of {name} is listed now: the one this apply kept was archived "
    "meanwhile (another apply of other manifests, or a hand); the next plan creates it"
)


async def _lost_names(
    client: CoderClient,
    results: Sequence[ActionResult],
    kept: set[str],
    plan: Plan,
    observed: Sequence[RemoteSession],
) -> tuple[ActionResult, ...]:
    """``results`` with each archive, delete or replacement of ``kept`` (``_kept_names``)
    failed when ``observed`` (listed after the actions) shows no active session of its
    name: two applies of different manifests at once can each archive the session the
    other keeps (a replacement's old side, and its new side as superseded), and no
    request can make an archive conditional; the run says so (exit 1) rather than
    report success for a name left with nothing. Where the session kept is known (a
    replacement's new one, the one a superseded session gave way to) it is asked for
    first (``GET``): a list that lags behind the hub's writes must not fail a good run."""
    if not kept:
        return tuple(results)
    active = {
        m.name
        for s in observed
        if not s.archived_like
        for m in s.markers()
        if m.project == plan.project
    }
    out = list(results)
    for index, r in enumerate(out):
        if r.outcome != "succeeded" or not r.action.destroys or r.action.name not in kept - active:
            continue
        keeper = _keeper(r)
        accepted = {(plan.project, r.action.name), *_moved_from(plan, keeper)}
        if keeper is not None and await _still_kept(client, keeper, accepted):
            continue
        out[index] = dataclasses.replace(
            r, outcome="failed", error=LOST_NAME.format(name=r.action.name)
        )
    return tuple(out)


def _keeper(result: ActionResult) -> str | None:
    """The session ``result``'s action kept, when the run knows it: a replacement's new
    one, or the one a superseded session gave way to (its reason names it)."""
    from reconciler.planner.core import superseded_by

    if result.action.kind == "replace":
        return result.session_id
    return superseded_by(result.action.reason)


async def _still_kept(
    client: CoderClient, session_id: str, accepted: Collection[tuple[str, str]]
) -> bool:
    """Whether the hub says session ``session_id`` is active and still carries one of
    the ``accepted`` markers (project, name): the name's, or one this apply was moving
    it from (a rename of the session or the project whose re-tagging another run beat:
    the next apply re-tags it). One whose marker was dropped (a forget), or moved to
    another name by another run, keeps no name. A GET that fails says nothing: the
    list's word stands."""
    try:
        found = RemoteSession.from_api(await client.get_session(session_id))
    except (ApiError, KeyError):
        return False
    if found.status in ARCHIVED_LIKE:
        return False
    return any((m.project, m.name) in accepted for m in found.markers())


def _moved_from(plan: Plan, session_id: str | None) -> set[tuple[str, str]]:
    """The markers (project, name) the plan's update of ``session_id`` removes: the
    names it is being renamed from."""
    found: set[tuple[str, str]] = set()
    for action in plan.actions:
        if action.kind != "update" or session_id is None or action.session_id != session_id:
            continue
        for change in action.changes:
            if change.field == "tags":
                found.update((m.project, m.name) for t in change.removed if (m := Marker.parse(t)))
    return found


def _first_create(
    results: Sequence[ActionResult], observed: Sequence[RemoteSession]
) -> datetime | None:
    """The hub's time of this apply's first create (None when it made none, or the hub
    gives no times): copies of its sessions made since are the race's (``settle``)."""
    made = {
        r.session_id
        for r in results
        if r.action.kind in ("create", "replace") and r.outcome in ("succeeded", "adopted")
    }
    times = [t for s in observed if s.session_id in made and (t := created_at(s)) is not None]
    return min(times, default=None)


# What a tags PATCH that lost a race says: the hub replaces the whole list.
LOST_MARKER = (
    "another run replaced the session's tags at the same time, so the marker this "
    "update added is not on it; plan again"
)


def _kept_markers(
    results: Sequence[ActionResult], observed: Sequence[RemoteSession]
) -> tuple[ActionResult, ...]:
    """``results`` with each update that added its marker (an adoption, an import, a
    rename) failed when the session no longer carries it: a concurrent update of its
    tags (another project adopting it, say) replaced the list after ours."""
    tags = {remote.session_id: remote.tags for remote in observed}
    return tuple(
        dataclasses.replace(r, outcome="failed", error=LOST_MARKER)
        if r.outcome == "succeeded"
        and _adds_marker(r.action)
        and r.action.session_id in tags
        and r.action.marker_tag not in tags[r.action.session_id]
        else r
        for r in results
    )
