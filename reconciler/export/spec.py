"""Session details -> manifest specs: the pure half of `reconciler export`.

Session details in (``GET /hub/session/{id}`` plus the loop state), ``ExportedSession``
values out. Secrets never leave: every ``env`` value becomes a ``${env:NAME}`` reference,
and the value itself is dropped here, before anything is rendered.

A session that records the declared form it was created from (``metadata.reconciler``,
see ``planner.body``) is written back as declared: its create-only fields and its
lifecycle come from the record, so planning the exported files changes nothing. Other
sessions are written from what the hub reports. With a Project's ``defaults``, a field
whose value the defaults already give is left out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.apifacts import SESSION_NAME_MAX
from reconciler.fields import FIELD_ORDER, FIELDS, MUTABLE_FIELDS, STATUS_CHANGE, spec_field
from reconciler.manifest.envref import as_written_is_secret_free, whole_value_variable
from reconciler.model import (
    MARKER_PREFIX,
    Marker,
    canonical_json,
    create_only_hash,
    skill_identity,
)
from reconciler.planner.applied import (
    ADOPTED_TAG,
    is_applied_tag,
    is_protected_tag,
    recorded_protection,
    with_adopted_tag,
)
from reconciler.planner.body import lifecycle_record, plain
from reconciler.planner.declared import (
    DeclaredRecord,
    read_created_as,
    read_record,
    read_set_name,
)
from reconciler.planner.replacement import record_disagreements, trusted_record
from reconciler.planner.reported import ENV_KEY_RE, reported_fields

__all__ = [
    "ENV_KEY_RE",
    "ExportedSession",
    "adopt_tags",
    "build_exports",
    "export_spec",
    "slugify",
    "without_defaults",
]

# A field the defaults give and the session lacks is written as its empty value
# (a manifest cannot leave such a field out: it would inherit the default).
_EMPTY: dict[str, Any] = {f.name: f.empty for f in FIELDS if f.empty is not None}


@dataclass(frozen=True)
class ExportedSession:
    """One existing session as a manifest.

    ``spec`` is what the manifest declares (env values already references);
    ``dropped_env_keys`` the env keys that cannot be a manifest key; ``literal_env_keys``
    those declared with a literal value (never recorded, exported as ``${env:KEY}``).
    ``set_name`` is the SessionSet that created it (its lineage says so).
    ``reserved_tags`` are tags with the ``reconciler:`` prefix that are neither markers
    nor last-applied records (a
    manifest cannot declare them; they stay on the session). ``inherited`` names fields
    the Project's defaults give that the session does not have. ``tags`` is the
    session's full tag list as observed (markers included), which adoption extends.
    """

    name: str
    session_id: str
    spec: Mapping[str, Any]
    tags: tuple[str, ...] = ()
    dropped_env_keys: tuple[str, ...] = ()
    markers: tuple[Marker, ...] = field(default=())
    lifecycle: Mapping[str, Any] | None = None
    literal_env_keys: tuple[str, ...] = ()
    reserved_tags: tuple[str, ...] = ()
    inherited: tuple[str, ...] = ()
    set_name: str | None = None
    # The manifest's ``adopt:``: the session's id while the project does not manage it
    # (no marker of the project), so that the next apply, whoever runs it, adopts this
    # session instead of creating a copy of it.
    adopt: str | None = None
    # Paused when read: written with lifecycle.ignoreChanges [status], to stay paused.
    found_paused: bool = False
    # Skill ids the hub holds more than once: written once (``_skills_once``).
    repeated_skills: tuple[str, ...] = ()
    # The name this project created it as (its lineage in metadata), whatever its tags.
    created_as: str | None = None
    # The create-only fields its record of a declaration (metadata.reconciler) says
    # otherwise than the hub reports: a record not the tool's, so not written back.
    record_disagrees: tuple[str, ...] = ()

    @property
    def env_keys(self) -> tuple[str, ...]:
        env = self.spec.get("env")
        return tuple(env) if isinstance(env, Mapping) else ()

    @property
    def spec_hash(self) -> str:
        return create_only_hash(self.spec)

    def owned_by(self, project: str) -> bool:
        return any(m.project == project for m in self.markers)

    def foreign_markers(self, project: str) -> tuple[Marker, ...]:
        return tuple(m for m in self.markers if m.project != project)


# Latin letters that Unicode does not decompose into a base letter and an accent,
# written as their usual ASCII spelling (lower case: they are looked up after lower()).
_LATIN_SPELLED = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "œ": "oe",
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ħ": "h",
        "ı": "i",
        "ŧ": "t",
        "ŋ": "ng",
    }
)


def slugify(text: str, *, max_len: int = SESSION_NAME_MAX) -> str:
    """A manifest name from free text: ``[a-z0-9][a-z0-9-]*``, at most ``max_len`` long.

    Letters lose their accents first (``Ünïcode`` -> ``unicode``, not ``n-code``), and
    the Latin letters that have none to lose take their usual spelling (``Straße`` ->
    ``strasse``, ``Łódź`` -> ``lodz``); any other character outside ``a-z0-9``
    separates words.
    """
    bare = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    slug = re.sub(r"[^a-z0-9]+", "-", bare.lower().translate(_LATIN_SPELLED)).strip("-")
    return slug[:max_len].rstrip("-")


def _unique(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[: SESSION_NAME_MAX - len(suffix)].rstrip("-") + suffix
        if candidate not in taken:
            return candidate
        n += 1


def _is_reserved(tag: str) -> bool:
    return tag.startswith(MARKER_PREFIX)


def _reported(
    detail: Mapping[str, Any], loop_state: Mapping[str, Any] | None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Every field as the hub reports it (env values not read), and the dropped env keys."""
    return reported_fields(detail, loop_state)


def _as_declared(
    reported: Mapping[str, Any], record: DeclaredRecord, plain_env: Collection[str] | None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``reported`` with its create-only fields as the record declares them.

    Returns the spec and the env keys declared with a value written literally, in full
    or in part (recorded as None; or, by an older version, recorded as written with text
    beside its reference or a default but to a variable of the folder's ``plain_env``):
    each is written as a bare reference (``envref.whole_value_variable``). What this
    version recorded is written as it holds it (a default it kept is a plain variable's).
    """
    spec: dict[str, Any] = {}
    literal: list[str] = []
    for key in FIELD_ORDER:
        if not spec_field(key).create_only:
            if key in reported:
                spec[key] = reported[key]
        elif key in record.declared:
            value = plain(record.declared[key])
            if spec_field(key).secret and isinstance(value, dict):
                # A record this version wrote kept only what may be kept; an older one's
                # is judged now (with the folder's plainEnv when it has a Project).
                literal = [
                    k
                    for k, v in value.items()
                    if v is None
                    or (
                        not record.references_only
                        and not as_written_is_secret_free(v, plain_env or ())
                    )
                ]
                value = {
                    k: v if k not in literal else f"${{env:{whole_value_variable(k, v)}}}"
                    for k, v in value.items()
                }
            spec[key] = value
        elif key in record.unrecorded and key in reported:
            spec[key] = reported[key]
    return spec, tuple(literal)


def export_spec(
    detail: Mapping[str, Any], loop_state: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]:
    """The manifest ``spec`` of one session detail, from what the hub reports.

    Returns ``(spec, env_keys, dropped_env_keys)``. Fields the hub does not report
    (``savedSkillIds``, ``skillBucketIds``) cannot be exported this way;
    ``metadata.reconciler`` and ``reconciler:`` tags are the tool's own and are left out.
    """
    spec, dropped = _reported(detail, loop_state)
    return spec, tuple(spec.get("env", {})), dropped


def without_defaults(
    spec: Mapping[str, Any], defaults: Mapping[str, Any]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``spec`` written against a Project's ``defaults``: what loads back as ``spec``.

    A field equal to its default is left out (it is inherited); a field the defaults give
    and ``spec`` lacks is written empty where it can be. The fields that cannot be (a
    string such as ``agent``) are returned: the manifest inherits their default.
    """
    out = dict(spec)
    inherited: list[str] = []
    for key, default in defaults.items():
        if key not in out:
            if key in _EMPTY:
                out[key] = _EMPTY[key]
            else:
                inherited.append(key)
        elif canonical_json(plain(out[key])) == canonical_json(plain(default)):
            del out[key]
    ordered = {k: out[k] for k in FIELD_ORDER if k in out}
    return ordered, tuple(inherited)


def _ignoring(lifecycle: dict[str, Any] | None, fields: Sequence[str]) -> dict[str, Any] | None:
    """``lifecycle`` with ``fields`` added to ``ignoreChanges``.

    A mutable field the defaults give and the session lacks cannot be left out of the
    manifest; ignoring its drift keeps the session as it is.
    """
    if not fields:
        return lifecycle
    out = dict(lifecycle or {})
    out["ignoreChanges"] = list(dict.fromkeys([*out.get("ignoreChanges", []), *fields]))
    return out


def _with_protection(lifecycle: dict[str, Any] | None, protected: bool) -> dict[str, Any] | None:
    """``lifecycle`` saying ``preventDestroy`` as ``protected`` says (left out when false)."""
    out = {k: v for k, v in (lifecycle or {}).items() if k != "preventDestroy"}
    return {"preventDestroy": True, **out} if protected else (out or None)


def _disagreements(detail: Mapping[str, Any]) -> tuple[str, ...]:
    record = read_record(detail.get("metadata"))
    return record_disagreements(record, detail) if record is not None else ()


def _trusted_record(detail: Mapping[str, Any], project: str) -> DeclaredRecord | None:
    """The declared record of a session this project manages (its marker says so, and
    its hash is the record's), unless it disagrees with what the hub reports
    (``planner.replacement.trusted_record``). A session the project does not manage is
    written as the hub reports it: anyone who can create a session can write a record,
    references hiding what it runs included."""
    record = trusted_record(detail)
    if record is None:
        return None
    own = [
        marker
        for tag in detail.get("tags") or []
        if isinstance(tag, str)
        and (marker := Marker.parse(tag)) is not None
        and marker.project == project
    ]
    if not own or any(marker.hash != record.hash for marker in own):
        return None
    return record


def _name_sessions(
    project: str,
    details: Sequence[Mapping[str, Any]],
    taken: Iterable[str],
    forgotten: Iterable[str] = (),
    declared: Iterable[str] = (),
    adopted: Mapping[str, str] | None = None,
) -> list[str]:
    adopted = adopted or {}
    used = set(taken)
    names: list[str | None] = []
    for detail in details:
        own = [
            m
            for m in (Marker.parse(t) for t in detail.get("tags") or [] if isinstance(t, str))
            if m is not None and m.project == project
        ]
        name = _unique(own[0].name, used) if own else adopted.get(str(detail["sessionId"]))
        if name is not None:
            used.add(name)
        names.append(name)
    # After the marked and adopted ones keep theirs: only the others avoid these.
    used |= set(forgotten) | set(declared)
    out: list[str] = []
    for name, detail in zip(names, details, strict=True):
        if name is None:
            source = next(
                (
                    s
                    for s in (detail.get("label"), detail.get("task"))
                    if isinstance(s, str) and slugify(s)
                ),
                None,
            )
            base = slugify(source) if source else slugify(f"session-{detail['sessionId']}")
            name = _unique(base or "session", used)
            used.add(name)
        out.append(name)
    return out


def build_exports(
    project: str,
    details: Sequence[Mapping[str, Any]],
    loop_states: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    taken: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
    plain_env: Collection[str] | None = None,
    forgotten: Iterable[str] = (),
    declared: Iterable[str] = (),
    adopted: Mapping[str, str] | None = None,
) -> tuple[ExportedSession, ...]:
    """One ``ExportedSession`` per detail, named and de-duplicated.

    A session already carrying this project's marker keeps the marker's name, one a
    declaration adopts (``adopted``: id -> the declared name) that name; the others are
    named from their label (else their task, else their id), slugified and made unique
    against ``taken`` and each other, never after a name the folder declares already
    (``declared``, ``forgotten`` included: a name declared let go is still declared).
    ``defaults`` are the Project's.
    """
    loop_states = loop_states or {}
    exports: list[ExportedSession] = []
    names = _name_sessions(project, details, taken, forgotten, declared, adopted)
    for name, detail in zip(names, details, strict=True):
        session_id = str(detail["sessionId"])
        spec, dropped = _reported(detail, loop_states.get(session_id))
        record = _trusted_record(detail, project)
        literal: tuple[str, ...] = ()
        lifecycle: dict[str, Any] | None = None
        if record is not None:
            spec, literal = _as_declared(spec, record, plain_env)
            dropped = ()
            if record.lifecycle is not None:
                lifecycle = lifecycle_record(record.lifecycle)
        spec, repeated = _skills_once(spec)
        spec, inherited = without_defaults(spec, defaults or {})
        lifecycle = _ignoring(lifecycle, [k for k in inherited if k in MUTABLE_FIELDS])
        if detail.get("status") == "paused":  # found paused: declared to stay so
            lifecycle = _ignoring(lifecycle, [STATUS_CHANGE])
        tags = tuple(t for t in detail.get("tags") or [] if isinstance(t, str))
        # The protection the last apply wrote (the tag, else the record's bit) wins over
        # the one declared at create; a session written before either keeps that one.
        protected = recorded_protection(tags, (project,))
        if protected is not None:
            lifecycle = _with_protection(lifecycle, protected)
        markers = tuple(m for m in (Marker.parse(t) for t in tags) if m is not None)
        reserved = tuple(
            t
            for t in tags
            if _is_reserved(t)
            and Marker.parse(t) is None
            and not is_applied_tag(t)
            and not is_protected_tag(t)
            and t != ADOPTED_TAG
        )
        exports.append(
            ExportedSession(
                name=name,
                session_id=session_id,
                spec=spec,
                tags=tags,
                dropped_env_keys=dropped,
                markers=markers,
                lifecycle=lifecycle,
                literal_env_keys=literal,
                reserved_tags=reserved,
                inherited=inherited,
                set_name=read_set_name(detail.get("metadata")),
                created_as=read_created_as(detail.get("metadata"), project),
                record_disagrees=_disagreements(detail),
                adopt=None if any(m.project == project for m in markers) else session_id,
                found_paused=detail.get("status") == "paused",
                repeated_skills=repeated,
            )
        )
    return tuple(exports)


def _skills_once(spec: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``spec`` with each skill the hub holds more than once (the same
    ``model.skill_identity``) written once, its first copy kept: a manifest may declare
    a skill once only, and as skills compare as a set the next plan changes nothing.
    Returns the spec and the skill ids written once."""
    skills = spec.get("skills")
    if not isinstance(skills, list):
        return spec, ()
    seen: set[tuple[Any, ...]] = set()
    kept, repeated = [], []
    for skill in skills:
        key = skill_identity(skill)
        if key is not None and key in seen:
            repeated.append(str(key[0]))
            continue
        if key is not None:
            seen.add(key)
        kept.append(skill)
    if not repeated:
        return spec, ()
    return {**spec, "skills": kept}, tuple(dict.fromkeys(repeated))


def adopt_tags(exported: ExportedSession, project: str, marker: Marker) -> list[str]:
    """The PATCH tag set that adopts a session: its tags, minus this project's old
    markers, plus ``marker``."""
    kept = [
        t
        for t in exported.tags
        if not ((m := Marker.parse(t)) is not None and m.project == project) and t != marker.tag
    ]
    return with_adopted_tag([*dict.fromkeys(kept), marker.tag])
