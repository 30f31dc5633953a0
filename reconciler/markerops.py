"""Plans that only move this project's marker tag: ``forget`` and ``import``.

Each is a :data:`~reconciler.applyrun.PlanMaker`: given the manifests' plan context and
the run's client, it returns a plan of tag ``update`` actions that ``run_apply`` shows,
confirms, applies and reports like any other (safety, locking, staleness included).

- :func:`forget`: every session managed as NAME loses the marker (``planner.forget``).
- :func:`import_session`: one existing session gains NAME's marker, so the next plan
  treats it as the declared session NAME (Terraform's ``import``). Refused when its
  create-only fields differ from the manifest's (adopted, it would pass for running
  the declaration, and no plan would say otherwise).
- :func:`manifest_for`: the manifest that would adopt a session as it is
  (``import --write``), rendered by ``reconciler.export``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reconciler.apifacts import SESSION_NAME_PATTERN
from reconciler.errors import UsageError
from reconciler.model import Action, DesiredSession, FieldChange, Marker, Plan, RemoteSession
from reconciler.planner.applied import (
    with_adopted_tag,
    with_applied_tag,
    with_protected_tag,
)
from reconciler.planner.core import ownership
from reconciler.planner.fingerprint import fingerprint
from reconciler.planner.forget import check_forget, plan_forget
from reconciler.planner.mutable import adoption_record
from reconciler.planner.ownership import renames
from reconciler.planner.replacement import refuse_create_only_differences
from reconciler.planner.reported import in_loop_mode, with_loop_state
from reconciler.planner.scope import renamed_name
from reconciler.suggest import did_you_mean

if TYPE_CHECKING:
    from reconciler.applyrun import PlanMaker
    from reconciler.client.core import CoderClient
    from reconciler.connect import Endpoint
    from reconciler.pipeline import PlanContext
    from reconciler.settings import GlobalOptions

__all__ = [
    "REASON_IMPORT",
    "forget",
    "import_session",
    "manifest_for",
    "write_manifest",
]

REASON_IMPORT = "import: adopted as declared"


def forget(name: str, *, force: bool) -> PlanMaker:
    """Forget NAME: refused while declared unless ``force`` (``planner.forget``)."""

    async def make(context: PlanContext, client: CoderClient) -> Plan:
        index = ownership(context.project, context.desired, context.observed)
        known = sorted({d.name for d in context.desired} | index.keys())
        if name not in known:
            new = renames(context.desired).get(name)
            if new is not None:  # an old name (`previously`): as --target is told
                raise UsageError(renamed_name("forget", name, new))
            raise UsageError(
                f"forget {name}: no session of that name is declared or managed"
                + did_you_mean(name, known)
            )
        plan = plan_forget(context.project, index, name)
        if plan.has_changes:  # nothing managed as NAME: nothing to refuse either
            check_forget(name, context.desired, force=force)
        return plan

    return make


def _declared(context: PlanContext, name: str, session_id: str) -> DesiredSession:
    found = [d for d in context.desired if d.name == name and d.state == "active"]
    if not found and any(d.name == name for d in context.desired):
        state = next(d.state for d in context.desired if d.name == name)
        raise UsageError(
            f"import {name}: {name} is declared `state: {state}`; declare it active "
            "(state: active, or no state) to import a session as it"
        )
    if not found:
        active = [d.name for d in context.desired if d.state == "active"]
        if session_id in active:  # `import SESSION_ID NAME`: the two the other way round
            hint = f"; the name comes first: `import {session_id} {name}`"
        else:
            hint = did_you_mean(name, active)
        raise UsageError(
            f"import {name}: no session of that name is declared active"
            + hint
            + " (`import --write` prints the manifest that adopts it as it is)"
        )
    return found[0]


def _check_owner(project: str, name: str, remote: RemoteSession, d: DesiredSession) -> bool:
    """True when ``remote`` already is NAME as declared; raise when it belongs elsewhere."""
    _refuse_others(project, name, remote.session_id, remote.markers())
    return any(d.matches(m.hash) for m in remote.markers())


def _refuse_others(project: str, name: str, session_id: str, markers: Sequence[Marker]) -> None:
    """Raise when a session marked ``markers`` is another project's, or this one's under
    another name: import (and ``--write``, whose manifest would then stop every plan)
    take only a session that is NAME or no project's."""
    for marker in markers:
        if marker.project != project:
            raise UsageError(
                f"import {name}: session {session_id} is managed by project "
                f"{marker.project} (forget it there first)"
            )
        if marker.name != name:
            raise UsageError(
                f"import {name}: session {session_id} is already managed here as {marker.name}"
            )


def import_session(name: str, session_id: str) -> PlanMaker:
    """Adopt ``session_id`` as the declared session NAME: one tag update."""

    async def make(context: PlanContext, client: CoderClient) -> Plan:
        project = context.project
        d = _declared(context, name, session_id)
        detail = await client.get_session(session_id)
        remote = RemoteSession.from_api(detail)
        if remote.archived_like:
            raise UsageError(f"import {name}: session {session_id} is {remote.status}")
        already = _check_owner(project.name, name, remote, d)
        others = [
            m.remote.session_id
            # As the plan owns them (renames, the project's old names): never a second.
            for m in ownership(project, context.desired, context.observed).get(name, [])
            if not m.remote.archived_like and m.remote.session_id != session_id
        ]
        if others:
            raise UsageError(
                f"import {name}: {name} is already managed as session {', '.join(others)} "
                f"(archive it first, `reconciler sessions archive {others[0]}`, or "
                f"`reconciler forget {name} --force` it)"
            )
        # Loop settings are only in the loop state: compared where both sides give one.
        report = detail
        if in_loop_mode(detail):
            report = with_loop_state(detail, await client.get_loop(session_id))
        refuse_create_only_differences(d, report, f"{name} ({session_id})")
        plan = Plan(
            project=project.name,
            actions=(),
            org_id=project.org_id,
            policy=project.policy,
            managed_count=context.plan.managed_count,
        )
        if already:
            return plan
        marker = Marker(project.name, name, d.spec_hash)
        stale = tuple(
            t for t in remote.tags if (m := Marker.parse(t)) and m.project == project.name
        )
        kept = [t for t in remote.tags if t not in stale]
        # The protection the declaration asks for comes with the marker, and a record
        # of it and of the fields the hub holds as declared (planner.mutable).
        protect = d.lifecycle.prevent_destroy
        tags = with_adopted_tag(with_protected_tag([*kept, marker.tag], project.name, protect))
        added = tuple(t for t in tags if t not in remote.tags)
        removed = tuple(t for t in remote.tags if t not in tags)
        tags = with_applied_tag(
            tags, project.name, adoption_record(project.name, d, remote, marker)
        )
        action = Action(
            kind="update",
            name=name,
            reason=REASON_IMPORT,
            session_id=session_id,
            body={"tags": tags},
            changes=(FieldChange("tags", added=added, removed=removed),),
            precondition=fingerprint(remote),
            marker_tag=marker.tag,
            live=remote.live,
            source=d.source,
        )
        return dataclasses.replace(plan, actions=(action,))

    return make


async def write_manifest(
    opts: GlobalOptions,
    paths: Sequence[str],
    name: str,
    session_id: str,
    *,
    endpoint: Endpoint,
    project_name: str | None = None,
) -> tuple[str, list[str]]:
    """``import --write``: load the manifests (the project, the names taken), then read
    the session and return its manifest and export's notes on it; nothing changes on
    the hub."""
    from reconciler.connect import open_client
    from reconciler.pipeline import load_checked

    load = load_checked(opts, list(paths) or ["."], project_name=project_name).load
    taken = [d.name for d in load.sessions]
    if re.fullmatch(SESSION_NAME_PATTERN, name) is None:  # refused before any request
        swapped = re.fullmatch(SESSION_NAME_PATTERN, session_id) is not None
        raise UsageError(
            f"import {name}: not a session name"
            + (
                f"; if {name} is the session's id, the name comes first: "
                f"`import --write {session_id} {name}`"
                if swapped
                else ""
            )
        )
    async with open_client(endpoint, org_id=load.project.org_id) as client:
        return await manifest_for(
            client,
            load.project.name,
            name,
            session_id,
            taken=taken,
            defaults=load.project.defaults,
            plain_env=load.project.plain_env,
        )


async def manifest_for(
    client: CoderClient,
    project: str,
    name: str,
    session_id: str,
    *,
    taken: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
    plain_env: Collection[str] = (),
) -> tuple[str, list[str]]:
    """The manifest file that declares ``session_id`` as it is, under ``name``, written
    against the Project's ``defaults`` and ``plain_env`` as export writes it (a field the
    defaults give the session lacks is written empty: left out, it would inherit the
    default, and the session would differ from its declaration), and export's notes on
    it."""
    from reconciler.export import build_exports, export_notes, render_file

    if name in taken:
        raise UsageError(
            f"import {name}: {name} is already declared; --write is for a session the "
            "manifests do not declare yet"
        )
    detail = await client.get_session(session_id)
    loops = {}
    if in_loop_mode(detail):
        loops[session_id] = await client.get_loop(session_id)
    (exported,) = build_exports(project, [detail], loops, defaults=defaults, plain_env=plain_env)
    _refuse_others(project, name, session_id, exported.markers)
    exported = dataclasses.replace(exported, name=name)
    return render_file(exported), export_notes(exported, plain_env)
