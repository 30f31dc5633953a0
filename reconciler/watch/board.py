"""What the status page, ``/status.json``, the badge and the notifications show.

Pure: each finished :class:`~reconciler.watch.cycle.Reconcile` (with the Unix time it
ended) in; the watcher's view of its sessions and the last reconciles out. No I/O, no
clock, no environment.

Every session's state on the page comes from one function, :func:`page_state`: the sync
word of its status row (:mod:`reconciler.status`), whether its last heal failed, whether
a safety rule or policy refused the plan for it, and whether ``lifecycle.ignoreChanges``
holds back a difference. A sync word added to the status rows later lands in ``pending``
or ``drifted`` there, and nowhere else.

Changes are shown as the plan document shows them (:func:`reconciler.planfile.plan_to_dict`):
values under ``env`` are ``(sensitive)``, never the value.

The history is kept in memory: the last ``history_size`` reconciles and the last
``SESSION_HISTORY`` changes of each session. A restarted watcher starts with none and
fills it from its first reconcile: the manifests and the hub are the state, the history
a view of recent work (as the metrics are).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from reconciler.model import (
    MARKER_PREFIX,
    DesiredSession,
    Lifecycle,
    Marker,
    Project,
    RemoteSession,
)
from reconciler.planfile import plan_to_dict
from reconciler.planner.core import ownership
from reconciler.planner.mutable import mutable_changes
from reconciler.planner.ownership import own_marker
from reconciler.watch.cycle import DEFAULT_HISTORY, Reconcile

__all__ = [
    "DEFAULT_HISTORY",
    "PAGE_STATES",
    "SESSION_HISTORY",
    "Board",
    "Health",
    "PageState",
    "ReconcileEntry",
    "SessionView",
    "Transition",
    "Update",
    "page_state",
]

PageState = Literal["in-sync", "pending", "drifted", "failed", "refused", "ignored", "unmanaged"]
PAGE_STATES: tuple[PageState, ...] = get_args(PageState)
# The whole watcher, as the badge says it: in sync, some sessions out of sync, or failing
# (the last reconcile ended in an error or a refusal, or a session's heal failed).
Health = Literal["unknown", "in-sync", "out-of-sync", "failing"]

SESSION_HISTORY = 20

# Sync words of sessions whose manifests ask for something the hub does not have yet.
_MANIFEST_SIDE = frozenset({"pending", "missing", "replace", "orphan"})


def page_state(
    sync: str,
    *,
    failed: bool = False,
    refused: bool = False,
    ignored: bool = False,
    archived_on_hub: bool = False,
) -> PageState:
    """The one mapping from a status row's sync word to the state the page shows.

    ``failed`` (its last heal failed) and ``refused`` (a safety rule or policy refused
    the plan for it) win. ``in-sync`` with a difference ``lifecycle.ignoreChanges``
    holds back is ``ignored``. A manifest-side word (``pending``, ``missing``,
    ``replace``, ``orphan``) is ``pending``, except a missing session whose managed
    session was archived on the hub (someone archived it there): ``drifted``. Every
    other word (``drifted``, ``differs`` of an unknown side, any added later) is
    ``drifted``.
    """
    if failed:
        return "failed"
    if refused:
        return "refused"
    if sync == "in-sync":
        return "ignored" if ignored else "in-sync"
    if sync == "missing" and archived_on_hub:
        return "drifted"
    if sync in _MANIFEST_SIDE:
        return "pending"
    return "drifted"


@dataclass(frozen=True)
class SessionView:
    """One session as the page shows it."""

    name: str
    state: PageState
    sync: str
    changed_at: float  # when it entered ``state`` (Unix time)
    source: str | None = None  # the manifest's file:line
    session_id: str | None = None
    status: str | None = None
    loop_status: str | None = None
    loop_iteration: int | None = None
    tags: tuple[str, ...] = ()
    action: Mapping[str, Any] | None = None  # the last plan's action for it, masked
    ignored_fields: tuple[str, ...] = ()
    refusals: tuple[Mapping[str, Any], ...] = ()
    last_result: Mapping[str, Any] | None = None  # its last applied action and outcome

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "sync": self.sync,
            "source": self.source,
            "sessionId": self.session_id,
            "status": self.status,
            "loopStatus": self.loop_status,
            "loopIteration": self.loop_iteration,
            "tags": list(self.tags),
            "changedAt": self.changed_at,
            "action": dict(self.action) if self.action is not None else None,
            "ignoredFields": list(self.ignored_fields),
            "refusals": [dict(r) for r in self.refusals],
            "lastResult": dict(self.last_result) if self.last_result is not None else None,
        }


@dataclass(frozen=True)
class ReconcileEntry:
    """One reconcile in the history."""

    number: int
    at: float
    duration_s: float
    result: str
    commit: str | None = None
    summary: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    actions: tuple[Mapping[str, Any], ...] = ()  # applied: kind, name, outcome, error
    planned: tuple[Mapping[str, Any], ...] = ()  # found, not applied: kind, name
    refusals: tuple[Mapping[str, Any], ...] = ()
    error: str | None = None
    error_kind: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "at": self.at,
            "durationSeconds": round(self.duration_s, 3),
            "result": self.result,
            "commit": self.commit,
            "summary": self.summary,
            "counts": dict(self.counts),
            "actions": [dict(a) for a in self.actions],
            "planned": [dict(a) for a in self.planned],
            "refusals": [dict(r) for r in self.refusals],
            "error": self.error,
            "errorKind": self.error_kind,
        }


@dataclass(frozen=True)
class Transition:
    """A session whose state changed (``previous`` None: first seen)."""

    session: SessionView
    previous: PageState | None


@dataclass(frozen=True)
class Update:
    """What one reconcile changed: the sessions whose state changed (and those gone),
    and the watcher's health before and after."""

    entry: ReconcileEntry
    previous: ReconcileEntry | None
    transitions: tuple[Transition, ...]
    gone: tuple[str, ...]
    health_before: Health
    health: Health
    project: str | None
    healed: frozenset[str] = frozenset()  # sessions this reconcile's heal put right
    # Those this reconcile's heal changed (a no-op left out), each with the state it had
    # before (None: first seen, a watcher's first reconcile): the events tell the ones
    # found out of sync and put right in the same reconcile.
    put_right: tuple[Transition, ...] = ()


def _refusals(reconcile: Reconcile) -> tuple[dict[str, Any], ...]:
    return tuple(v.to_dict() for v in reconcile.refusal)


def _results(reconcile: Reconcile) -> tuple[dict[str, Any], ...]:
    if reconcile.report is None:
        return ()
    return tuple(
        {
            "kind": r.action.kind,
            "name": r.action.name,
            "outcome": r.outcome,
            "error": r.error,
            "sessionId": r.session_id or r.action.session_id,
        }
        for r in reconcile.report.results + reconcile.report.duplicates
    )


def _ignored(
    project: Project, desired: DesiredSession | None, remote: RemoteSession
) -> tuple[str, ...]:
    """The fields whose difference ``lifecycle.ignoreChanges`` holds back (none when it
    lists none): the planner's comparison with the list emptied (a session found under
    an old name, ``previously``, compared with the marker it will carry, as the planner
    does)."""
    if desired is None or not desired.lifecycle.ignore_changes:
        return ()
    unheld = dataclasses.replace(
        desired, lifecycle=Lifecycle(prevent_destroy=desired.lifecycle.prevent_destroy)
    )
    held = set(desired.lifecycle.ignore_changes)
    found = own_marker(project.name, remote, project.previously)
    marker = Marker(project.name, desired.name, found.hash) if found is not None else None
    fields = [
        c.field
        for c in mutable_changes(unheld, remote, marker, project.previously)
        if c.field in held
    ]
    if "status" in held and remote.status == "paused":
        fields.append("status")
    return tuple(fields)


def _source(desired: DesiredSession | None) -> str | None:
    if desired is None or desired.source is None:
        return None
    return f"{desired.source.file}:{desired.source.line}"


def _tags(desired: DesiredSession | None, remote: RemoteSession | None) -> tuple[str, ...]:
    declared = desired.spec.get("tags") if desired is not None else None
    if isinstance(declared, Sequence) and not isinstance(declared, str):
        return tuple(str(t) for t in declared)
    if remote is not None:
        return tuple(t for t in remote.tags if not t.startswith(MARKER_PREFIX))
    return ()


def _health(entry: ReconcileEntry | None, sessions: Mapping[str, SessionView]) -> Health:
    if entry is None:
        return "unknown"
    states = {s.state for s in sessions.values()}
    if entry.result in ("error", "refused") or "failed" in states:
        return "failing"
    if states & {"pending", "drifted", "refused"}:
        return "out-of-sync"
    return "in-sync"


class Board:
    """The watcher's view, updated by :meth:`record` after each reconcile."""

    def __init__(self, *, history_size: int = DEFAULT_HISTORY) -> None:
        self.history: deque[ReconcileEntry] = deque(maxlen=history_size)
        self.sessions: dict[str, SessionView] = {}
        self.session_history: dict[str, deque[Mapping[str, Any]]] = {}
        self.project: str | None = None
        self.commit: str | None = None
        self.endpoint: str | None = None
        self.unmanaged = 0

    @property
    def last(self) -> ReconcileEntry | None:
        return self.history[-1] if self.history else None

    @property
    def health(self) -> Health:
        return _health(self.last, self.sessions)

    def counts(self) -> dict[str, int]:
        """Sessions by page state, every state present (unmanaged: on the hub, not ours)."""
        counts: dict[str, int] = dict.fromkeys(PAGE_STATES, 0)
        for view in self.sessions.values():
            counts[view.state] += 1
        counts["unmanaged"] = self.unmanaged
        return counts

    def record(self, reconcile: Reconcile, *, number: int, now: float) -> Update:
        """Take in a finished reconcile; what changed."""
        before = self.health
        previous_entry = self.last
        results = _results(reconcile)
        context = reconcile.context
        previous = self.sessions
        if context is not None:
            self.project = context.project.name
            self.commit = context.plan.commit
            self.endpoint = context.plan.endpoint
            self.sessions = self._views(reconcile, results, number, now)
        acted = {r["name"] for r in results}
        transitions: list[Transition] = []
        for name, view in self.sessions.items():
            old = previous.get(name)
            changed = old is None or old.state != view.state
            if changed:
                transitions.append(Transition(view, old.state if old else None))
            if changed or name in acted:
                self._remember(name, number, now, view)
        gone = tuple(sorted(previous.keys() - self.sessions.keys()))
        for name in gone:  # archived or no longer managed: its history goes with it
            self.session_history.pop(name, None)
        plan = reconcile.plan
        entry = ReconcileEntry(
            number=number,
            at=now,
            duration_s=reconcile.duration_s,
            result=reconcile.result,
            commit=self.commit if context is not None else None,
            summary=plan.summary() if plan is not None else None,
            counts=self.counts() if context is not None else {},
            actions=results,
            planned=tuple({"kind": a.kind, "name": a.name} for a in plan.actions)
            if plan is not None and reconcile.report is None
            else (),
            refusals=_refusals(reconcile),
            error=reconcile.error,
            error_kind=reconcile.error_kind,
        )
        self.history.append(entry)
        healed = frozenset(
            r["name"] for r in results if r["outcome"] in ("succeeded", "adopted", "noop")
        ) - {r["name"] for r in results if r["outcome"] == "failed"}
        acted_on = {r["name"] for r in results if r["outcome"] in ("succeeded", "adopted")}
        put_right = tuple(
            Transition(self.sessions[name], previous[name].state if name in previous else None)
            for name in sorted(healed & acted_on)
            if name in self.sessions
        )
        return Update(
            entry=entry,
            previous=previous_entry,
            transitions=tuple(transitions),
            gone=gone,
            health_before=before,
            health=self.health,
            project=self.project,
            healed=healed,
            put_right=put_right,
        )

    def _remember(self, name: str, number: int, now: float, view: SessionView) -> None:
        events = self.session_history.setdefault(name, deque(maxlen=SESSION_HISTORY))
        note = None
        if view.last_result is not None and view.last_result.get("reconcile") == number:
            result = view.last_result
            note = f"{result['kind']}: {result['outcome']}"
            if result.get("error"):
                note += f": {result['error']}"
        elif view.action is not None:
            note = f"planned: {view.action['kind']}"
        events.append({"reconcile": number, "at": now, "state": view.state, "note": note})

    def _views(
        self,
        reconcile: Reconcile,
        results: Sequence[Mapping[str, Any]],
        number: int,
        now: float,
    ) -> dict[str, SessionView]:
        context = reconcile.context
        assert context is not None
        declared = {d.name: d for d in context.desired}
        by_id = {r.session_id: r for r in context.observed}
        index = ownership(context.project, context.desired, context.observed)
        ours = {m.remote.session_id for entries in index.values() for m in entries}
        self.unmanaged = sum(
            1 for r in context.observed if r.session_id not in ours and not r.archived_like
        )
        # The plan's actions as the plan document shows them (env masked), by session.
        actions: dict[str, dict[str, Any]] = {}
        for action in plan_to_dict(context.plan)["actions"]:
            actions.setdefault(action["name"], action)
        refusals: dict[str, list[dict[str, Any]]] = {}
        for refusal in _refusals(reconcile):
            for named in refusal["sessions"]:
                # "name" or "name (session id)": a name holds no space.
                refusals.setdefault(named.split(" ", 1)[0], []).append(refusal)
        outcomes: dict[str, dict[str, Any]] = {}
        failures: set[str] = set()  # a replacement is two results: either may fail
        for result in results:
            name = result["name"]
            if name not in failures:  # a failure stays the result shown
                outcomes[name] = {**result, "at": now, "reconcile": number}
            if result["outcome"] == "failed":
                failures.add(name)
        views: dict[str, SessionView] = {}
        for row in reconcile.rows:
            if row.name in views:
                continue  # duplicates: the kept session's row comes first
            desired = declared.get(row.name)
            remote = by_id.get(row.session_id) if row.session_id else None
            outcome = outcomes.get(row.name)
            failed = row.name in failures
            healed = outcome is not None and not failed and outcome["outcome"] != "skipped"
            archived = row.sync == "missing" and any(
                m.remote.archived_like for m in index.get(row.name, [])
            )
            ignored = _ignored(context.project, desired, remote) if remote is not None else ()
            state = page_state(
                "in-sync" if healed else row.sync,
                failed=failed,
                refused=row.name in refusals,
                ignored=bool(ignored),
                archived_on_hub=archived,
            )
            old = self.sessions.get(row.name)
            last = old.last_result if old is not None else None
            if outcome is not None:
                last = outcome
            views[row.name] = SessionView(
                name=row.name,
                state=state,
                sync=row.sync,
                changed_at=old.changed_at if old is not None and old.state == state else now,
                source=_source(desired),
                session_id=row.session_id,
                status=row.status,
                loop_status=row.loop_status,
                loop_iteration=row.loop_iteration,
                tags=_tags(desired, remote),
                action=actions.get(row.name),
                ignored_fields=ignored,
                refusals=tuple(refusals.get(row.name, ())),
                last_result=last,
            )
        return views

    def to_dict(self) -> dict[str, Any]:
        """``/status.json`` (``reconciler schema status`` describes it)."""
        last = self.last
        return {
            "project": self.project,
            "endpoint": self.endpoint,
            "commit": self.commit,
            "health": self.health,
            "counts": self.counts(),
            "lastReconcile": last.to_dict() if last is not None else None,
            "sessions": [view.to_dict() for view in self.sessions.values()],
            "history": [entry.to_dict() for entry in reversed(self.history)],
        }
