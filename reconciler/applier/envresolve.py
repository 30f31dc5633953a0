"""``${env:...}`` under ``env`` in the bodies an apply sends, resolved at apply time.

Every body is checked before the first request, so an unset variable stops the whole
apply (exit 65) instead of failing some actions after others already ran. Only names
reach the error; values never leave this module except in the resolved bodies.

Only values under ``env`` (secret: ``fields.SECRET_FIELDS``) are resolved here. A
reference anywhere else names a plain variable, resolved when the plan was made
(``planner.body``); one still there (a plan made while it was unset, a tag or skill
text copied from the hub, a forged plan file) is refused, never resolved: resolving
text the hub or a file supplies could write any variable into a field the whole
organisation reads. ``metadata.reconciler`` is the tool's record of the manifest as
written (references and all): sent as it is. The tool's credential variables are
never resolved at all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from reconciler.errors import EnvNotTextError, ManifestError, TokenCopyError, UnsetEnvError
from reconciler.fields import SECRET_FIELDS
from reconciler.manifest.envref import find_refs, not_text_names, resolve, unset_names
from reconciler.manifest.secrecy import TOKEN_SOURCES, api_tokens, field_references, token_sources
from reconciler.masking import CREDENTIAL_VARIABLES, strings_in
from reconciler.model import Action, DesiredSession, SourceLocation

__all__ = ["resolve_bodies"]


def _check(
    action: Action, body: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[set[str], set[str]]:
    """The names ``body`` needs that are unset, and those whose value is not UTF-8
    text; raises for a reference apply never resolves."""
    where = f"{action.kind} {action.name}"
    credentials = sorted(find_refs(body) & set(CREDENTIAL_VARIABLES))
    if credentials:
        raise ManifestError(
            f"{where}: the plan references {', '.join(credentials)}, a credential of the "
            "tool itself; it is never resolved"
        )
    # Outside env: a name set now was unset (or absent) when the plan was made, or the
    # text came from elsewhere; one unset now is simply missing, as under env.
    outside = field_references(body)
    now_set = sorted(n for n in outside if n in environ)
    if now_set:
        raise ManifestError(
            f"{where}: ${{env:{now_set[0]}}} outside env: such a reference is resolved "
            "when the plan is made, never at apply (declare the variable in plainEnv, set "
            "it, and plan again)"
        )
    secret = {name: body[name] for name in SECRET_FIELDS if name in body}
    return outside | unset_names(secret, environ), not_text_names(secret, environ)


def _token_refs(
    body: Mapping[str, Any], environ: Mapping[str, str], tokens: Sequence[str]
) -> set[str]:
    """The variables under ``env`` whose values, where apply runs, make up part of the
    API token in a value (``secrecy.token_sources``: a copy under another name, or
    pieces put together; each value judged alone)."""
    found: set[str] = set()
    for name in SECRET_FIELDS & body.keys():
        for text in strings_in(body[name]):
            found |= token_sources(text, environ, tokens)
    return found


def resolve_bodies(
    actions: Sequence[Action],
    environ: Mapping[str, str],
    *,
    declared: Mapping[str, DesiredSession] | None = None,
) -> dict[int, dict[str, Any]]:
    """The resolved body of every action that sends one, by plan index.

    Raises ``UnsetEnvError`` naming every unset variable and the actions that need it,
    ``ManifestError`` for a reference this module never resolves, ``TokenCopyError``
    for variables under ``env`` that would send the API token (as they are set here).
    ``declared`` (the sessions the plan was made from, by name, read in this process
    with ``environ``) places an unset variable at its first reference rather than at
    the session (``DesiredSession.unset_at``); a saved plan keeps no such place.
    """
    missing: set[str] = set()
    where: list[str] = []
    not_text: set[str] = set()
    where_not_text: list[str] = []
    for action in actions:
        if action.body is None:
            continue
        names, bad = _check(action, action.body, environ)
        if names:
            missing |= names
            where.append(_place(action, _first_reference(action, names, declared)))
        if bad:
            not_text |= bad
            where_not_text.append(_place(action))
    if missing:
        raise UnsetEnvError(missing, where=where)
    if not_text:  # every one, and what needs it, before any request (not the first)
        raise EnvNotTextError(not_text, where=where_not_text)
    tokens = api_tokens(environ)
    bodies: dict[int, dict[str, Any]] = {}
    sending: set[str] = set()
    where_sending: list[str] = []
    for index, action in enumerate(actions):
        if action.body is None:
            continue
        bodies[index] = _resolved(action.body, environ)
        if tokens:  # set where apply runs, maybe not where the plan was made
            refs = _token_refs(action.body, environ, tokens)
            if refs:
                sending |= refs
                where_sending.append(_place(action))
    if sending:
        raise TokenCopyError(sending, sources=TOKEN_SOURCES, where=where_sending)
    return bodies


def _place(action: Action, at: SourceLocation | None = None) -> str:
    """The action, and ``at``, else where its session is declared (a saved plan keeps
    it)."""
    at = at if at is not None else action.source
    return f"{action.kind} {action.name}" + (f" at {at}" if at else "")


def _first_reference(
    action: Action, names: Collection[str], declared: Mapping[str, DesiredSession] | None
) -> SourceLocation | None:
    """Where the declaration of ``action``'s session first references one of ``names``
    (unset): in the first field, in the spec's order, whose unset references include
    one."""
    desired = declared.get(action.name) if declared is not None else None
    if desired is None:
        return None
    for field, at in desired.unset_at.items():
        if not desired.unset_refs.get(field, frozenset()).isdisjoint(names):
            return at
    return None


def _resolved(body: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    out = dict(body)
    for name in SECRET_FIELDS & out.keys():
        out[name] = resolve(out[name], environ)
    return out
