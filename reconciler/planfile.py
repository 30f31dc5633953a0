"""The plan document: a Plan as JSON (``schemas/plan.schema.json``), in memory and on disk.

``plan_to_dict`` and ``plan_from_dict`` round-trip a Plan exactly. ``plan --format
json`` prints the document with values under ``env`` in create bodies shown as
``(sensitive)``; a saved plan keeps them as written (``${env:...}`` unresolved) because
apply needs them.

Saved plans: ``plan --out FILE`` writes one, ``apply --plan FILE`` reads it back. The
file is the document with create and PATCH bodies as written, so no secret value is
ever in it, plus ``inputs`` (what ``plan`` was asked: paths, project, scope) and
``checksum``: sha256 over the canonical JSON of every other member. A file that fails
the checksum, the schema or the format version is refused. The checksum only catches
corruption (anyone can recompute it): what makes a saved plan safe to apply is
:func:`first_difference`, ``apply --plan`` planning again from ``inputs`` and applying
only when the fresh plan would do exactly what the file says, where it says.

Values under ``env`` are secret, so one written literally in a manifest (no
``${env:...}`` in it, or a reference's default) cannot be saved: ``write_plan`` refuses
the whole plan, naming each such value's session, file and line, before anything is
written.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import hmac
import json
import os
import re
import secrets
import shlex
import stat
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, cast

from reconciler.errors import ManifestError, ManifestErrors, PlanFileError, UsageError
from reconciler.manifest.envref import (
    as_written_is_secret_free,
    holds_reference,
    literal_form,
    whole_value_variable,
)
from reconciler.masking import SENSITIVE, mask_body_env
from reconciler.model import (
    Action,
    ActionKind,
    FieldChange,
    Plan,
    Policy,
    PolicyFinding,
    SourceLocation,
    canonical_json,
    org_label,
)

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "PlanInputs",
    "SavedPlan",
    "in_fresh_terms",
    "checksum",
    "command_line",
    "credential_difference",
    "credential_fingerprint",
    "finding_to_dict",
    "endpoint_difference",
    "first_difference",
    "identity_difference",
    "inputs_arguments",
    "parse_checksum",
    "literal_env_values",
    "plan_from_dict",
    "plan_schema",
    "plan_to_dict",
    "read_plan",
    "read_plan_checksum",
    "read_saved_plan",
    "validate_plan_document",
    "write_plan",
]

FORMAT_VERSION = 1
KINDS: tuple[ActionKind, ...] = ("create", "update", "replace", "resume", "archive", "delete")


@dataclass(frozen=True)
class PlanInputs:
    """What ``plan`` was asked, besides the hub: its PATHs (as given, relative to where
    it ran), ``--project`` and scope options. ``apply --plan`` plans again from them."""

    paths: tuple[str, ...] = ()
    project_name: str | None = None
    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    selectors: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    destroy: bool = False
    # --override-policy names: the re-plan lifts the same overridable Policy denies.
    overrides: tuple[str, ...] = ()
    # When no org was named: the token's fingerprint (``credential_fingerprint``), as
    # the token's own org is where the plan applies.
    credential: str | None = None

    def to_dict(self) -> dict[str, Any]:
        extra = {"credential": self.credential} if self.credential is not None else {}
        return {
            "paths": list(self.paths),
            "project": self.project_name,
            "targets": list(self.targets),
            "excludes": list(self.excludes),
            "selectors": list(self.selectors),
            "replace": list(self.replace),
            "destroy": self.destroy,
            "overrides": list(self.overrides),
            **extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlanInputs:
        return cls(
            paths=tuple(d["paths"]),
            project_name=d.get("project"),
            targets=tuple(d.get("targets", ())),
            excludes=tuple(d.get("excludes", ())),
            selectors=tuple(d.get("selectors", ())),
            replace=tuple(d.get("replace", ())),
            destroy=bool(d.get("destroy", False)),
            overrides=tuple(d.get("overrides", ())),
            credential=d.get("credential"),
        )


# A saved plan is an artifact (CI keeps it where the repository's readers may download
# it): the token's fingerprint there is salted, so two plans made with one token cannot
# be told apart by it, and slow to compute, so a guessable token is not checked against
# it quickly. One derivation per plan saved or applied (0.05 s of CPU here).
_CREDENTIAL_ROUNDS = 200_000
_CREDENTIAL_DOMAIN = b"coder-reconciler saved plan credential\0"
_CREDENTIAL_RE = re.compile(r"pbkdf2-sha256:([0-9a-f]{32}):([0-9a-f]{32})")
# The form an older version wrote: unsalted, fast; still read, never written.
_LEGACY_CREDENTIAL_RE = re.compile(r"sha256:[0-9a-f]{16}")


def credential_fingerprint(token: str | None, salt: bytes | None = None) -> str | None:
    """A fingerprint of ``token`` that a saved plan may hold (never the token: a
    salted, slow one-way derivation, PBKDF2-SHA256 cut to 128 bits), or None without a
    token. ``salt`` (16 bytes) is new for each plan unless given (to check one)."""
    if token is None:
        return None
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac(
        "sha256",
        _CREDENTIAL_DOMAIN + token.encode(),
        salt,
        _CREDENTIAL_ROUNDS,
        dklen=16,
    )
    return f"pbkdf2-sha256:{salt.hex()}:{digest.hex()}"


def _same_credential(saved: str, token: str) -> bool:
    """Whether ``saved`` (a plan's fingerprint) is ``token``'s."""
    found = _CREDENTIAL_RE.fullmatch(saved)
    if found is not None:
        again = credential_fingerprint(token, bytes.fromhex(found[1]))
        return again is not None and hmac.compare_digest(again, saved)
    if _LEGACY_CREDENTIAL_RE.fullmatch(saved):
        legacy = hashlib.sha256(_CREDENTIAL_DOMAIN + token.encode())
        return hmac.compare_digest(f"sha256:{legacy.hexdigest()[:16]}", saved)
    return False


@dataclass(frozen=True)
class SavedPlan:
    """A plan read back from a file, with what it was made from and its checksum (as
    `plan --out` printed it: ``sha256:`` and 64 hex digits)."""

    plan: Plan
    inputs: PlanInputs
    checksum: str


def _change_to_dict(change: FieldChange) -> dict[str, Any]:
    def masked(value: Any) -> Any:
        return SENSITIVE if change.sensitive and value is not None else value

    return {
        "field": change.field,
        "before": masked(change.before),
        "after": masked(change.after),
        "added": list(change.added),
        "removed": list(change.removed),
        "sensitive": change.sensitive,
        "cause": change.cause,
    }


def _source_to_dict(source: SourceLocation | None) -> dict[str, Any] | None:
    if source is None:
        return None
    return {"file": source.file, "line": source.line, "column": source.column}


def _action_to_dict(action: Action, *, mask_env: bool) -> dict[str, Any]:
    body: dict[str, Any] | None = None
    if action.body is not None:
        body = mask_body_env(action.body) if mask_env else dict(action.body)
    out: dict[str, Any] = {
        "kind": action.kind,
        "name": action.name,
        "reason": action.reason,
        "sessionId": action.session_id,
        "precondition": action.precondition,
        "markerTag": action.marker_tag,
        "replaceWith": action.replace_with,
        "live": action.live,
        "preventDestroy": action.prevent_destroy,
        "source": _source_to_dict(action.source),
        "body": body,
        "changes": [_change_to_dict(c) for c in action.changes],
    }
    if action.set_name is not None:  # optional: plans without sets read as before
        out["set"] = action.set_name
    return out


def finding_to_dict(finding: PolicyFinding) -> dict[str, Any]:
    """One Policy finding as the plan document holds it (``validate --format json`` too)."""
    return {
        "policy": finding.policy,
        "action": finding.action,
        "message": finding.message,
        "rule": _source_to_dict(finding.rule_source),
        "session": finding.session,
        "sessionSource": _source_to_dict(finding.session_source),
        "overridable": finding.overridable,
        "overridden": finding.overridden,
    }


def _source_from_dict(d: Mapping[str, Any] | None) -> SourceLocation | None:
    return SourceLocation(d["file"], d["line"], d.get("column", 1)) if d else None


def _finding_from_dict(d: Mapping[str, Any]) -> PolicyFinding:
    return PolicyFinding(
        policy=d["policy"],
        action=d["action"],
        message=d["message"],
        rule_source=_source_from_dict(d.get("rule")),
        session=d.get("session"),
        session_source=_source_from_dict(d.get("sessionSource")),
        overridable=bool(d["overridable"]),
        overridden=bool(d["overridden"]),
    )


def plan_to_dict(plan: Plan, *, mask_env: bool = True) -> dict[str, Any]:
    """The plan as a JSON-ready document, stable key names, actions in plan order."""
    summary: dict[str, Any] = {kind: plan.count(kind) for kind in KINDS}
    summary["text"] = plan.summary()
    document = {
        "formatVersion": FORMAT_VERSION,
        "project": plan.project,
        "org": plan.org_id,
        "endpoint": plan.endpoint,
        "commit": plan.commit,
        "managedCount": plan.managed_count,
        "policy": {
            "prune": plan.policy.prune,
            "maxDestroyPercent": plan.policy.max_destroy_percent,
            "protectLive": plan.policy.protect_live,
        },
        "hasChanges": plan.has_changes,
        "leftOut": plan.left_out,
        "summary": summary,
        "actions": [_action_to_dict(a, mask_env=mask_env) for a in plan.actions],
    }
    if plan.findings:  # optional: plans without policies read as before
        document["policyFindings"] = [finding_to_dict(f) for f in plan.findings]
    return document


def _change_from_dict(d: Mapping[str, Any]) -> FieldChange:
    return FieldChange(
        field=d["field"],
        before=d.get("before"),
        after=d.get("after"),
        added=tuple(d.get("added", ())),
        removed=tuple(d.get("removed", ())),
        sensitive=bool(d.get("sensitive", False)),
        cause=d.get("cause"),
    )


def _action_from_dict(d: Mapping[str, Any]) -> Action:
    source = d.get("source")
    return Action(
        kind=cast(ActionKind, d["kind"]),
        name=d["name"],
        reason=d.get("reason", ""),
        session_id=d.get("sessionId"),
        body=d.get("body"),
        changes=tuple(_change_from_dict(c) for c in d.get("changes", ())),
        precondition=d.get("precondition", ""),
        replace_with=d.get("replaceWith"),
        marker_tag=d.get("markerTag"),
        live=bool(d.get("live", False)),
        source=SourceLocation(source["file"], source["line"], source.get("column", 1))
        if source
        else None,
        prevent_destroy=bool(d.get("preventDestroy", False)),
        set_name=d.get("set"),
    )


def plan_from_dict(d: Mapping[str, Any]) -> Plan:
    """The Plan a :func:`plan_to_dict` document describes (the caller validates it first)."""
    policy = d.get("policy") or {}
    return Plan(
        project=d["project"],
        actions=tuple(_action_from_dict(a) for a in d["actions"]),
        org_id=d.get("org"),
        endpoint=d.get("endpoint"),
        managed_count=int(d.get("managedCount", 0)),
        policy=Policy.from_manifest(policy),
        commit=d.get("commit"),
        # Absent from plans saved before targeted plans counted what they left out.
        left_out=int(d.get("leftOut", 0)),
        findings=tuple(_finding_from_dict(f) for f in d.get("policyFindings", ())),
    )


@cache
def plan_schema() -> dict[str, Any]:
    """``schemas/plan.schema.json``, shipped inside the package."""
    text = resources.files("reconciler").joinpath("schemas/plan.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


_CHECKSUM_PREFIX = "sha256:"
_CHECKSUM_TEXT = re.compile(r"(?i)(sha256:)?([0-9a-f]{64})")


def parse_checksum(text: str) -> str | None:
    """``text`` as :func:`checksum` writes one (``sha256:`` and 64 lower-case hex
    digits), the prefix optional and case not counted; None when it is no checksum."""
    found = _CHECKSUM_TEXT.fullmatch(text.strip())
    return _CHECKSUM_PREFIX + found[2].lower() if found else None


def checksum(document: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` over the canonical JSON of ``document`` without its checksum."""
    content = {k: v for k, v in document.items() if k != "checksum"}
    return _CHECKSUM_PREFIX + hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def validate_plan_document(document: Any) -> None:
    """Raise :class:`PlanFileError` unless ``document`` follows the plan schema."""
    # Only when a plan file is written or read: `plan` without --out never loads it.
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    validator = Draft202012Validator(plan_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise PlanFileError(
            f"saved plan does not follow the plan schema at {where}: {first.message}"
        )


def literal_env_values(plan: Plan) -> list[ManifestError]:
    """One error per ``env`` value of a create body that is not one bare reference (no
    text beside it, no default but to a ``plainEnv`` variable, which the body's record
    of its declaration keeps: ``planner.body.declared_form``)."""
    found: list[ManifestError] = []
    for action in plan.actions:
        body = action.body or {}
        env = body.get("env")
        if not isinstance(env, Mapping):
            continue
        record = _recorded_env(body)
        for key, value in env.items():
            if as_written_is_secret_free(value) or (
                holds_reference(value) and record.get(key) == value
            ):
                continue
            how = literal_form(value)
            variable = whole_value_variable(key, value)
            where = action.source
            found.append(
                ManifestError(
                    f"session {action.name}: spec.env.{key} {how} (here or in the Project's "
                    "defaults.env), and a saved plan never holds a value under env (they are "
                    f'secret): use "${{env:{variable}}}" alone and set the whole value where '
                    "apply runs (a default only for a variable the Project's plainEnv names)",
                    file=where.file if where else None,
                    line=where.line if where else None,
                    field=f"spec.env.{key}",
                )
            )
    return found


def _recorded_env(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``env`` a create body's ``metadata.reconciler.declared`` records, or {}."""
    found: Any = body.get("metadata")
    for key in ("reconciler", "declared", "env"):
        found = found.get(key) if isinstance(found, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def write_plan(plan: Plan, path: str | os.PathLike[str], inputs: PlanInputs | None = None) -> str:
    """Write ``plan``, made from ``inputs``, to ``path`` (atomically, mode 0600); return
    its checksum.

    Raises :class:`ManifestErrors` (exit 65), writing nothing, when a value under
    ``env`` is literal (see :func:`literal_env_values`).
    """
    literal = literal_env_values(plan)
    if literal:
        raise ManifestErrors(literal)
    document = plan_to_dict(plan, mask_env=False)
    document["inputs"] = (inputs or PlanInputs()).to_dict()
    document["checksum"] = checksum(document)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(document["checksum"])


def _read_regular(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the regular file at ``path``. Opened without blocking and checked
    before it is read: a pipe or a device would be read inside the run's event loop,
    where a writer that never finishes (or `/dev/zero`) holds it past every signal, and
    `plan --out` only ever writes a file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(
                errno.EINVAL, "not a regular file (save the plan to a file and give that)"
            )
        return fh.read()


def read_plan(path: str | os.PathLike[str]) -> Plan:
    """The Plan saved at ``path``; :class:`PlanFileError` if unreadable or corrupt."""
    return read_plan_checksum(path)[0]


def read_plan_checksum(path: str | os.PathLike[str]) -> tuple[Plan, str]:
    """The Plan saved at ``path`` and its checksum (what ``--expect-checksum`` takes)."""
    document = _read_document(path)
    return plan_from_dict(document), str(document["checksum"])


def read_saved_plan(path: str | os.PathLike[str]) -> SavedPlan:
    """The plan saved at ``path`` and what it was made from, for ``apply --plan``;
    :class:`PlanFileError` if unreadable, corrupt, or without ``inputs``."""
    document = _read_document(path)
    inputs = document.get("inputs")
    if not isinstance(inputs, Mapping):
        raise PlanFileError(
            f"saved plan {path} does not record what it was made from (`plan --out` of an "
            "older reconciler?), so it cannot be checked against a fresh plan: make it again"
        )
    return SavedPlan(plan_from_dict(document), PlanInputs.from_dict(inputs), document["checksum"])


def _read_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        text = _read_regular(path).decode("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read saved plan {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise PlanFileError(f"saved plan {path} is not UTF-8 text") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanFileError(f"saved plan {path} is not JSON (line {exc.lineno})") from None
    except RecursionError:  # nested deeper than any plan is: not one `plan --out` wrote
        raise PlanFileError(f"saved plan {path} nests too deeply to be a plan") from None
    if not isinstance(document, dict):
        raise PlanFileError(f"saved plan {path} is not a JSON object")
    version = document.get("formatVersion")
    if version is None:
        raise PlanFileError(
            f"saved plan {path} is not a plan `reconciler plan --out` wrote (no formatVersion)"
        )
    if version != FORMAT_VERSION:
        raise PlanFileError(
            f"saved plan {path} has format version {version!r}; this reconciler reads "
            f"version {FORMAT_VERSION}"
        )
    recorded = document.get("checksum")
    if recorded is None:
        raise PlanFileError(f"saved plan {path} has no checksum")
    try:
        computed = checksum(document)
    except (UnicodeEncodeError, RecursionError):  # a lone surrogate (\ud800), or deep
        raise PlanFileError(f"saved plan {path} holds text no plan holds") from None
    if recorded != computed:
        raise PlanFileError(
            f"saved plan {path} fails its checksum: it was changed after it was made"
        )
    validate_plan_document(document)
    return document


def endpoint_difference(saved: Plan, endpoint: str) -> str | None:
    """Whether ``saved`` was made against another hub (known before any manifest is read)."""
    if saved.endpoint != endpoint:
        return f"it was made against {saved.endpoint}, and this run is against {endpoint}"
    return None


def credential_difference(saved: str | None, token: str | None) -> str | None:
    """Whether a plan made with no org named (its token's fingerprint ``saved``) would
    apply with another token, so perhaps in another org; None when the same."""
    if saved is None and token is None:
        return None
    if saved is not None and token is not None and _same_credential(saved, token):
        return None
    if saved is None:
        return "it names no org and records no token (made by an older reconciler?)"
    return (
        "it was made with another token and names no org, so the token's own org "
        "decides where it applies: name the org (--org, AGENTUITY_ORG_ID or the "
        "Project's orgId)"
    )


def identity_difference(
    saved: Plan, *, project: str, org_id: str | None, endpoint: str
) -> str | None:
    """What differs between where ``saved`` was made and where this run is, or None."""
    elsewhere = endpoint_difference(saved, endpoint)
    if elsewhere is not None:
        return elsewhere
    if saved.org_id != org_id:
        return f"it was made for {org_label(saved.org_id)}, and this run is for {org_label(org_id)}"
    if saved.project != project:
        return f"it was made for project {saved.project}, and the manifests are project {project}"
    return None


# What a create body records of where its declaration was (``planner.body``): the
# checkout's, where apply runs, never the file's.
_PROVENANCE = ("commit", "source")


def in_fresh_terms(saved: Plan, fresh: Plan) -> Plan:
    """``saved`` with what does not change what its actions do taken from ``fresh``'s
    action of the same kind, name and session: the commit and the declaration's place
    (file and line: a comment or a merge moves it) a create body records, and the order
    of its tags (a set). A file's commit, edited or not, is then never recorded."""

    def moved(old: Action, new: Action) -> Action:
        if (old.kind, old.name, old.session_id) != (new.kind, new.name, new.session_id):
            return old
        old = dataclasses.replace(old, source=new.source)
        body, fresh_body = old.body, new.body
        if body is None or fresh_body is None:
            return old
        body = dict(body)
        tags, fresh_tags = body.get("tags"), fresh_body.get("tags")
        if (
            isinstance(tags, list)
            and isinstance(fresh_tags, list)
            and sorted(map(str, tags)) == sorted(map(str, fresh_tags))
        ):
            body["tags"] = fresh_tags
        lineage = (body.get("metadata") or {}).get("reconciler")
        fresh_lineage = (fresh_body.get("metadata") or {}).get("reconciler")
        if isinstance(lineage, Mapping) and isinstance(fresh_lineage, Mapping):
            lineage = {k: v for k, v in lineage.items() if k not in _PROVENANCE}
            lineage.update({k: fresh_lineage[k] for k in _PROVENANCE if k in fresh_lineage})
            body["metadata"] = {**body["metadata"], "reconciler": lineage}
        return dataclasses.replace(old, body=body)

    actions = tuple(
        moved(old, fresh.actions[i]) if i < len(fresh.actions) else old
        for i, old in enumerate(saved.actions)
    )
    return dataclasses.replace(saved, commit=fresh.commit, actions=actions)


def first_difference(saved: Plan, fresh: Plan) -> str | None:
    """None when ``fresh`` would do exactly what ``saved`` says (same project, org and
    endpoint; the same actions in the same order, every member equal; no Policy deny
    lifted that ``saved`` does not show lifted); else the first difference, in words.
    Values are not shown (a body may hold anything): field names.
    """
    assert fresh.endpoint is not None
    where = identity_difference(
        saved, project=fresh.project, org_id=fresh.org_id, endpoint=fresh.endpoint
    )
    if where is not None:
        return where
    missing = _missing_action(saved.actions, fresh.actions)
    if missing is not None:
        return missing
    for number, (old, new) in enumerate(zip(saved.actions, fresh.actions, strict=False), 1):
        was = _action_to_dict(old, mask_env=False)
        now = _action_to_dict(new, mask_env=False)
        if was == now:
            continue
        if (old.kind, old.name) != (new.kind, new.name):
            return (
                f"its action {number} is `{old.kind} {old.name}`, where a fresh plan would "
                f"`{new.kind} {new.name}`"
            )
        fields = ", ".join(_differing(was, now))
        return (
            f"its action {number}, `{old.kind} {old.name}`, differs from a fresh plan's in {fields}"
        )
    extra = len(saved.actions) - len(fresh.actions)
    if extra > 0:
        old = saved.actions[len(fresh.actions)]
        return (
            f"its action {len(fresh.actions) + 1}, `{old.kind} {old.name}`, is not in a fresh "
            f"plan ({_count(len(fresh.actions))} now)"
        )
    if extra < 0:
        new = fresh.actions[len(saved.actions)]
        return f"a fresh plan would also `{new.kind} {new.name}`, which it does not hold"
    lifted = sorted(_lifted_denies(fresh) - _lifted_denies(saved))
    if lifted:
        policy, session = lifted[0]
        return (
            f"a fresh plan lifts the deny of policy {policy} for {session or 'the plan'}, "
            "which it does not show"
        )
    return None


def _missing_action(saved: Sequence[Action], fresh: Sequence[Action]) -> str | None:
    """When one plan holds the other's actions and more (by kind and name): the first
    action only one holds, in words. Compared by position instead, a single action more
    or less (one applied already, a session changed since) would be told as a mismatch
    of the pair where it falls."""
    was: Counter[tuple[str, str]] = Counter((a.kind, a.name) for a in saved)
    now: Counter[tuple[str, str]] = Counter((a.kind, a.name) for a in fresh)
    if was == now:
        return None
    if not now - was:  # the saved plan holds more
        number, old = _first_beyond(saved, now)
        # Most often the file was applied already (in whole, or this action of it).
        return (
            f"its action {number}, `{old.kind} {old.name}`, is not in a fresh plan "
            f"({_count(len(fresh))} now: applied already?)"
        )
    if not was - now:  # a fresh plan holds more
        _, new = _first_beyond(fresh, was)
        return f"a fresh plan would also `{new.kind} {new.name}`, which it does not hold"
    return None


def _first_beyond(actions: Sequence[Action], held: Counter[tuple[str, str]]) -> tuple[int, Action]:
    """The first of ``actions`` (numbered from 1) beyond what ``held`` holds of its kind
    and name."""
    left = held.copy()
    for number, action in enumerate(actions, 1):
        key = (action.kind, action.name)
        if left[key] > 0:
            left[key] -= 1
            continue
        return number, action
    raise AssertionError("no action beyond what is held")  # callers check the counts


def _lifted_denies(plan: Plan) -> set[tuple[str, str]]:
    """(policy, session) of each deny finding an override lifted."""
    return {(f.policy, f.session or "") for f in plan.findings if f.overridden}


def _count(n: int) -> str:
    return f"{n} action{'s' * (n != 1)}"


def _differing(was: Any, now: Any, prefix: str = "") -> list[str]:
    """The paths (``body.label``) where two JSON values differ; ``changes`` whole."""
    if not (isinstance(was, Mapping) and isinstance(now, Mapping)) or prefix == "changes":
        return [prefix or "(the action)"]
    found: list[str] = []
    for key in sorted(set(was) | set(now)):
        if was.get(key) != now.get(key):
            found += _differing(was.get(key), now.get(key), f"{prefix}.{key}" if prefix else key)
    return found


def inputs_arguments(inputs: PlanInputs) -> dict[str, tuple[str, ...]]:
    """What ``plan`` was given, as its command line says it: flag -> its values, sorted
    without repeats (PATHs normalised, ``.`` when none: ``manifests/`` and
    ``manifests`` are one folder). ``apply --plan`` compares the file's with its own."""
    paths = [os.path.normpath(p) for p in inputs.paths] or ["."]
    return {
        "PATH": tuple(sorted(set(paths))),
        "--project": (inputs.project_name,) if inputs.project_name else (),
        "--destroy": ("",) if inputs.destroy else (),
        **{
            flag: tuple(sorted(set(values)))
            for flag, values in (
                ("--replace", inputs.replace),
                ("--override-policy", inputs.overrides),
                ("--target", inputs.targets),
                ("--exclude", inputs.excludes),
                ("--selector", inputs.selectors),
            )
        },
    }


def command_line(given: Mapping[str, tuple[str, ...]]) -> str:
    """``given`` (:func:`inputs_arguments`) as arguments to type, each quoted for a shell."""
    words = [p for p in given.get("PATH", ()) if p != "."] or ["."]
    for flag, values in given.items():
        if flag != "PATH":
            words += [w for v in values for w in (flag, v) if w]
    return " ".join(shlex.quote(w) for w in words)
