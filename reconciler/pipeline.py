"""From paths and options to a Plan: load, check env, list, fetch details, plan.

Shared by ``plan``, ``apply`` and ``status``. This is the I/O edge around the pure
planner: it reads manifests, the environment (through ``opts.environ``), git and the
hub, and hands plain values to :func:`reconciler.planner.plan`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import gctune, planner
from reconciler.client.core import CoderClient
from reconciler.connect import open_client, resolve_endpoint
from reconciler.errors import UnsetEnvError
from reconciler.manifest import LoadResult, load_manifests
from reconciler.model import MUTABLE_FIELDS, DesiredSession, Plan, Project, RemoteSession
from reconciler.planner.scope import select_names
from reconciler.settings import GlobalOptions

if TYPE_CHECKING:
    from reconciler.policy import PolicySet

__all__ = [
    "COMPARED_FIELDS",
    "PlanContext",
    "build_plan",
    "check_compared_env",
    "git_commit",
    "load_checked",
    "scope_targets",
]

# The spec fields plan compares with the hub: their ${env:...} names must be set.
COMPARED_FIELDS: tuple[str, ...] = MUTABLE_FIELDS
_DETAIL_CONCURRENCY = 8


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
    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()


def _in_scope(name: str, targets: Sequence[str], excludes: Sequence[str]) -> bool:
    return (not targets or name in targets) and name not in excludes


def check_compared_env(
    sessions: Sequence[DesiredSession],
    *,
    targets: Sequence[str] = (),
    excludes: Sequence[str] = (),
) -> None:
    """Raise :class:`UnsetEnvError` for unset names used in the compared fields.

    Only active sessions in scope are compared, so only theirs are needed; names used
    elsewhere (``env``, ``task``) are apply's concern.
    """
    names: set[str] = set()
    where: list[str] = []
    for d in sessions:
        if d.state != "active" or not _in_scope(d.name, targets, excludes):
            continue
        for field in COMPARED_FIELDS:
            unset = d.unset_refs.get(field)
            if unset:
                names |= unset
                where.append(f"{d.name}.{field}")
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


def _remote(item: dict[str, Any]) -> RemoteSession:
    remote = RemoteSession.from_api(item)
    remote.markers()
    return remote


def _session_id(remote: RemoteSession) -> str:
    return remote.session_id


async def _observe(
    client: CoderClient,
    project: Project,
    desired: Sequence[DesiredSession],
    targets: Sequence[str],
    excludes: Sequence[str],
) -> tuple[tuple[RemoteSession, ...], dict[str, Mapping[str, Any]]]:
    # Each page becomes RemoteSessions, markers parsed, as soon as it arrives: that work
    # overlaps the hub preparing the later pages, and the page's JSON is freed at once.
    listed = await client.list_all_converted(_remote, _session_id, include_archived=True)
    observed = tuple(listed)
    del listed
    wanted = planner.needs_detail(project, desired, observed, targets=targets, excludes=excludes)
    gate = asyncio.Semaphore(_DETAIL_CONCURRENCY)

    async def fetch(session_id: str) -> tuple[str, Mapping[str, Any]]:
        async with gate:
            return session_id, await client.get_session(session_id)

    details = dict(await asyncio.gather(*(fetch(i) for i in wanted)))
    return observed, details


def scope_targets(
    load: LoadResult, targets: Sequence[str], selectors: Sequence[str]
) -> tuple[str, ...]:
    """``--target`` names plus the declared names a ``--selector`` picks (exit 64 for a
    selector nothing matches)."""
    if not selectors:
        return tuple(targets)
    return tuple(dict.fromkeys([*targets, *select_names(load.sessions, selectors)]))


def load_checked(
    opts: GlobalOptions,
    paths: Sequence[str],
    *,
    targets: Sequence[str] = (),
    excludes: Sequence[str] = (),
    project_name: str | None = None,
    selectors: Sequence[str] = (),
    overrides: Sequence[str] = (),
) -> LoadResult:
    """Load the manifests under ``paths`` and check the names plan compares: no I/O
    but files and the environment. Raises for invalid manifests, rules of a Policy
    that do not compile or unset names (65), or a selector nothing matches and an
    ``--override-policy`` that names no overridable policy (64)."""
    with gctune.bulk_allocation():
        load = load_manifests(list(paths) or ["."], environ=opts.environ, project_name=project_name)
        targets = scope_targets(load, targets, selectors)
        check_compared_env(load.sessions, targets=targets, excludes=excludes)
    _compiled_policies(load, overrides)
    return load


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


def _with_policies(
    result: Plan,
    load: LoadResult,
    observed: Sequence[RemoteSession],
    shape: _Shape,
) -> Plan:
    """The plan with what the Policy rules found (deny findings refuse it in
    ``planner.check_safety``), overrides recorded in the bodies they affect."""
    compiled = _compiled_policies(load, shape.overrides)
    if compiled is None:
        return result
    from reconciler.policy import evaluate_policies, record_overrides

    findings = evaluate_policies(
        compiled,
        project=load.project.name,
        desired=load.sessions,
        plan=result,
        observed=observed,
        overrides=shape.overrides,
        in_scope=(lambda name: _in_scope(name, shape.targets, shape.excludes))
        if shape.targets or shape.excludes
        else None,
    )
    return record_overrides(dataclasses.replace(result, findings=findings))


async def build_plan(
    opts: GlobalOptions,
    paths: Sequence[str],
    *,
    targets: Sequence[str] = (),
    excludes: Sequence[str] = (),
    project_name: str | None = None,
    client: CoderClient | None = None,
    load: LoadResult | None = None,
    selectors: Sequence[str] = (),
    replace: Sequence[str] = (),
    destroy: bool = False,
    overrides: Sequence[str] = (),
) -> PlanContext:
    """Load the manifests under ``paths`` and plan them against the hub.

    Invalid manifests (exit 65) and unset names in compared fields (exit 65) stop it
    before any request. ``load`` is a :func:`load_checked` result to plan instead of
    loading again. ``client`` is used as given (not closed); otherwise one is opened
    for the resolved endpoint. The org is ``--org``/``AGENTUITY_ORG_ID``, else the
    Project's orgId. ``selectors`` (``tag=VALUE``) add the declared sessions carrying
    those tags to ``targets``; ``replace`` and ``destroy`` are :func:`planner.plan`'s;
    ``overrides`` (``--override-policy``) lift those overridable Policy denies.
    """
    paths = list(paths) or ["."]
    if load is None:
        # Loading is not overlapped with listing: no request may leave while any
        # manifest is invalid, so a plan costs its load plus two listing round trips.
        load = load_checked(
            opts,
            paths,
            targets=targets,
            excludes=excludes,
            project_name=project_name,
            selectors=selectors,
            overrides=overrides,
        )
    targets = scope_targets(load, targets, selectors)
    # Checked before any request, like the manifests.
    planner.check_replace_names(load.sessions, replace)
    shape = _Shape(tuple(targets), tuple(excludes), tuple(replace), destroy, tuple(overrides))
    with gctune.bulk_allocation():
        return await _build_plan(opts, paths, load, shape, client)


@dataclass(frozen=True)
class _Shape:
    targets: tuple[str, ...]
    excludes: tuple[str, ...]
    replace: tuple[str, ...]
    destroy: bool
    overrides: tuple[str, ...] = ()


async def _build_plan(
    opts: GlobalOptions,
    paths: list[str],
    load: LoadResult,
    shape: _Shape,
    client: CoderClient | None,
) -> PlanContext:
    targets, excludes = shape.targets, shape.excludes
    project = load.project
    desired = load.sessions
    endpoint = resolve_endpoint(opts)
    org_id = opts.org or project.org_id
    if client is None:
        async with open_client(opts, org_id=project.org_id) as own:
            observed, details = await _observe(own, project, desired, targets, excludes)
            requests = own.request_count
    else:
        before = client.request_count
        observed, details = await _observe(client, project, desired, targets, excludes)
        requests = client.request_count - before
    result = planner.plan(
        project,
        desired,
        observed,
        details=details,
        targets=targets,
        excludes=excludes,
        commit=git_commit(paths),
        replace=shape.replace,
        destroy=shape.destroy,
    )
    result = dataclasses.replace(result, org_id=org_id, endpoint=endpoint.display)
    result = _with_policies(result, load, observed, shape)
    return PlanContext(
        plan=result,
        project=project,
        desired=tuple(desired),
        observed=observed,
        details=details,
        load=load,
        endpoint=endpoint.display,
        requests=requests,
        targets=shape.targets,
        excludes=shape.excludes,
    )
