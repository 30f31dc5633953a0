"""The values a rule sees, as plain JSON-like data (CEL takes dicts, lists, scalars).

- ``session``: ``name``, ``set`` (its SessionSet or null), ``tags``, ``state`` and
  ``spec`` (as the hub will be sent it: Project defaults applied, sets expanded, plain
  variables' references resolved as the plan resolves them, aliases in their long form
  (``DesiredSession.resolved``), so a reference cannot carry a value past a rule;
  under ``env`` references unresolved, and a value written literally, in full or in
  part (a default, text beside a reference), ``(sensitive)``: no secret value is ever
  in it).
- ``live``: the hub's session of that name (what the list endpoint says) or null.
- ``change``: the planned action for the session (``kind``, ``fields``, ``reason``) or
  null when the plan leaves it alone.
- ``plan``: ``creates``, ``updates``, ``replaces``, ``resumes``, ``archives``,
  ``deletes`` (lists of ``{name, set, sessionId, reason, fields, tags}``) and ``counts``
  (one number per list, and ``total``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from reconciler.fields import FIELD_ORDER, SECRET_FIELDS
from reconciler.manifest.envref import as_written_is_secret_free
from reconciler.masking import SENSITIVE
from reconciler.model import (
    MARKER_PREFIX,
    Action,
    DesiredSession,
    Plan,
    RemoteSession,
)
from reconciler.planner.core import beside_the_kept
from reconciler.planner.ownership import choose_kept, managed_by_name, renames

__all__ = [
    "PLAN_LISTS",
    "Judged",
    "change_value",
    "live_index",
    "live_value",
    "plan_value",
    "session_actions",
    "session_value",
    "spec_fields",
]

# plan.<list> for each action kind.
PLAN_LISTS: dict[str, str] = {
    "create": "creates",
    "update": "updates",
    "replace": "replaces",
    "resume": "resumes",
    "archive": "archives",
    "delete": "deletes",
}


def _plain(value: Any) -> Any:
    """Lists for tuples, dicts for other mappings: CEL takes nothing else."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


_SPEC_FIELDS = frozenset(FIELD_ORDER)
# A field of the spec selected by name: `spec.loop`, `spec . loop`.
_SELECTED = re.compile(r"\bspec\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
# `session` or `spec` not followed by the selection of a field (`.name` that is not a
# call): the expression may read the whole map (`size(session.spec)`,
# `session.spec.exists(k, ...)`, `session["spec"]`, `session.spec[k]`).
_WHOLE = re.compile(r"\b(session|spec)\b(?!\s*\.\s*[A-Za-z_]\w*\b(?!\s*\())")
# CEL's quoted strings (their escapes: a backslash and the next character) and its
# comments (`//` to the end of the line), found together from the left: a `//` inside
# a string and a quote inside a comment are what they are. The words in a string are
# no variables (a message's "session " is text); a comment can sit between a name and
# its call (`spec.exists // any\n(k, ...)`). Raw and triple-quoted strings, whose ends
# these do not find, leave the text unread (every field passed).
_STRING_OR_COMMENT = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|//[^\n]*""")
_OTHER_STRINGS = re.compile(r"""\b(?:[rR][bB]?|[bB][rR])["']|'''|\"\"\"""")


def _code(text: str) -> str | None:
    """``text`` with its strings emptied and its comments blanked, or None when its
    strings cannot be told apart for sure."""
    if _OTHER_STRINGS.search(text):
        return None
    return _STRING_OR_COMMENT.sub(lambda m: " " if m[0].startswith("/") else '""', text)


def spec_fields(texts: Iterable[str]) -> frozenset[str] | None:
    """The spec fields the expressions may read, or None for all of them.

    CEL converts a variable's whole value on first use: a spec of a dozen fields costs
    several times what the rules' own work does. An expression reads a field of the
    spec only by selecting it (``spec.NAME``, ``has(session.spec.NAME)``); any other way
    to reach the spec (``spec[k]``, ``size(session.spec)``, a macro or a function over
    it, ``session`` itself) reads it whole (``_WHOLE``), and then every field is passed.
    """
    selected: set[str] = set()
    for text in texts:
        code = _code(text)
        if code is None or _WHOLE.search(code):
            return None
        selected.update(_SELECTED.findall(code))
    # Every spec field is the registry's (the manifest schema allows no other).
    return frozenset(selected) & _SPEC_FIELDS


# Each ``env`` value judged (:func:`_masked`), by value and the plain variables: kept by
# the caller for one run, never longer (the values may be secrets written literally).
Judged = dict[tuple[str, frozenset[str]], bool]


def session_value(
    desired: DesiredSession, fields: frozenset[str] | None = None, judged: Judged | None = None
) -> dict[str, Any]:
    """``session``; with ``fields`` (:func:`spec_fields`), only those spec fields.
    ``judged``: a run's judgments of ``env`` values, filled as they are made (the same
    values recur in session after session)."""
    # What the hub will hold: a plain variable's value (or its default) resolved, as the
    # plan shows it; a rule judging `${env:VIS:-collaborate}` as written would let any
    # value through. ``env`` is kept as written there (masked below).
    declared = desired.resolved
    tags = declared.get("tags")
    secret = [f for f in SECRET_FIELDS if f in declared]  # env, masked below
    spec: dict[str, Any]
    if fields is not None:
        spec = {k: declared[k] for k in fields if k in declared}
    else:
        spec = declared if type(declared) is dict else _plain(declared)
        if secret:
            spec = dict(spec)  # a copy: the secret fields are replaced below
    for name in secret:
        if name in spec:
            spec[name] = _masked(declared[name], desired.plain_env, judged)
    return {
        "name": desired.name,
        "set": desired.set_name,
        "tags": list(tags) if isinstance(tags, list | tuple) else [],
        "state": desired.state,
        # The loader builds specs from YAML (dicts, lists, scalars): passed as they are.
        "spec": spec,
    }


def _masked(env: Any, plain: frozenset[str], judged: Judged | None = None) -> Any:
    """A secret field (``env``) with each value written literally, in full or in part (a
    secret written in the manifest: text beside a reference, a default but a ``plain``
    variable's), shown as ``(sensitive)``; a bare reference (``${env:NAME}``) is kept: it
    is no secret, and a rule may require one."""
    if not isinstance(env, Mapping):
        return env
    if judged is None:
        judged = {}
    masked = {}
    for key, value in env.items():
        free = judged.get((value, plain)) if isinstance(value, str) else None
        if free is None:
            free = as_written_is_secret_free(value, plain)
            if isinstance(value, str):
                judged[value, plain] = free
        masked[key] = value if free else SENSITIVE
    return masked


def live_value(remote: RemoteSession | None) -> dict[str, Any] | None:
    if remote is None:
        return None
    return {
        "sessionId": remote.session_id,
        "status": remote.status,
        "label": remote.label,
        "visibility": remote.visibility,
        "agent": remote.default_agent,
        "tags": [t for t in remote.tags if not t.startswith(MARKER_PREFIX)],
        "skills": [dict(s) for s in remote.skills],
        "workflowMode": remote.workflow_mode,
        "loopStatus": remote.loop_status,
        "loopIteration": remote.loop_iteration,
        "participantCount": remote.participant_count,
        "live": remote.live,
        "createdAt": remote.created_at,
    }


def _matches_none(_marker_hash: str) -> bool:
    return False


def live_index(
    project: str,
    desired: Sequence[DesiredSession],
    observed: Iterable[RemoteSession],
    formerly: Collection[str] = (),
) -> dict[str, RemoteSession]:
    """Declared name -> the managed session the plan keeps for it (not archived-like
    when one exists, else the newest). Owned as the plan owns them: renamed sessions
    under their declared name, and ``formerly`` (the Project's ``previously``) the
    project's own."""
    hashes = {d.name: d for d in desired}
    index: dict[str, RemoteSession] = {}
    owned = managed_by_name(project, observed, renames(desired), formerly=formerly)
    for name, entries in owned.items():
        active = [m for m in entries if not m.remote.archived_like]
        if active:
            declared = hashes.get(name)
            kept = choose_kept(active, declared.matches if declared else _matches_none)
            index[name] = kept.remote
        else:
            index[name] = entries[-1].remote
    return index


def _fields(action: Action) -> list[str]:
    if action.kind == "create":
        return sorted(k for k in (action.body or {}) if k != "metadata") + (
            ["metadata"] if "metadata" in (action.body or {}) else []
        )
    return [c.field for c in action.changes]


def change_value(action: Action | None) -> dict[str, Any] | None:
    if action is None:
        return None
    return {"kind": action.kind, "fields": _fields(action), "reason": action.reason}


def session_actions(plan: Plan) -> dict[str, Action]:
    """Each name's action: the one on the session kept (an archive of a duplicate only
    when it is the name's sole action)."""
    found: dict[str, Action] = {}
    for action in plan.actions:
        first = found.get(action.name)
        if first is None or beside_the_kept(first.reason):
            found[action.name] = action
    return found


def _tags(action: Action, by_id: Mapping[str, RemoteSession]) -> list[str]:
    remote = by_id.get(action.session_id or "")
    if remote is not None and action.kind != "create":
        tags: Iterable[Any] = remote.tags
    else:
        tags = (action.body or {}).get("tags", ())
    return [t for t in tags if isinstance(t, str) and not t.startswith(MARKER_PREFIX)]


def plan_value(plan: Plan, observed: Iterable[RemoteSession]) -> dict[str, Any]:
    by_id = {r.session_id: r for r in observed}
    lists: dict[str, list[dict[str, Any]]] = {name: [] for name in PLAN_LISTS.values()}
    for action in plan.actions:
        lists[PLAN_LISTS[action.kind]].append(
            {
                "name": action.name,
                "set": action.set_name,
                "sessionId": action.session_id,
                "reason": action.reason,
                "fields": _fields(action),
                "tags": _tags(action, by_id),
            }
        )
    counts: dict[str, int] = {name: len(items) for name, items in lists.items()}
    counts["total"] = len(plan.actions)
    return {**lists, "counts": counts}
