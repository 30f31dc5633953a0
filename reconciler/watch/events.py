"""The events ``watch --notify`` sends: one per change of state, never one per reconcile.

Pure: an :class:`~reconciler.watch.board.Update` in, the events it holds out.

| event | when |
| --- | --- |
| ``drift`` | sessions became pending (manifests changed) or drifted (hub changed) |
| ``healed`` | sessions out of sync, failed or refused are in sync again, or healed at once |
| ``failed`` | a session's heal failed, or the reconcile failed (hub, manifests, lock) |
| ``refused`` | a safety rule or a policy refused the plan (a new refusal, or new rules) |
| ``recovered`` | the watcher was failing and no longer is |

"Healed at once": a session this watcher's heal changed within one reconcile (a
watcher's first included), so no ``drift`` told of it, with the plan's reason (the hub
changed, or the manifests).

A message names sessions, states, field names and rules, never a field's value, so no
secret can reach a chat (values under ``env`` never leave the plan masked anyway).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.watch.board import Transition, Update

__all__ = ["EVENT_KINDS", "Event", "EventKind", "Severity", "events"]

EventKind = Literal["drift", "healed", "failed", "refused", "recovered"]
EVENT_KINDS: tuple[EventKind, ...] = ("drift", "healed", "failed", "refused", "recovered")
# apprise's notification types (its NotifyType values): the colour or icon in a chat.
Severity = Literal["info", "success", "warning", "failure"]
_SEVERITY: Mapping[EventKind, Severity] = {
    "drift": "warning",
    "healed": "success",
    "failed": "failure",
    "refused": "failure",
    "recovered": "success",
}
_OUT = frozenset({"pending", "drifted"})
_BAD = frozenset({"pending", "drifted", "failed", "refused"})


@dataclass(frozen=True)
class Event:
    """One notification: a title, a text body, and the same facts as JSON."""

    kind: EventKind
    title: str
    body: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> Severity:
        return _SEVERITY[self.kind]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _fields(transition: Transition) -> list[str]:
    action = transition.session.action
    if action is None:
        return []
    return [str(c["field"]) for c in action.get("changes", ())]


def _session(transition: Transition) -> dict[str, Any]:
    view = transition.session
    return {
        "name": view.name,
        "state": view.state,
        "previous": transition.previous,
        "source": view.source,
        "sessionId": view.session_id,
        "action": view.action["kind"] if view.action is not None else None,
        "fields": _fields(transition),
        "error": (view.last_result or {}).get("error") if view.state == "failed" else None,
    }


def _reason(transition: Transition) -> str:
    """Why the plan acted on the session: ``manifest: label``, ``drift: label``..."""
    action = transition.session.action
    return str(action.get("reason", "")) if action is not None else ""


def _line(session: Mapping[str, Any]) -> str:
    line = f"- {session['name']}: {session['state']}"
    if session["action"]:
        line += f" ({session['action']}"
        line += f": {', '.join(session['fields'])})" if session["fields"] else ")"
    if session["error"]:
        line += f": {session['error']}"
    return line


def _event(
    kind: EventKind,
    update: Update,
    title: str,
    lines: Sequence[str],
    **facts: Any,
) -> Event:
    project = update.project or "(no project)"
    entry = update.entry
    payload = {
        "event": kind,
        "project": update.project,
        "commit": entry.commit,
        "reconcile": entry.number,
        "at": entry.at,
        "result": entry.result,
        **facts,
    }
    return Event(kind, f"{project}: {title}", "\n".join(lines), payload)


def _rules(refusals: Sequence[Mapping[str, Any]]) -> set[tuple[str, str]]:
    return {(str(r["rule"]), str(r["message"])) for r in refusals}


def events(update: Update) -> tuple[Event, ...]:
    """The events of one reconcile (module doc), in the table's order."""
    found: list[Event] = []
    out = [t for t in update.transitions if t.session.state in _OUT and t.previous not in _OUT]
    if out:
        sessions = [_session(t) for t in out]
        found.append(
            _event(
                "drift",
                update,
                f"{_plural(len(out), 'session')} out of sync",
                [_line(s) for s in sessions],
                sessions=sessions,
            )
        )
    back = [
        t
        for t in update.transitions
        if t.session.state in ("in-sync", "ignored") and t.previous in _BAD
    ]
    quick = [t for t in update.put_right if t.previous not in _BAD]
    if back or quick:
        sessions = [{**_session(t), "healedByWatch": t.session.name in update.healed} for t in back]
        lines = [
            f"- {s['name']}: {s['previous']} -> in sync"
            + (" (healed)" if s["healedByWatch"] else "")
            for s in sessions
        ]
        # Out of sync and put right within one reconcile (or at a watcher's first): no
        # drift event told of it. The plan's reason says why: the manifests changed, or
        # the hub did (a hand edit reverted).
        for t in quick:  # the others are told above, as back in sync
            session = {**_session(t), "healedByWatch": True, "reason": _reason(t)}
            sessions.append(session)
            lines.append(f"- {session['name']}: {session['action']} applied ({session['reason']})")
        titles = []
        if back:
            titles.append(f"{_plural(len(back), 'session')} in sync again")
        if quick:
            titles.append(f"{_plural(len(quick), 'session')} changed by this watcher's heal")
        found.append(_event("healed", update, "; ".join(titles), lines, sessions=sessions))
    entry, previous = update.entry, update.previous
    broken = [t for t in update.transitions if t.session.state == "failed"]
    new_error = entry.result == "error" and (previous is None or previous.result != "error")
    if broken or new_error:
        sessions = [_session(t) for t in broken]
        lines = [_line(s) for s in sessions]
        if new_error:
            lines.insert(0, f"reconcile failed ({entry.error_kind}): {entry.error}")
        title = "reconcile failed" if new_error else f"{_plural(len(broken), 'heal')} failed"
        found.append(
            _event(
                "failed",
                update,
                title,
                lines,
                sessions=sessions,
                error=entry.error if new_error else None,
                errorKind=entry.error_kind if new_error else None,
            )
        )
    rules = _rules(entry.refusals)
    if rules and rules != _rules(previous.refusals if previous is not None else ()):
        lines = [
            f"- {r['rule']}: {r['message']}: {', '.join(r['sessions']) or '(the plan)'}"
            for r in entry.refusals
        ]
        names = ", ".join(sorted({str(r["rule"]) for r in entry.refusals}))
        found.append(
            _event(
                "refused",
                update,
                f"plan refused by {names}",
                ["Refused, never forced:", *lines],
                refusals=[dict(r) for r in entry.refusals],
            )
        )
    if update.health_before == "failing" and update.health in ("in-sync", "out-of-sync"):
        found.append(
            _event(
                "recovered",
                update,
                "recovered",
                [f"the last reconcile ended {entry.result}; health {update.health}"],
                health=update.health,
            )
        )
    return tuple(found)
