"""Whether a session whose marker hash differs must be replaced, and why: a ``Replacement``.

The marker hash covers the meaning of the create-only fields (``fields.meaning``), so a
differing hash says the declaration changed, not that the session must go: spelling out
a default, or a marker written before meanings were hashed, differs in hash only. This
module compares by meaning, field by field, reading the single-session GET
(``details``):

- When the session records the declared form it was created from
  (``metadata.reconciler.declared``, see ``planner.body``), both declared forms are
  reduced to their meaning and compared with deepdiff; every changed path is named
  (``env.GITHUB_TOKEN``, ``loop.maxIterations``, ``repos[1].branch``). A literal ``env``
  value is never recorded: whether it changed is told by re-hashing the record with
  today's literal values (equal hash: unchanged).
- Otherwise, and for fields too large to have been recorded (then proven unchanged by
  re-hashing the record with today's values of them, or the change is in one of
  them), the hub's report is compared with the declaration as the hub would hold it
  (defaults filled in): the
  create-only fields the GET reports (``fields.REPORTED_CREATE_ONLY``; secret ones by key
  only). The fields it does not report are proven unchanged when re-hashing the report
  with today's declared values of those fields gives the marker's hash (a session
  exported and adopted, or created by an older version, as declared today); when that
  fails, the replacement says what it compared and why it cannot say more.

Values of secret fields (``env``) are never shown: the hub's are never read and the
manifest's may be secret.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.apifacts import LOOP_FIELDS, LOOP_FLAG_DEFAULTS
from reconciler.errors import SafetyError, SafetyViolation
from reconciler.fields import (
    CREATE_ONLY_FIELDS,
    REPORTED_CREATE_ONLY,
    held_default,
    meaning,
    normalise,
    reported,
    spec_field,
)
from reconciler.manifest.envref import as_written_is_secret_free, holds_reference, ref_strings
from reconciler.model import (
    CREATE_ONLY_DIFFERS,
    DesiredSession,
    FieldChange,
    canonical_json,
    create_only_hash,
    legacy_create_only_hash,
)
from reconciler.planner.applied import ADOPTED_TAG
from reconciler.planner.body import declared_form, plain
from reconciler.planner.declared import DeclaredRecord, read_record
from reconciler.planner.reported import reported_loop, reported_spec

__all__ = [
    "HIDDEN_FIELDS",
    "Replacement",
    "create_only_changes",
    "create_only_differences",
    "create_only_violation",
    "record_disagreements",
    "refuse_create_only_differences",
    "trusted_record",
]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

# Create-only fields the single-session GET does not report, and the secret values.
HIDDEN_FIELDS: tuple[str, ...] = (
    *(f for f in CREATE_ONLY_FIELDS if f not in REPORTED_CREATE_ONLY),
    *(f"{f} values" for f in CREATE_ONLY_FIELDS if spec_field(f).secret),
)


@dataclass(frozen=True)
class Replacement:
    """The create-only comparison of one managed session with its declaration.

    ``changes``: per field (nested paths named) the old and new value, masked where
    secret. ``compared``: what the declaration was compared with. ``unexplained``: when
    the hashes say the declaration changed but no change can be named, why not (then
    the session is still replaced: the difference is in what could not be compared).
    ``needed`` is False when the two mean the same: no replacement.
    """

    changes: tuple[FieldChange, ...] = ()
    compared: str = ""
    unexplained: str = ""

    @property
    def needed(self) -> bool:
        return bool(self.changes or self.unexplained)

    @property
    def fields(self) -> str:
        """The changed paths, comma-separated; or what could not be said."""
        if self.changes:
            return ", ".join(c.field for c in self.changes)
        return self.unexplained


def _project(remote: Any, desired: Any) -> Any:
    """``remote`` cut down to the keys ``desired`` names, recursively.

    The hub fills in derived repository fields (ids, URLs) that the manifest never
    wrote; those are not differences the user made.
    """
    if isinstance(remote, Mapping) and isinstance(desired, Mapping):
        return {k: _project(remote[k], desired[k]) for k in desired if k in remote}
    if isinstance(remote, list) and isinstance(desired, list) and len(remote) == len(desired):
        return [_project(r, d) for r, d in zip(remote, desired, strict=True)]
    return remote


def _differs(before: Any, after: Any) -> bool:
    return canonical_json(before) != canonical_json(after)


def _path_name(path: list[Any]) -> str:
    """``['loop', 'maxIterations']`` -> ``loop.maxIterations``; ``repos[1]``; odd keys quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:  # quoted and ASCII-escaped: a key never moves a terminal's cursor
            out += f"[{json.dumps(str(part))}]"
    return out


def _present(value: Any) -> Any:
    from deepdiff.helper import notpresent

    return None if value is notpresent else value


def _secret_changes(name: str, before: Any, after: Any) -> list[FieldChange]:
    """A secret map's changes: keys added and removed, and the keys whose declared
    value changed, never a value. ``None`` on both sides is a literal value (never
    recorded): not comparable here."""
    was = before if isinstance(before, Mapping) else {}
    now = after if isinstance(after, Mapping) else {}
    changes: list[FieldChange] = []
    added, removed = sorted(now.keys() - was.keys()), sorted(was.keys() - now.keys())
    if added or removed:
        changes.append(
            FieldChange(name, added=tuple(added), removed=tuple(removed), sensitive=True)
        )
    changes += [
        FieldChange(_path_name([name, key]), sensitive=True)
        for key in sorted(was.keys() & now.keys())
        if was[key] != now[key]
    ]
    return changes


def _declared_changes(name: str, before: Any, after: Any) -> list[FieldChange]:
    """The changed paths between two meanings of one create-only field."""
    if spec_field(name).secret:
        return _secret_changes(name, before, after)
    from deepdiff import DeepDiff  # only a plan that replaces explains it: loaded then

    diff = DeepDiff({name: before}, {name: after}, view="tree", verbose_level=2)
    found: list[tuple[str, FieldChange]] = []
    for levels in diff.values():
        for level in levels:
            path = level.path(output_format="list")
            label = _path_name(path)
            change = FieldChange(label, before=_present(level.t1), after=_present(level.t2))
            found.append((label, change))
    return [change for _, change in sorted(found, key=lambda item: item[0])]


def _literal_keys(before: Any, after: Any) -> list[str]:
    if not (isinstance(before, Mapping) and isinstance(after, Mapping)):
        return []
    return sorted(k for k in before.keys() & after.keys() if before[k] is None and after[k] is None)


def _hashes_to(form: Mapping[str, Any], old_hash: str) -> bool:
    return old_hash in (create_only_hash(form), legacy_create_only_hash(form))


def _with_literals(
    declared: Mapping[str, Any], spec: Mapping[str, Any], plain_env: Collection[str]
) -> dict[str, Any]:
    """The recorded form with today's literal secret values where it recorded None (or,
    an older version, a value written literally in part: see ``_legacy_changes``)."""
    out: dict[str, Any] = plain(declared)
    for name in CREATE_ONLY_FIELDS:
        was, now = out.get(name), spec.get(name)
        if spec_field(name).secret and isinstance(was, dict) and isinstance(now, Mapping):
            out[name] = {
                k: now.get(k) if not as_written_is_secret_free(v, plain_env) else v
                for k, v in was.items()
            }
    return out


def _legacy_changes(
    declared: Mapping[str, Any], spec: Mapping[str, Any], plain_env: Collection[str]
) -> tuple[set[str], list[FieldChange]]:
    """The secret values an older version recorded as written though they are written
    literally in part (text beside a reference, a default): their paths, and those of
    them that today's declaration writes otherwise (the record holds the old value, so
    each is compared as written, and named by key)."""
    paths: set[str] = set()
    changes = []
    for name in CREATE_ONLY_FIELDS:
        was, now = declared.get(name), spec.get(name)
        if not (spec_field(name).secret and isinstance(was, Mapping)):
            continue
        now = now if isinstance(now, Mapping) else {}
        for key, value in was.items():
            if isinstance(value, str) and not as_written_is_secret_free(value, plain_env):
                path = _path_name([name, key])
                paths.add(path)
                if plain(now.get(key)) != value:
                    changes.append(FieldChange(path, sensitive=True))
    return paths, changes


def _from_record(
    desired: DesiredSession,
    detail: Mapping[str, Any],
    record: DeclaredRecord,
    ignored: set[str],
    old_hash: str,
) -> Replacement:
    """Changes between the meanings of the recorded declared form and ``desired``'s."""
    # The record read as a declaration is: a default an older version recorded is a
    # literal value now (None), compared by re-hashing as every literal is.
    was = _held(declared_form(record.declared, desired.plain_env))
    now = _held(declared_form(desired.spec, desired.plain_env))
    changes: list[FieldChange] = []
    literal: list[FieldChange] = []
    unrecorded = [f for f in record.unrecorded if f not in ignored]
    for name in CREATE_ONLY_FIELDS:
        if name in ignored or name in record.unrecorded:
            continue
        if spec_field(name).secret:
            literal += [
                FieldChange(_path_name([name, key]), sensitive=True)
                for key in _literal_keys(was.get(name), now.get(name))
            ]
        found = _declared_changes(name, was.get(name), now.get(name))
        if name == "loop" and "loop" in detail:  # the loop state was read too
            found = _with_hub_values(found, reported_loop(detail))
        changes += found
    if unrecorded:
        # Resolved: the hub holds what it got; this names fields only, never decides
        # (the re-hash below, over the fields as written, does).
        changes += _detail_changes(desired, detail, tuple(unrecorded), resolved=True)
    legacy, legacy_changes = _legacy_changes(record.declared, desired.spec, desired.plain_env)
    # Compared as written: not a literal the re-hash stands for, nor the value read
    # through today's rules (None) against today's.
    literal = [c for c in literal if c.field not in legacy]
    changes = [c for c in changes if c.field not in legacy] + legacy_changes
    compared = "the declaration the session recorded at creation"
    rehashed = _with_literals(record.declared, desired.spec, desired.plain_env)
    if not changes and (literal or unrecorded):
        # Every recorded field agrees. What the record cannot show, values written
        # literally (recorded as null) and fields too large to record (compared as the
        # hub reports them: env by key, some not at all), is re-hashed with today's
        # values: the marker's hash says nothing changed; otherwise one of them did.
        # (A marker hashed as written, before hashes by meaning, does not match a
        # respelled unrecorded field, a list reordered: that replaces the session.)
        today = {f: plain(desired.spec[f]) for f in unrecorded if f in desired.spec}
        if _hashes_to({**rehashed, **today}, old_hash):
            return Replacement(compared=compared)
        hidden = [f for f in unrecorded if f not in REPORTED_CREATE_ONLY or spec_field(f).secret]
        # Those whose values no one shows (a reported field was compared, by value).
        suspects = [c.field for c in literal] + hidden or unrecorded
        if len(suspects) == 1 and literal:  # the one literal: it changed
            changes = literal
        elif suspects:
            return Replacement(
                compared=compared,
                unexplained=(
                    "the declaration's hash differs from the session's and every field "
                    "its record holds agrees; neither the record nor the hub's report "
                    f"shows the values of {', '.join(suspects)}, so the change is in one "
                    "of them"
                ),
            )
    return Replacement(tuple(changes), compared=compared)


def _with_hub_values(changes: list[FieldChange], hub: Mapping[str, Any]) -> list[FieldChange]:
    """``changes`` of loop settings with a setting the record left out shown as the
    value the hub holds (its loop state, ``hub``): ``false -> true``, not ``(unset) ->
    true``. (A flag written as the hub holds it by default is no change at all: the
    meaning leaves it out, ``fields.normalise``.)"""
    shown = []
    for change in changes:
        key = change.field.removeprefix("loop.")
        if change.before is None and key in hub:
            change = dataclasses.replace(change, before=hub[key])
        shown.append(change)
    return shown


def _hub_value(detail: Mapping[str, Any], name: str) -> Any:
    value = reported(detail, name)
    if name == "metadata" and isinstance(value, Mapping):
        value = {k: v for k, v in value.items() if k != "reconciler"}  # the tool's own
    return normalise(name, plain(value))


def _held(form: Mapping[str, Any]) -> dict[str, Any]:
    """``form``'s meaning with the defaults the hub fills in written out."""
    held = meaning(form)
    for name in CREATE_ONLY_FIELDS:
        if name not in held:
            default = held_default(name, held)
            if default not in (None, {}, []):  # an empty default shows as nothing
                held[name] = default
    return held


def _detail_changes(
    desired: DesiredSession,
    detail: Mapping[str, Any],
    fields: tuple[str, ...],
    *,
    resolved: bool = False,
) -> list[FieldChange]:
    """The hub's report against ``desired`` as the hub would hold it, for ``fields``.

    References are compared as written, as the marker's hash covers them, where the
    comparison decides (a session with no record): a new value of a variable never
    replaces a session. ``resolved`` (plain variables resolved, as the hub got them)
    where it only names what changed (a record's unrecorded fields: the re-hash
    decides), so a reference never reads as a change beside the real one."""
    form = desired.resolved if resolved else desired.spec
    return _report_changes(_held(declared_form(form, desired.plain_env)), detail, fields)


def _report_changes(
    now: Mapping[str, Any], detail: Mapping[str, Any], fields: tuple[str, ...]
) -> list[FieldChange]:
    """The hub's report against ``now`` (a declared form's meaning, defaults written
    out), for ``fields``."""
    changes: list[FieldChange] = []
    for name in fields:
        if name not in REPORTED_CREATE_ONLY:
            continue
        after = now.get(name)
        before = _hub_value(detail, name)
        if before is None:  # not in the report: the hub holds what it fills in
            before = held_default(name, now)
        if spec_field(name).secret:
            wanted = set(after or {})
            have = set(before.keys()) if isinstance(before, Mapping) else set()
            if wanted != have:
                changes.append(
                    FieldChange(
                        name,
                        added=tuple(sorted(wanted - have)),
                        removed=tuple(sorted(have - wanted)),
                        sensitive=True,
                    )
                )
            continue
        if after is not None and name != "metadata":
            # Cut to what the declaration names: the hub adds derived repository fields
            # (ids, URLs). Metadata is the caller's own, whole: a key the declaration
            # lacks is a difference.
            before = _project(before, after)
        if _differs(before, after):
            changes.append(FieldChange(name, before=before, after=after))
    return changes


def _loop_changes(desired: DesiredSession, detail: Mapping[str, Any]) -> list[FieldChange]:
    """The loop settings that both the report (its loop state merged in: see
    ``planner.reported.with_loop_state``) and the declaration give, where they differ;
    a flag the declaration leaves out is off. Another setting only one side gives is not
    compared: the hub need not echo every setting."""
    now = _held(declared_form(desired.spec, desired.plain_env))
    return _loop_report_changes(now.get("loop"), detail)


def _loop_report_changes(now: Any, detail: Mapping[str, Any]) -> list[FieldChange]:
    """``_loop_changes`` for a declared loop's meaning ``now``."""
    hub = reported_loop(detail)
    declared = now if isinstance(now, Mapping) else {}
    changes = []
    for key in LOOP_FIELDS:
        # A flag left out means off (LOOP_FLAG_DEFAULTS): compared all the same.
        want = declared.get(key, LOOP_FLAG_DEFAULTS.get(key))
        if key in hub and want is not None and _unequal(hub[key], want):
            changes.append(FieldChange(_path_name(["loop", key]), before=hub[key], after=want))
    return changes


def _unequal(reported: Any, declared: Any) -> bool:
    """Values that differ as the hub holds them: ``5`` and ``5.0`` are one number (YAML
    may write either), ``true`` is no number."""
    return isinstance(reported, bool) != isinstance(declared, bool) or reported != declared


def _referring(value: Any) -> bool:
    """Whether ``value`` holds a ``${env:...}`` reference anywhere (its value on the hub
    is whatever the variable held at create: not comparable with the declared form)."""
    return any(holds_reference(text) for _path, text in ref_strings(value))


def record_disagreements(record: DeclaredRecord, detail: Mapping[str, Any]) -> tuple[str, ...]:
    """The create-only fields the hub reports otherwise than the session's record of
    its declaration (``metadata.reconciler``) says: a record the tool wrote agrees
    with the session it created, as PATCH changes none of them, so one that does not was
    written by someone else. Fields holding a reference, and unrecorded ones, are not
    compared; ``env`` by key."""
    held = _held(plain(record.declared))
    fields = tuple(
        name
        for name in REPORTED_CREATE_ONLY
        if name not in record.unrecorded
        and (spec_field(name).secret or not _referring(held.get(name)))
    )
    changes = _report_changes(held, detail, fields)
    return tuple(dict.fromkeys(c.field.split(".")[0] for c in changes))


def trusted_record(detail: Mapping[str, Any]) -> DeclaredRecord | None:
    """The session's record of its declaration, when it agrees with what the hub
    reports (``record_disagreements``); None otherwise: then the hub's report is what
    the session is, whatever its metadata says."""
    if ADOPTED_TAG in (detail.get("tags") or ()):  # adopted: its record is not the tool's
        return None
    record = read_record(detail.get("metadata"))
    if record is None or record_disagreements(record, detail):
        return None
    return record


def _hidden_unchanged(desired: DesiredSession, detail: Mapping[str, Any], old_hash: str) -> bool:
    """True when the report, with today's declared values of what it does not show,
    hashes to ``old_hash``: the marker was made from exactly that (an adopted export)."""
    shown = reported_spec(detail)
    # With the loop state read, the loop settings are reported too.
    visible = (*REPORTED_CREATE_ONLY, "loop") if "loop" in detail else REPORTED_CREATE_ONLY
    form = {k: v for k, v in shown.items() if k in visible}
    for name in CREATE_ONLY_FIELDS:
        if name not in visible and name in desired.spec:
            form[name] = plain(desired.spec[name])
        if spec_field(name).secret and name in desired.spec:
            form[name] = plain(desired.spec[name])
    return _hashes_to(form, old_hash)


def create_only_changes(
    desired: DesiredSession,
    detail: Mapping[str, Any] | None,
    *,
    old_hash: str,
) -> Replacement:
    """The create-only comparison of the session ``detail`` reports with ``desired``.

    From the declared form recorded at create when the session has one (and it belongs
    to ``old_hash``); else from the hub's report. Fields named in ``ignoreChanges`` are
    left out.
    """
    if detail is None:
        return Replacement(
            unexplained="the session's details could not be read, so no field can be named"
        )
    ignored = set(desired.lifecycle.ignore_changes)
    record = trusted_record(detail)
    if record is not None and record.hash in (None, old_hash):
        return _from_record(desired, detail, record, ignored, old_hash)
    fields = tuple(f for f in REPORTED_CREATE_ONLY if f not in ignored)
    changes = tuple(_detail_changes(desired, detail, fields))
    if "loop" in detail and "loop" not in ignored:  # the loop state was read too
        fields += ("loop",)
        changes += tuple(_loop_changes(desired, detail))
    compared = "the hub's report of " + ", ".join(fields) + " (secret values by key only)"
    if changes or _hidden_unchanged(desired, detail, old_hash) or ignored & set(CREATE_ONLY_FIELDS):
        # Nothing visible differs but a create-only field is ignored: the difference
        # is taken to be in it (kept, as ignoreChanges asks).
        return Replacement(changes, compared=compared)
    hidden = [f for f in HIDDEN_FIELDS if f != "loop" or "loop" not in detail]
    return Replacement(
        compared=compared,
        unexplained=(
            f"compared with {compared}, no reported field differs; the session holds no "
            "record of its declaration that the tool wrote (adopted, or made before the "
            "record existed) and the hub does not report "
            + ", ".join(hidden)
            + ", so the change is in one of those"
        ),
    )


def create_only_differences(
    d: DesiredSession, detail: Mapping[str, Any]
) -> tuple[FieldChange, ...]:
    """The create-only fields (nested paths named) where a session not yet managed as
    ``d`` differs from it (``import``, ``adopt``); empty when nothing visible differs.

    Compared with what the hub reports (and the loop settings its loop state gives,
    when ``detail`` carries it: ``planner.reported.with_loop_state``), the declaration
    as this run resolves its references; never with a record of a declaration in the
    session's metadata, which anyone who can create a session can write (a session
    the project manages is its own by its marker; one it adopts is what it runs)."""
    now = _held(declared_form(d.resolved, d.plain_env))
    changes = _report_changes(now, detail, REPORTED_CREATE_ONLY)
    if "loop" in detail:  # the loop state was read too
        changes += _loop_report_changes(now.get("loop"), detail)
    return tuple(changes)


def refuse_create_only_differences(
    d: DesiredSession, detail: Mapping[str, Any], label: str
) -> None:
    """Raise ``SafetyError`` (rule ``createOnlyDiffers``, exit 3) when a session to adopt
    as ``d`` (``import``, ``adopt``) differs from it in a create-only field: adopted, its
    marker would carry the declaration's hash, so no plan would look at those fields
    again (one compares them only when the hash differs). ``label`` names it in the
    refusal."""
    differ = create_only_differences(d, detail)
    if differ:
        raise SafetyError([create_only_violation(label, tuple(c.field for c in differ))])


def create_only_violation(label: str, fields: Sequence[str]) -> SafetyViolation:
    """The refusal of adopting the session ``label`` names, whose create-only ``fields``
    differ from its declaration (``import``, and a plan's ``adopt:`` line)."""
    return SafetyViolation(
        rule=CREATE_ONLY_DIFFERS,
        message=(
            f"the session's create-only fields differ from the manifest's ({', '.join(fields)}): "
            "adopted, it would pass for running what the manifest declares, and no plan would "
            "show that it does not; edit the manifest, or see `import --write`"
        ),
        sessions=(label,),
        overridable=False,
    )
