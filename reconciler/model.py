"""The values that flow through the tool: desired sessions, observed sessions, plans.

Frozen dataclasses, no I/O. Data flows one way:

    files -> manifest -> Project + DesiredSession ;  client.list -> RemoteSession
    planner(desired, observed) -> Plan -> render | applier -> ApplyReport -> render
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, get_args

from reconciler import jsontext
from reconciler.apifacts import (
    PROJECT_NAME,
    REPO_FIELDS,
    SESSION_NAME,
    SKILL_FIELDS,
    SKILL_REQUIRED_FIELDS,
)
from reconciler.fields import (
    CREATE_ONLY_FIELDS,
    FIELDS,
    MUTABLE_FIELDS,
    meaning,
    normalise,
    spec_field,
)

__all__ = [
    "ARCHIVED_LIKE",
    "CREATE_ONLY_FIELDS",
    "LIVE_LOOP_STATUSES",
    "MARKER_PREFIX",
    "MUTABLE_FIELDS",
    "Action",
    "ActionKind",
    "ActionOutcome",
    "ActionResult",
    "ApplyReport",
    "DesiredSession",
    "FieldChange",
    "Lifecycle",
    "Marker",
    "Plan",
    "Policy",
    "PolicyFinding",
    "Project",
    "RefusedAdoption",
    "PruneMode",
    "REPO_FIELDS",
    "SESSION_STATES",
    "SKILL_FIELDS",
    "RemoteSession",
    "SessionState",
    "SourceLocation",
    "TOKEN_ORG",
    "canonical_json",
    "comparable",
    "create_only_hash",
    "legacy_create_only_hash",
    "declared_skill",
    "keep_order",
    "normalise_visibility",
    "org_label",
    "plain",
    "skill_identity",
]

MARKER_PREFIX = "reconciler:"


def declared_skill(skill: Mapping[str, Any]) -> dict[str, str]:
    """The part of a skill a manifest can declare: SKILL_FIELDS with a string value.

    Whatever else the service sends in a skill (``content``, ``origin``...) and null
    optional values are left out, so they can never show as a difference.
    """
    return {k: v for k in SKILL_FIELDS if isinstance(v := skill.get(k), str)}


def skill_identity(skill: Any) -> tuple[Any, ...] | None:
    """What makes two skills the same skill (``SKILL_REQUIRED_FIELDS``: its id and repo,
    whatever else either says), or None for an item that is no skill."""
    if not isinstance(skill, Mapping):
        return None
    return tuple(skill.get(k) for k in SKILL_REQUIRED_FIELDS)


def comparable(name: str, value: Any) -> Any:
    """A value of mutable field ``name`` as the planner compares it (and digests it):
    normalised (``fields.normalise``); a set without the tool's own ``reconciler:``
    tags; skills as a sorted set of what a manifest can declare of each."""
    compare = spec_field(name).compare
    if compare == "set":
        kept = [t for t in value or () if isinstance(t, str) and not t.startswith(MARKER_PREFIX)]
        return normalise(name, kept) or []
    if compare == "skills":
        forms = {canonical_json(declared_skill(s)) for s in value or () if isinstance(s, Mapping)}
        return sorted(forms)
    return normalise(name, value)


ARCHIVED_LIKE: frozenset[str] = frozenset({"archived", "shutdown", "stopped"})
LIVE_LOOP_STATUSES: frozenset[str] = frozenset({"running", "starting", "awaiting_input"})

PruneMode = Literal["archive", "delete", "keep"]
ActionKind = Literal["create", "update", "replace", "resume", "archive", "delete"]
ActionOutcome = Literal["succeeded", "adopted", "failed", "skipped", "noop"]


def normalise_visibility(value: str) -> str:
    """`org` -> `organization`, `collab` -> `collaborate`; other values unchanged."""
    return str(normalise("visibility", value))


def _as_json(value: Any) -> Any:
    if isinstance(value, Mapping):  # not a dict (json takes those): a read-only view, say
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: the form that is hashed (a tuple as a
    list, any Mapping as an object, as :func:`plain` would make them)."""
    return _CANONICAL(value)


# Made once: json.dumps with options builds an encoder per call (one hash per session).
_CANONICAL = jsontext.encoder(sort_keys=True, default=_as_json)


def _digest(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()[:12]


def plain(value: Any) -> Any:
    """A JSON-ready deep copy (Mappings and tuples from the loader become dicts/lists)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def create_only_hash(spec: Mapping[str, Any]) -> str:
    """First 12 hex digits of sha256 over the meaning of the create-only fields.

    ``spec`` is the form as written (``${env:...}`` unresolved, project defaults
    applied); its create-only fields are hashed as the hub would hold them
    (``fields.meaning``), so spelling out a default, ``{}`` for an absent map or the
    order of a set never changes the hash.
    """
    # ``meaning`` reads the top level only (a tuple must be a list there); the JSON
    # form takes any nesting of Mappings and tuples as it is (no deep copy per session).
    form = {k: _listed(spec[k]) for k in CREATE_ONLY_FIELDS if k in spec}
    return _digest(meaning(form))


def _listed(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def legacy_create_only_hash(spec: Mapping[str, Any]) -> str:
    """The hash as markers written before ``create_only_hash`` hashed meanings carry it:
    over the declared create-only fields exactly as written. A marker holding it still
    matches the same declaration (equal for any spec that spells out no default)."""
    return _digest({k: spec[k] for k in CREATE_ONLY_FIELDS if k in spec})


# The per-session values below use __slots__: a run of 100,000 sessions holds several
# of each per session, and an instance __dict__ would double their memory.


@dataclass(frozen=True, slots=True)
class SourceLocation:
    file: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Policy:
    """A Project's safety policy; its defaults here are the only ones (the schemas,
    exported Project files and saved plans read them)."""

    prune: PruneMode = "archive"
    max_destroy_percent: float = 30.0
    protect_live: bool = True

    @classmethod
    def from_manifest(cls, policy: Mapping[str, Any]) -> Policy:
        """From a Project's (or a saved plan's) ``policy`` mapping; keys left out default."""
        default = cls()
        return cls(
            prune=policy.get("prune", default.prune),
            max_destroy_percent=float(policy.get("maxDestroyPercent", default.max_destroy_percent)),
            protect_live=bool(policy.get("protectLive", default.protect_live)),
        )

    def to_manifest(self) -> dict[str, Any]:
        """The ``policy`` mapping, as a manifest writes it (a whole percentage as an int)."""
        percent = self.max_destroy_percent
        return {
            "prune": self.prune,
            "maxDestroyPercent": int(percent) if float(percent).is_integer() else percent,
            "protectLive": self.protect_live,
        }


@dataclass(frozen=True)
class Project:
    """The Project document. ``plain_env`` (``plainEnv``) names the variables whose values
    are not secret: the only ones a reference outside ``env`` may name."""

    name: str
    org_id: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)
    source: SourceLocation | None = None
    plain_env: frozenset[str] = frozenset()
    # Names the project had before (a rename): their sessions are this project's, and
    # their markers are re-tagged with this name.
    previously: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Lifecycle:
    prevent_destroy: bool = False
    ignore_changes: tuple[str, ...] = ()


# What a declaration may ask of its session (``spec.state``): kept running, archived, or
# forgotten (the tool stops managing it and changes nothing else: ``planner.forget``).
SessionState = Literal["active", "archived", "forgotten"]
SESSION_STATES: tuple[SessionState, ...] = get_args(SessionState)


@dataclass(frozen=True, slots=True)
class DesiredSession:
    """One declared session.

    ``spec`` is the form as written with project defaults applied and ``${env:...}``
    references unresolved (hashed into the marker, written to plan files).
    ``resolved`` is the same with every reference whose variable is set substituted,
    but for ``env`` (secret: kept as written, resolved only in apply's request bodies);
    references to unset variables stay as written there and their names are listed in
    ``unset_refs`` by top-level spec field, and ``unset_at`` says where the first of
    them is referenced (in the session or the Project's defaults). Outside ``env`` a
    reference names a plain variable (``Project.plain_env``: the manifest checks refuse
    any other). ``state`` is not part of either.
    ``previously`` lists the names it was declared under before (a rename: the managed
    session is found under any of them); ``set_name`` is the SessionSet that generated
    it, if any; ``adopt`` the id of an existing session to adopt as it while no session
    is managed as it (``import`` through the manifests). ``plain_env`` is the Project's
    ``plainEnv``: a reference to one of those under ``env`` may keep its default in
    records and saved plans (any other default there is a value written literally).
    """

    name: str
    spec: Mapping[str, Any]
    resolved: Mapping[str, Any]
    state: SessionState = "active"
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    source: SourceLocation | None = None
    unset_refs: Mapping[str, frozenset[str]] = field(default_factory=dict)
    unset_at: Mapping[str, SourceLocation] = field(default_factory=dict)
    previously: tuple[str, ...] = ()
    set_name: str | None = None
    adopt: str | None = None
    plain_env: frozenset[str] = frozenset()
    _spec_hash: str | None = field(default=None, init=False, repr=False, compare=False)
    _legacy_hash: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def spec_hash(self) -> str:
        # Cached: the planner asks several times per session (sha256 of canonical JSON).
        if self._spec_hash is None:
            object.__setattr__(self, "_spec_hash", create_only_hash(self.spec))
        assert self._spec_hash is not None
        return self._spec_hash

    def matches(self, marker_hash: str) -> bool:
        """True when a marker's hash names this declaration: its meaning's hash, or the
        hash of the same declaration as markers written before meanings were hashed."""
        if marker_hash == self.spec_hash:
            return True
        if self._legacy_hash is None:
            object.__setattr__(self, "_legacy_hash", legacy_create_only_hash(self.spec))
        return marker_hash == self._legacy_hash

    def marker_tag(self, project: str) -> str:
        return Marker(project, self.name, self.spec_hash).tag


# The RemoteSession attribute of each mutable field that has one; others are in ``extra``.
_ATTRIBUTES: dict[str, str] = {
    "label": "label",
    "agent": "default_agent",
    "visibility": "visibility",
    "tags": "tags",
    "skills": "skills",
}
# Each of those the list reports: (field, the list item's key).
_EXTRA_REPORTED = tuple(
    (f.name, f.reported_as)
    for f in FIELDS
    if f.mutable and f.name not in _ATTRIBUTES and f.reported_as is not None
)


_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
# The exact types a JSON list item of tags, or of skills, has (anything else is looked at
# one by one).
_STR_ONLY: frozenset[type] = frozenset({str})
_TEXT_OR_NONE: frozenset[type] = frozenset({str, type(None)})
# RemoteSession's status and text fields, each with its list item's key, in field order
# (checked below the class).
_TEXT_FIELDS: dict[str, str] = {
    "status": "status",
    "label": "label",
    "visibility": "visibility",
    "default_agent": "defaultAgent",
    "workflow_mode": "workflowMode",
    "loop_status": "loopStatus",
    "created_at": "createdAt",
    "last_activity_at": "lastActivityAt",
}
_TEXT_KEYS = tuple(_TEXT_FIELDS.values())
_DICT_ONLY: frozenset[type] = frozenset({dict})

_MARKER_RE = re.compile(
    rf"^reconciler:(?P<project>{PROJECT_NAME})/(?P<name>{SESSION_NAME})@(?P<hash>[0-9a-f]{{12}})$"
)


class Marker(NamedTuple):
    """The ownership tag ``reconciler:<project>/<name>@<hash>``.

    A named tuple, as :class:`RemoteSession` is: one is parsed for every session a
    plan lists, and a tuple is made in a fraction of a frozen dataclass's time.
    """

    project: str
    name: str
    hash: str

    @property
    def tag(self) -> str:
        return f"{MARKER_PREFIX}{self.project}/{self.name}@{self.hash}"

    @classmethod
    def parse(cls, tag: str) -> Marker | None:
        m = _MARKER_RE.fullmatch(tag)
        if m is None:
            return None
        return cls._make(m.groups())


class RemoteSession(NamedTuple):
    """A session as the hub's list endpoint reports it: the fields the planner reads.

    The item itself is not kept: a plan of 100,000 sessions would hold every field the
    service sends (a third of its memory) for fields nothing reads. A named tuple: a
    plan makes one per session listed, its markers parsed, and a tuple is made in a
    fraction of a frozen dataclass's time (which sets each field in turn).
    """

    session_id: str
    status: str
    # The text fields (``_TEXT_FIELDS``: a string, else None), in one run of fields.
    label: str | None = None
    visibility: str | None = None
    default_agent: str | None = None
    workflow_mode: str | None = None
    loop_status: str | None = None
    created_at: str | None = None
    last_activity_at: str | None = None
    tags: tuple[str, ...] = ()
    skills: tuple[Mapping[str, Any], ...] = ()
    loop_iteration: int | None = None
    participant_count: int = 0
    # Mutable spec fields reported that have no attribute above (``fields.FIELDS``).
    extra: Mapping[str, Any] = _NO_EXTRA
    # The marker tags among ``tags``, parsed (``markers()``).
    parsed_markers: tuple[Marker, ...] = ()

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> RemoteSession:
        """Build from a list item (or single-session GET); tolerant of missing fields."""
        get = item.get  # once per field, for every session of every page: kept lean
        # The text fields, each a string or None as JSON gives them (told in C), else
        # None where the hub sent something else.
        status, *text = map(get, _TEXT_KEYS)
        if not _TEXT_OR_NONE.issuperset(map(type, text)):
            text = [t if isinstance(t, str) else None for t in text]
        tags, skills = get("tags"), get("skills")
        iteration, count = get("loopIteration"), get("participantCount")
        extra = (
            {name: item[key] for name, key in _EXTRA_REPORTED if get(key) is not None}
            if _EXTRA_REPORTED
            else _NO_EXTRA
        )
        markers: tuple[Marker, ...] = ()
        if isinstance(tags, list):
            # Strings only (a list of exact strings, as JSON gives, is told in C); a
            # set on the hub: duplicates the service repeats are dropped, order kept.
            if not _STR_ONLY.issuperset(map(type, tags)):
                tags = [t for t in tags if isinstance(t, str)]
            tags = tuple(dict.fromkeys(tags))
            markers = _markers_in(tags)
        else:
            tags = ()
        if isinstance(skills, list):
            if not _DICT_ONLY.issuperset(map(type, skills)):
                skills = [s for s in skills if isinstance(s, Mapping)]
            skills = tuple(skills)
        else:
            skills = ()
        label, visibility, agent, mode, loop_status, created, last_active = text
        return cls(
            str(item["sessionId"]),
            status if isinstance(status, str) and status else "unknown",
            label,
            visibility,
            agent,
            mode,
            loop_status,
            created,
            last_active,
            tags,
            skills,
            iteration if isinstance(iteration, int) else None,
            count if isinstance(count, int) else 0,
            extra or _NO_EXTRA,
            markers,
        )

    def reported(self, name: str) -> Any:
        """The hub's value of mutable spec field ``name`` (None when it reports none)."""
        attribute = _ATTRIBUTES.get(name)
        return getattr(self, attribute) if attribute else self.extra.get(name)

    @property
    def archived_like(self) -> bool:
        return self.status in ARCHIVED_LIKE

    @property
    def live(self) -> bool:
        """A loop running/starting/awaiting input, or participants connected."""
        return self.loop_status in LIVE_LOOP_STATUSES or self.participant_count > 0

    def markers(self) -> tuple[Marker, ...]:
        """The marker tags on the session, parsed."""
        return self.parsed_markers


assert tuple(_TEXT_FIELDS) == RemoteSession._fields[1 : 1 + len(_TEXT_FIELDS)], (
    "from_api reads the text fields in RemoteSession's field order"
)


def _markers_in(tags: tuple[str, ...]) -> tuple[Marker, ...]:
    found = []
    for t in tags:
        # "@" first: the last-applied record tag shares the prefix, never a marker.
        if t.startswith(MARKER_PREFIX) and "@" in t:
            marker = Marker.parse(t)
            if marker is not None:
                found.append(marker)
    return tuple(found)


def keep_order(session: RemoteSession) -> tuple[str, str]:
    """The one rule that decides which of several sessions of one name is kept: the
    first in this order, the oldest (``createdAt``; ISO-8601 sorts as text), the id
    breaking ties.

    The planner (``planner.ownership.choose_kept``) and the settlement after an apply
    (``applier.duplicates``) both keep by it, so concurrent runs agree whatever each
    of them saw: the first session in this order is the first in any subset holding
    it, so no run ever archives it as a duplicate, and a name never loses its last
    session to two runs archiving each other's choice.
    """
    return (session.created_at or "", session.session_id)


@dataclass(frozen=True)
class FieldChange:
    """One field of an update or replacement: ``before -> after``.

    For tags and skills, ``added``/``removed`` carry the set difference. ``sensitive``
    means the values must be shown as ``(sensitive)``. ``cause`` (mutable fields of an
    update): ``manifest`` (changed in the manifests since the last apply), ``drift``
    (changed on the hub since), or None (no last-applied record: unknown).
    """

    field: str
    before: Any = None
    after: Any = None
    added: tuple[Any, ...] = ()
    removed: tuple[Any, ...] = ()
    sensitive: bool = False
    cause: Literal["manifest", "drift"] | None = None


@dataclass(frozen=True)
class Action:
    """One step of a plan.

    - create: ``body`` is the create payload as written (references unresolved, marker
      tag included, ``metadata.reconciler`` filled); ``session_id`` is None.
    - update: ``session_id`` and ``body`` (the PATCH payload, as written), ``changes``.
    - replace: ``body`` creates the new session; ``session_id`` is the old one, archived
      or deleted (``replace_with``) once the new one exists; ``changes`` lists the
      create-only fields that force it.
    - resume / archive / delete: ``session_id``.
    ``marker_tag`` is the marker of the session the action acts on; for a create or a
    replace, the marker the new session will carry.
    ``precondition`` is a fingerprint of the observed fields the action depends on
    (empty for a create); ``reason`` says why, in words (``no longer declared``,
    ``duplicate``, ``its last session is archived``, ``declared state: archived``...).
    ``set_name`` is the SessionSet that declares the session (renderers group by it).
    """

    kind: ActionKind
    name: str
    reason: str = ""
    session_id: str | None = None
    body: Mapping[str, Any] | None = None
    changes: tuple[FieldChange, ...] = ()
    precondition: str = ""
    replace_with: Literal["archive", "delete"] | None = None
    marker_tag: str | None = None
    live: bool = False
    source: SourceLocation | None = None
    # Carried on the action so a saved plan can be re-checked without the manifests.
    prevent_destroy: bool = False
    set_name: str | None = None

    @property
    def destroys(self) -> bool:
        return self.kind in ("archive", "delete", "replace")


# A run that names no organisation acts in its token's; the API has no endpoint that says
# which one that is, so a header can only say so.
TOKEN_ORG = "the token's organisation"


def org_label(org_id: str | None) -> str:
    """How headers and messages name an organisation: ``org <id>``, or :data:`TOKEN_ORG`."""
    return f"org {org_id}" if org_id else TOKEN_ORG


@dataclass(frozen=True)
class PolicyFinding:
    """One rule of a ``kind: Policy`` document that a session or the plan breaks.

    ``action`` is the policy's (``deny`` refuses the plan, ``warn`` is shown);
    ``session`` and ``session_source`` are None for a plan-scope rule. ``overridden``:
    an ``overridable`` deny lifted by ``--override-policy`` (shown, not refused).
    """

    policy: str
    action: Literal["deny", "warn"]
    message: str
    rule_source: SourceLocation | None = None
    session: str | None = None
    session_source: SourceLocation | None = None
    overridable: bool = False
    overridden: bool = False
    # The rule's place in its policy (``spec.rules[i]``): orders findings found in two
    # passes (a rule repeated through a YAML alias shares its location). Not saved.
    rule_index: int = field(default=0, compare=False, repr=False)

    @property
    def refuses(self) -> bool:
        return self.action == "deny" and not self.overridden


# The safety rule of a refused adoption (``RefusedAdoption``): one name for the plan,
# `import`, and the status rows that show it.
CREATE_ONLY_DIFFERS = "createOnlyDiffers"


@dataclass(frozen=True)
class RefusedAdoption:
    """An ``adopt:`` line naming a session that differs from the declaration in the
    create-only ``fields`` (paths named): the plan refuses it as ``import`` does (rule
    ``createOnlyDiffers``, which ``--force`` cannot lift), and is still shown in full.
    ``label`` names the declaration and the session in the refusal."""

    name: str
    session_id: str
    label: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """Ordered actions plus what they were planned against. A value: nothing mutates it."""

    project: str
    actions: tuple[Action, ...]
    org_id: str | None = None
    endpoint: str | None = None
    managed_count: int = 0
    # The policy the plan was made under (safety is re-checked from a saved plan) and
    # the manifests' git commit when known.
    policy: Policy = field(default_factory=Policy)
    commit: str | None = None
    # Actions that --target/--exclude left out of ``actions`` (not shown, not applied).
    left_out: int = 0
    # What the ``kind: Policy`` rules found (reconciler.policy); deny ones refuse the plan.
    findings: tuple[PolicyFinding, ...] = ()
    # ``adopt:`` lines the plan cannot act on; each refuses it (planner.safety).
    refused_adoptions: tuple[RefusedAdoption, ...] = ()

    def count(self, kind: ActionKind) -> int:
        return sum(1 for a in self.actions if a.kind == kind)

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    def summary(self) -> str:
        c = self.count
        return (
            f"Plan: {c('create')} to create, {c('update')} to update, {c('replace')} to replace, "
            f"{c('resume')} to resume, {c('archive')} to archive, {c('delete')} to delete."
        )


@dataclass(frozen=True)
class ActionResult:
    action: Action
    outcome: ActionOutcome
    session_id: str | None = None
    duration_s: float = 0.0
    error: str | None = None
    # A create that failed while the hub may still be making its session (its answer
    # timed out): not to be sent again until the hub's list has had time to show it.
    in_doubt: bool = False


@dataclass(frozen=True)
class ApplyReport:
    """One result per plan action, in plan order, and how the run ended.

    ``unreachable``: consecutive connections failed, so the run started nothing more.
    ``duplicates``: archives of sessions that carried a marker this run wrote, made by
    a concurrent apply (the oldest of each marker is kept); ``duplicates_error`` when
    the listing that finds them failed.
    """

    results: tuple[ActionResult, ...]
    interrupted: bool = False
    unreachable: bool = False
    duplicates: tuple[ActionResult, ...] = ()
    duplicates_error: str | None = None
    # Policies lifted by ``apply --override-policy`` for this run (names, sorted).
    policy_overrides: tuple[str, ...] = ()

    @property
    def failed(self) -> tuple[ActionResult, ...]:
        """Failed plan actions and failed archives of duplicates."""
        return tuple(r for r in self.results + self.duplicates if r.outcome == "failed")
