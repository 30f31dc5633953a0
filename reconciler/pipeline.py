"""From paths and options to a Plan: load, check env, list, fetch details, plan.

Shared by ``plan``, ``apply`` and ``status``. This is the I/O edge around the pure
planner: it reads manifests, the environment (through ``opts.environ``), git and the
hub, and hands plain values to :func:`reconciler.planner.plan`. The hub is the
:class:`~reconciler.connect.Endpoint` the command resolved once; garbage-collector
tuning (:mod:`reconciler.gctune`) is the command's to set, around the whole run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import planner
from reconciler.client.core import CoderClient
from reconciler.connect import Endpoint, open_client
from reconciler.errors import ManifestErrors, UnsetEnvError
from reconciler.manifest import LoadResult, load_manifests
from reconciler.manifest.build import oversized_creates
from reconciler.model import (
    MUTABLE_FIELDS,
    DesiredSession,
    Plan,
    PolicyFinding,
    Project,
    RemoteSession,
)
from reconciler.planner.ownership import Managed
from reconciler.planner.reported import in_loop_mode, with_loop_state
from reconciler.planner.scope import Scope, ScopeFlags
from reconciler.settings import GlobalOptions

if TYPE_CHECKING:
    from reconciler.manifest.filecache import ManifestCache
    from reconciler.policy import PolicySet

__all__ = [
    "COMPARED_FIELDS",
    "PlanContext",
    "build_plan",
    "check_compared_env",
    "git_commit",
    "load_checked",
    "Checked",
]

# The spec fields plan compares with the hub: their ${env:...} names must be set.
COMPARED_FIELDS: tuple[str, ...] = MUTABLE_FIELDS
_DETAIL_CONCURRENCY = 8
_WHOLE = Scope()
_NO_FLAGS = ScopeFlags()


@dataclass(frozen=True)
class PlanContext:
    """A plan and everything it was made from."""

    plan: Plan
    project: Project
    desired: tuple[DesiredSession, ...]
    observed: tuple[RemoteSession, ...]
    details: Mapping[str, Mapping[str, Any]]
    load: LoadResult
    endpoint: str
    requests: int
    # The scope the plan was narrowed to: --target names plus those --selector chose.
    scope: Scope = _WHOLE
    # Warnings the plan gives about the manifests as the hub sees them
    # (``planner.spent_adopt_lines``): the commands that show a plan show them.
    notes: tuple[str, ...] = ()


def check_compared_env(sessions: Sequence[DesiredSession], scope: Scope) -> None:
    """Raise :class:`UnsetEnvError` for unset names used in the compared fields.

    Only active sessions in ``scope`` are compared, so only theirs are needed; names
    used elsewhere (``env``, ``task``) are apply's concern.
    """
    names: set[str] = set()
    where: list[str] = []
    for d in sessions:
        if not d.unset_refs or d.state != "active" or not scope.includes(d.name):
            continue  # (most sessions reference no unset variable)
        for field in COMPARED_FIELDS:
            unset = d.unset_refs.get(field)
            if unset:
                names |= unset
                at = d.unset_at.get(field, d.source)  # the reference, else the session
                where.append(f"{d.name}.{field}" + (f" at {at}" if at else ""))
    if names:
        raise UnsetEnvError(names, where=where)


def git_commit(paths: Sequence[str]) -> str | None:
    """``git rev-parse HEAD`` of the manifests' directory, or None outside a repository."""
    first = Path(paths[0]) if paths else Path(".")
    directory = first if first.is_dir() else first.parent
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def _session_id(remote: RemoteSession) -> str:
    return remote.session_id


async def _observe(
    client: CoderClient,
    project: Project,
    desired: Sequence[DesiredSession],
    *,
    destroy: bool = False,
) -> tuple[tuple[RemoteSession, ...], dict[str, Mapping[str, Any]], dict[str, list[Managed]]]:
    # Each page becomes RemoteSessions, markers parsed, as soon as it arrives: that work
    # overlaps the hub preparing the later pages, and the page's JSON is freed at once.
    listed = await client.list_all_converted(
        RemoteSession.from_api, _session_id, include_archived=True
    )
    observed = tuple(listed)
    del listed
    index = planner.ownership(project, desired, observed)  # the plan's too
    wanted = planner.needs_detail(project, desired, observed, index=index, destroy=destroy)
    gate = asyncio.Semaphore(_DETAIL_CONCURRENCY)

    async def fetch(session_id: str) -> tuple[str, Mapping[str, Any]]:
        async with gate:
            detail = await client.get_session(session_id)
            # Its loop settings are only in its loop state: a session to adopt, or one
            # whose declaration changed, is compared with them (a loop setting spelled
            # out as the hub holds it, or left out, is no reason to replace it).
            if in_loop_mode(detail):
                detail = with_loop_state(detail, await client.get_loop(session_id))
            return session_id, detail

    details = dict(await asyncio.gather(*(fetch(i) for i in wanted)))
    return observed, details, index


@dataclass(frozen=True)
class Checked:
    """Manifests loaded and checked, and the scope resolved over them (once)."""

    load: LoadResult
    scope: Scope
    # --override-policy names, checked against the run's policies.
    overrides: tuple[str, ...] = ()
    # The run's Policy documents compiled (once), or None when it has none.
    policies: PolicySet | None = None
    # What the rules that read only the declarations found, before the hub was read.
    offline_findings: tuple[PolicyFinding, ...] | None = None


def load_checked(
    opts: GlobalOptions,
    paths: Sequence[str],
    *,
    project_name: str | None = None,
    flags: ScopeFlags = _NO_FLAGS,
    overrides: Sequence[str] = (),
    cache: ManifestCache | None = None,
) -> Checked:
    """Load the manifests under ``paths``, resolve the scope ``flags`` give and check
    the names plan compares: no I/O but files and the environment. Raises for invalid
    manifests, rules of a Policy that do not compile or unset names (65), a selector
    nothing matches, a ``--replace`` name not declared active or an
    ``--override-policy`` that names no overridable policy (64). ``cache``: a
    long-running caller's (``watch``), for the files that did not change."""
    load = load_manifests(
        list(paths) or ["."], environ=opts.environ, project_name=project_name, cache=cache
    )
    scope = flags.resolve(load.sessions)
    check_compared_env(load.sessions, scope)
    compiled = _compiled_policies(load, overrides)
    offline = None
    if compiled is not None:
        from reconciler.policy import evaluate_policies

        # A rule that fails on the declarations is a manifest error (65) before any
        # request; what the others need (the plan, the hub) comes later.
        offline = evaluate_policies(
            compiled,
            project=load.project.name,
            desired=load.sessions,
            overrides=overrides,
            in_scope=scope.includes if scope.targets or scope.excludes else None,
            formerly=load.project.previously,
        )
    return Checked(load, scope, tuple(overrides), compiled, offline)


def _compiled_policies(load: LoadResult, overrides: Sequence[str]) -> PolicySet | None:
    """The run's Policy documents compiled (once: programs are cached), overrides
    checked; None when there is none (the CEL package is then never imported)."""
    if not load.policies:
        if overrides:
            from reconciler.policy import check_overrides

            check_overrides(load.policies, overrides)
        return None
    from reconciler.policy import check_overrides, compile_policies

    compiled = compile_policies(load.policies)
    check_overrides(load.policies, overrides)
    return compiled


def _refuse_oversized_creates(
    plan: Plan, desired: Sequence[DesiredSession], environ: Mapping[str, str]
) -> None:
    """Raise ``ManifestErrors`` (65) when a create the plan makes would pass the hub's
    limit once its env values are resolved: before apply sends anything. Only creates
    carry env, so this waits for the plan: a value grown on an existing session refuses
    nothing."""
    names = {a.name for a in plan.actions if a.kind in ("create", "replace")}
    if not names:
        return
    errors = oversized_creates([d for d in desired if d.name in names], environ)
    if errors:
        raise ManifestErrors(errors)


def _with_policies(result: Plan, checked: Checked, observed: Sequence[RemoteSession]) -> Plan:
    """The plan with what the Policy rules found (deny findings refuse it in
    ``planner.check_safety``), overrides recorded in the bodies they affect."""
    if checked.policies is None:
        return result
    from reconciler.policy import evaluate_policies, record_overrides

    scope = checked.scope
    findings = evaluate_policies(
        checked.policies,
        project=checked.load.project.name,
        desired=checked.load.sessions,
        plan=result,
        observed=observed,
        overrides=checked.overrides,
        in_scope=scope.includes if scope.targets or scope.excludes else None,
        formerly=checked.load.project.previously,
        offline_findings=checked.offline_findings,
    )
    return record_overrides(dataclasses.replace(result, findings=findings))


async def build_plan(
    opts: GlobalOptions,
    paths: Sequence[str],
    *,
    endpoint: Endpoint,
    flags: ScopeFlags = _NO_FLAGS,
    project_name: str | None = None,
    client: CoderClient | None = None,
    checked: Checked | None = None,
    commit_of: Callable[[Sequence[str]], str | None] | None = None,
    overrides: Sequence[str] = (),
    cache: ManifestCache | None = None,
    to_apply: bool = False,
) -> PlanContext:
    """Load the manifests under ``paths`` and plan them against ``endpoint``.

    ``to_apply``: the plan is applied, or shown as what apply would do (``plan``): a
    create whose request, env values resolved, would pass the hub's limit refuses it
    (65). Not for what only reads (``status``, a report-only watch) or applies a plan
    of its own (``import``, ``forget``): those send no create.

    Invalid manifests (exit 65), unset names in compared fields (exit 65), rules of a
    Policy that do not compile (exit 65) and bad scope or override names (exit 64) stop
    it before any request. ``checked`` is a :func:`load_checked` result (its scope
    resolved, its policies compiled, its overrides checked) to plan instead of loading
    again; otherwise ``flags`` give the scope and ``overrides``
    (``--override-policy``) the overridable Policy denies lifted. ``client`` is used as
    given (not closed); otherwise one is opened for ``endpoint``. The org is
    ``--org``/``AGENTUITY_ORG_ID``, else the Project's orgId, else the token's
    (:meth:`Endpoint.org_for`). ``commit_of`` gives the commit recorded in create bodies
    (default :func:`git_commit` of ``paths``). ``cache`` is :func:`load_checked`'s.
    """
    paths = list(paths) or ["."]
    if checked is None:
        # Loading is not overlapped with listing: no request may leave while any
        # manifest is invalid, so a plan costs its load plus two listing round trips.
        checked = load_checked(
            opts,
            paths,
            project_name=project_name,
            flags=flags,
            overrides=overrides,
            cache=cache,
        )
    commit = (commit_of or git_commit)(paths)
    return await _build_plan(endpoint, commit, checked, client, opts.environ if to_apply else None)


async def _build_plan(
    endpoint: Endpoint,
    commit: str | None,
    checked: Checked,
    client: CoderClient | None,
    environ: Mapping[str, str] | None,
) -> PlanContext:
    load, scope = checked.load, checked.scope
    project = load.project
    desired = load.sessions
    if client is None:
        async with open_client(endpoint, org_id=project.org_id) as own:
            observed, details, index = await _observe(own, project, desired, destroy=scope.destroy)
            requests = own.request_count
    else:
        before = client.request_count
        observed, details, index = await _observe(client, project, desired, destroy=scope.destroy)
        requests = client.request_count - before
    result = planner.plan(
        project,
        desired,
        observed,
        details=details,
        scope=scope,
        commit=commit,
        index=index,
    )
    if environ is not None:  # to be applied (``build_plan``'s ``to_apply``)
        _refuse_oversized_creates(result, desired, environ)
    org_id = endpoint.org_for(project.org_id)
    result = dataclasses.replace(result, org_id=org_id, endpoint=endpoint.display)
    result = _with_policies(result, checked, observed)
    return PlanContext(
        plan=result,
        project=project,
        desired=tuple(desired),
        observed=observed,
        details=details,
        load=load,
        endpoint=endpoint.display,
        requests=requests,
        scope=scope,
        notes=planner.spent_adopt_lines(desired, observed, index, scope),
    )
