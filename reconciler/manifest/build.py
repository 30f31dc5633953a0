"""Checked documents -> the model: one Project, DesiredSessions, and cross-file checks.

Cross-document rules live here: at most one Project, unique session names, ``--project``
agreeing with the Project document. Project defaults fill whole spec fields a Session
leaves out (what they add counts against the run's expansion budget: one large default
inherited by every session is refused like an alias bomb); visibility aliases are
normalised; ``${env:...}`` references outside ``env`` are resolved into ``resolved``
where set, their unset names listed per top-level field. Where a reference may appear
at all is ``manifest.secrecy``'s rule, checked here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.apifacts import (
    BODY_ALLOWANCE_BYTES,
    MAX_BODY_BYTES,
    MAX_BODY_DEPTH,
    NO_BLANK_FIELDS,
    NON_BLANK_FIELDS,
    PROJECT_NAME_PATTERN,
    PROJECT_NAME_RULE,
    body_depth,
    encoded_size,
    is_blank,
)
from reconciler.errors import EnvNotTextError, ManifestError
from reconciler.fields import FIELDS, SECRET_FIELDS, normalise
from reconciler.manifest.budget import BudgetExceeded, ExpansionBudget, size_of
from reconciler.manifest.envref import (
    NAME_RE,
    REF_PREFIX,
    REF_RE,
    as_written_is_secret_free,
    find_malformed,
    find_refs,
    literal_form,
    misspelled_reference,
    not_text_names,
    ref_strings,
    resolve_partial,
    resolved_growth,
    sole_reference,
    unset_names,
    whole_value_variable,
)
from reconciler.manifest.secrecy import (
    TOKEN_SOURCES,
    api_tokens,
    plain_env_errors,
    reference_errors,
    token_sources,
)
from reconciler.manifest.sets import GeneratedDocument
from reconciler.manifest.validation import fast_check, field_path, reference_errors_of
from reconciler.manifest.yamlread import KeyReader, RawDocument, key_position
from reconciler.masking import CREDENTIAL_VARIABLES, PLAIN_ENV_KEY, strings_in
from reconciler.model import (
    DesiredSession,
    Lifecycle,
    Policy,
    Project,
    SourceLocation,
    skill_identity,
)
from reconciler.textsafe import escape_controls

__all__ = [
    "Built",
    "ManifestWarning",
    "build_model",
    "identity_errors",
    "oversized_creates",
    "project_org_id",
    "read_warnings",
]

_PROJECT_NAME_RE = re.compile(PROJECT_NAME_PATTERN)
# What the budget's message names when resolved references spend it (never a value).
_RESOLVING = "resolving ${env:...} references"
# Fields whose value may be a whole ${env:...} reference in place of one of a few words.
_ENUM_FIELDS = {f.name: f.accepted for f in FIELDS if f.enum}
# Fields whose short forms are written in their long form (``org`` -> ``organization``).
_ALIASED = tuple(f.name for f in FIELDS if f.enum_aliases)
# A schema rule a resolved value breaks, in words (others by the keyword's name).
_RULE_WORDS = {
    "minLength": "empty",
    "pattern": "not of the form the field takes",
    "maxLength": "too long",
    "type": "of the wrong type",
    "not": "a value the field reserves (reconciler: tags are the tool's)",
    "enum": "not one of the values the field takes",
    "const": "not the value the field takes",
    "minimum": "too small",
    "maximum": "too large",
}


@dataclass(frozen=True)
class ManifestWarning:
    """Something worth saying that does not stop the command (an unset variable)."""

    file: str
    line: int | None
    column: int | None
    message: str

    def located(self) -> str:
        """``file:line:col: message`` on one line, as ``ManifestError.located``: control
        characters a file's name carries (a newline, a CI command after it) escaped."""
        where = ":".join(str(p) for p in (self.file, self.line, self.column) if p is not None)
        return escape_controls(f"{where}: {self.message}" if where else self.message)

    def __str__(self) -> str:
        return self.located()

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }


@dataclass
class Built:
    project: Project | None
    sessions: list[DesiredSession]
    errors: list[ManifestError]
    warnings: list[ManifestWarning]


_NO_LIFECYCLE = Lifecycle()


def _source(doc: RawDocument) -> SourceLocation:
    return SourceLocation(doc.file, doc.line, doc.column)


def _reference_at(doc: RawDocument, top: str, key: str, names: frozenset[str]) -> SourceLocation:
    """Where ``doc`` first references one of the unset ``names`` with no default in its
    field ``top.key`` (an unset variable is named at its reference, not at the
    session); ``doc`` itself when that place is past the positions it keeps."""
    for path, text in doc.reference_strings():
        if path[:2] != (top, key):
            continue
        if any(m["name"] in names and m["default"] is None for m in REF_RE.finditer(text)):
            known = doc.known_position(path)
            return SourceLocation(doc.file, *known) if known else _source(doc)
    return _source(doc)


def _at(doc: RawDocument, path: Sequence[Any], message: str) -> ManifestError:
    return doc.error(path, message)


def _normalised(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` with every alias in its long form (a reference is left as written)."""
    out = dict(spec)
    for key in _ALIASED:
        if isinstance(out.get(key), str):
            out[key] = normalise(key, out[key])
    return out


# Where each kind of document holds the spec of the sessions it declares (its ``env``
# among it): what a refused document is read as far as.
_SPEC = ("spec",)  # a Session's (or an unreadable kind's)
_SPEC_AT: dict[str, tuple[str, ...]] = {
    "Session": _SPEC,
    "Project": ("defaults",),
    "SessionSet": ("template", "spec"),  # a refused set's only: a valid one's sessions
}


def _resolved_at(path: Sequence[str | int]) -> bool:
    """Whether a reference at ``path`` of a document is one a valid document resolves
    (in a spec, a set's template or the Project's defaults): not a name, a kind or a
    set's item, which a refused document may hold."""
    return any(tuple(path[: len(at)]) == at for at in _SPEC_AT.values())


def _unset_warnings(
    docs: Sequence[RawDocument],
    environ: Mapping[str, str],
    refused: Collection[int] = frozenset(),
) -> list[ManifestWarning]:
    """One warning per unset variable referenced without a default, at its first
    reference, with how many more references it has: a secret referenced by every
    session of a large estate, unset where the manifests are only planned or validated
    (a pull request's job), is one line, not one per session. ``refused``: ids of
    documents among ``docs`` the checks refused, whose references count only where a
    valid document's are resolved, and only when well formed (else their errors say
    it). The tool's own credentials are never a warning: referenced, they are an error."""
    # name -> [the first reference's file, line and column, how many references]
    found: dict[str, list[Any]] = {}
    # Each text's unset names, read once: the same reference recurs session after session.
    unset_in: dict[str, list[str]] = {}
    seen: set[tuple[str, int, int]] = set()  # a place is counted once (aliases)
    for doc in docs:
        checked = id(doc) in refused
        for ref in doc.refs:
            if checked and (not _resolved_at(ref.path) or find_malformed(ref.value)):
                continue
            names = unset_in.get(ref.value)
            if names is None:
                names = unset_in[ref.value] = [
                    m["name"]
                    for m in REF_RE.finditer(ref.value)
                    if m["default"] is None
                    and m["name"] not in environ
                    and m["name"] not in CREDENTIAL_VARIABLES
                ]
            if not names or (doc.file, ref.line, ref.column) in seen:
                continue
            seen.add((doc.file, ref.line, ref.column))
            planned = not _under_secret(ref.path)
            for name in dict.fromkeys(names):
                first = found.get(name)
                if first is None:
                    found[name] = [doc.file, ref.line, ref.column, 1, planned]
                else:
                    first[3] += 1
                    first[4] = first[4] or planned
    warnings: list[ManifestWarning] = []
    for name, (file, line, column, count, planned) in found.items():
        more = (
            f"; {count - 1:,} more reference{'s' if count > 2 else ''} to it" if count > 1 else ""
        )
        # A plan resolves the references outside env (plain variables, shown in plans);
        # those under env only an apply that sends them (a create, a replacement).
        stops = (
            "a plan or apply that needs it will stop"
            if planned
            else "an apply that sends it will stop; a plan does not need it"
        )
        message = f"${{env:{name}}} is not set ({stops}){more}"
        warnings.append(ManifestWarning(file, line, column, message))
    return warnings


def _under_secret(path: Sequence[str | int]) -> bool:
    """Whether a reference at ``path`` is in a secret field (``env``) of a spec, a set's
    template or the Project's defaults: resolved only in the bodies an apply sends."""
    return any(
        len(path) > len(at) and tuple(path[: len(at)]) == at and path[len(at)] in SECRET_FIELDS
        for at in _SPEC_AT.values()
    )


def _env_block(doc: RawDocument) -> tuple[tuple[str, ...], Any]:
    """``(path, env)``: where ``doc`` keeps its ``env`` mapping, and the mapping."""
    kind = doc.value.get("kind")
    where = _SPEC_AT.get(kind, _SPEC) if isinstance(kind, str) else _SPEC
    block: Any = doc.value
    for part in where:  # a session's: one step
        block = block.get(part) if isinstance(block, Mapping) else None
    return where, block.get("env") if isinstance(block, Mapping) else None


def _names_credential(text: str) -> bool:
    return any(m["name"] in CREDENTIAL_VARIABLES for m in REF_RE.finditer(text))


def _literal_env_warnings(
    docs: Sequence[RawDocument], plain: Collection[str] | None
) -> list[ManifestWarning]:
    """A warning for each ``env`` key whose value is written literally somewhere: in a
    Session's spec (or a SessionSet's template), or in the Project's defaults (once, not
    per session inheriting it). Such a value is a secret kept in the manifest, in git,
    and hashed into the marker tag the organisation reads; a saved plan refuses it
    (``planfile.literal_env_values``). One warning per key, at its first occurrence with
    how many documents repeat it (an estate writing ``LEVEL: debug`` into every session
    gets one line, not thousands). The value is never shown. ``plain`` None: the
    Project's ``plainEnv`` is not known (no Project read, or one refused), so a lone
    reference with a default is not warned of (the default may be a plain one's). A
    value naming the tool's own credentials is an error, not this warning."""
    # Each text decided once: the same value recurs session after session.
    free: dict[str, bool] = {}
    # (where, key) -> [its first document, how many documents, the first one's value]
    found: dict[tuple[tuple[str, ...], str], list[Any]] = {}
    for doc in docs:
        top, env = _env_block(doc)
        if not isinstance(env, Mapping):
            continue
        for key, value in env.items():
            # Only in a refused document (its errors say what is wrong): a value that is
            # not text, a key that is no variable name (shown, it could break the line).
            if not isinstance(value, str) or not (isinstance(key, str) and NAME_RE.fullmatch(key)):
                continue
            secret_free = free.get(value)
            if secret_free is None:
                secret_free = free[value] = (
                    as_written_is_secret_free(value, plain or ())
                    or (plain is None and sole_reference(value) is not None)
                    or _names_credential(value)
                )
            if secret_free:
                continue
            first = found.get((top, key))
            if first is None:
                found[(top, key)] = [doc, 1, value]
            else:
                first[1] += 1
    warnings: list[ManifestWarning] = []
    readers: dict[str, KeyReader] = {}  # each file read again at most once
    for (top, key), (doc, count, value) in found.items():
        path = [*top, "env", key]
        exact = None
        if not isinstance(doc, GeneratedDocument):  # (a set's: at its template)
            exact = key_position(doc.file, (doc.line, doc.column), path, readers)
        line, column = exact or doc.position(path)
        how = literal_form(value)
        if isinstance(doc, GeneratedDocument):
            how = doc.in_set(how)
        others = count - 1
        more = f" (and in {others:,} more session{'s' if others > 1 else ''})"
        meant = misspelled_reference(value)
        if meant is not None:  # `${ENV:BAR}`: a reference to BAR was meant
            advice = (
                f'it reads as text, not a reference: write "${{env:{meant}}}" (lowercase '
                f"env, in braces) to take {meant}'s value where apply runs"
            )
        else:
            advice = (
                "a secret in the manifest is in git and in the marker hash; write "
                f'"${{env:{whole_value_variable(key, value)}}}" alone and set it where '
                "apply runs (`plan --out` refuses it)"
            )
        warnings.append(
            ManifestWarning(
                doc.file,
                line,
                column,
                f"{'.'.join(top)}.env.{key} {how}{more if others else ''}: {advice}",
            )
        )
    for reader in readers.values():
        reader.close()
    return warnings


# What a field (or orgId) whose plain references put the token together is told.
_TOKEN_PUT_TOGETHER = (
    f"its references put the API token (the value of {TOKEN_SOURCES}) together in it; "
    "it can never be shown"
)


class _Builder:
    def __init__(self, environ: Mapping[str, str], budget: ExpansionBudget) -> None:
        self.environ = environ
        self.tokens = api_tokens(environ)  # looked for in what plain references resolve to
        self.budget = budget
        self.errors: list[ManifestError] = []
        self._said: set[tuple[str | None, int | None, int | None, str]] = set()
        self.deep_defaults = False
        self.default_sizes: dict[str, int] = {}
        self.plain_env: frozenset[str] = frozenset()  # the Project's plainEnv
        # False when no Project was read (files checked alone): which variables are
        # plain is unknown, so no reference outside env is resolved (its value may be a
        # secret: policies and checks read ``resolved``).
        self.plain_known = True
        self._not_text_defaults: set[str] = set()  # defaults already said not UTF-8
        self._project_doc: RawDocument | None = None
        self._said_skills = False  # the defaults' resolved skills judged already
        self.with_env: list[RawDocument] = []  # the sessions' documents declaring env

    def _not_text(
        self, doc: RawDocument, key: str, value: Any, names: set[str], inherited: bool
    ) -> None:
        """Field ``key`` references variables holding bytes that are not UTF-8: said at
        the first such reference; from the Project defaults, once for the whole run."""
        message = f"spec.{key}: {EnvNotTextError(names)}"
        if inherited:
            if key in self._not_text_defaults:
                return
            self._not_text_defaults.add(key)
            self._error(doc, [], message + " (value from the Project defaults)")
            return
        at = next(
            (path for path, text in ref_strings(value) if not_text_names(text, self.environ)),
            (),
        )
        self._error(doc, ["spec", key, *at], message)

    def _error(self, doc: RawDocument, path: Sequence[Any], message: str) -> None:
        """Record ``message`` at ``path`` of ``doc``. A SessionSet's template fails alike
        for every item it generates: said once, naming the set and the first item (as
        the loader says the schema's errors), not once per session."""
        error = _at(doc, path, message)
        if isinstance(doc, GeneratedDocument):
            key = (error.file, error.line, error.column, message)
            if key in self._said:
                return
            self._said.add(key)
            error = ManifestError(
                doc.in_set(message), file=error.file, line=error.line, column=error.column
            )
        self.errors.append(error)

    def project(self, docs: Sequence[RawDocument], project_name: str | None) -> Project | None:
        if project_name is not None and not _PROJECT_NAME_RE.fullmatch(project_name):
            self.errors.append(
                ManifestError(
                    f"--project {project_name!r} is not a valid project name: use "
                    f"{PROJECT_NAME_RULE}"
                )
            )
        # A second Project document is reported by the loader (identity_errors), which
        # sees the documents that failed the schema too; the first one is used here.
        if not docs:
            self.plain_known = project_name is not None  # a named one declares none
            return Project(name=project_name) if project_name else None
        doc = docs[0]
        self._project_doc = doc
        value = doc.value
        if project_name is not None and project_name != value["name"]:
            self.errors.append(
                _at(
                    doc,
                    ["name"],
                    f"--project {project_name!r} does not match the Project name {value['name']!r}",
                )
            )
        policy = value.get("policy", {})
        previously = tuple(value.get("previously", ()))
        if value["name"] in previously:
            where = ["previously", previously.index(value["name"])]
            self.errors.append(_at(doc, where, "previously: a project is not its own old name"))
        self.plain_env = frozenset(value.get(PLAIN_ENV_KEY, ()))
        org_id = project_org_id(value, self.environ)
        if org_id is not None and self._puts_token(value["orgId"]):
            self._error(doc, ["orgId"], f"orgId: {_TOKEN_PUT_TOGETHER}")
            org_id = None  # never kept: it would name the org in every request and plan
        defaults = _normalised(value.get("defaults", {}))
        if "skills" in defaults:
            # As written; with references, also as they resolve, at the first session
            # inheriting them (unless already said here).
            self._said_skills = self.check_skills(doc, defaults["skills"], "defaults")
        return Project(
            name=value["name"],
            org_id=org_id,
            defaults=defaults,
            policy=Policy.from_manifest(policy),
            source=_source(doc),
            plain_env=self.plain_env,
            previously=previously,
        )

    def sessions(
        self, docs: Sequence[RawDocument], defaults: Mapping[str, Any]
    ) -> list[DesiredSession]:
        default_refs = {k for k, v in defaults.items() if _has_ref(v)}
        self.deep_defaults = body_depth(dict(defaults), MAX_BODY_DEPTH) > MAX_BODY_DEPTH
        self.default_sizes = {k: size_of(v) for k, v in defaults.items()}
        first_by_name: dict[str, RawDocument] = {}
        sessions: list[DesiredSession] = []
        for doc in docs:
            value = doc.value
            name: str = value["name"]
            if name in first_by_name:
                continue  # a duplicate name: reported by identity_errors
            first_by_name[name] = doc
            try:
                sessions.append(self.session(doc, defaults, default_refs))
            except BudgetExceeded as exc:  # once: every later session would say the same
                self._error(doc, ["spec"], f"spec: {exc}")
                break
        return sessions

    def session(
        self, doc: RawDocument, defaults: Mapping[str, Any], default_refs: set[str]
    ) -> DesiredSession:
        value = doc.value
        written: dict[str, Any] = value["spec"]
        if "env" in written:
            self.with_env.append(doc)  # for _literal_env_warnings: not every document
        spec = dict(written)
        state = spec.pop("state", "active")
        inherited = [k for k in defaults if k not in spec]
        self.budget.spend_bytes(
            sum(self.default_sizes[k] for k in inherited), "merging the Project defaults"
        )
        for key in inherited:
            spec[key] = defaults[key]
        spec = _normalised(spec)
        resolved: dict[str, Any] = spec
        unset: dict[str, frozenset[str]] = {}
        unset_at: dict[str, SourceLocation] = {}
        unjudged: dict[str, frozenset[str]] = {}  # left unresolved: not UTF-8
        holding: Sequence[str] = ()
        if doc.refs or any(k in default_refs for k in inherited):
            holding = _holding_refs(doc, spec, inherited, default_refs)
            # What the references add, charged before anything is copied: secret fields
            # too (apply resolves them into the request body).
            growth = sum(resolved_growth(spec[key], self.environ) for key in holding)
            self.budget.spend_bytes(growth, _RESOLVING)
            resolved = dict(spec)
            for key in holding:  # most fields hold no reference: nothing to walk
                field_value = spec[key]
                if key in SECRET_FIELDS:  # secret: resolved only in apply's request bodies
                    missing = unset_names(field_value, self.environ)
                elif not self.plain_known:
                    # Left as written, judged by no later check: only the Project can
                    # say the variables are plain (``reference_errors`` warns of them).
                    unjudged[key] = frozenset(find_refs(field_value))
                    missing = set()
                elif not_text := not_text_names(field_value, self.environ):
                    # Bytes that are not UTF-8: named at the reference, the value never
                    # shown, left unresolved (no request could carry it) and judged by
                    # no later check.
                    self._not_text(doc, key, field_value, not_text, key in inherited)
                    unjudged[key] = frozenset(not_text)
                    missing = set()
                else:
                    resolved[key], missing = resolve_partial(field_value, self.environ)
                    if self._puts_token(field_value):
                        # The field would show the token to the organisation: never kept
                        # resolved.
                        resolved[key] = field_value
                        self._error(
                            doc,
                            ["spec", key] if key not in inherited else [],
                            f"spec.{key}: {_TOKEN_PUT_TOGETHER}",
                        )
                if missing:
                    unset[key] = frozenset(missing)
                    if key in inherited and self._project_doc is not None:
                        at = _reference_at(self._project_doc, "defaults", key, unset[key])
                    else:
                        at = _reference_at(doc, "spec", key, unset[key])
                    unset_at[key] = at
        skipped = {**unset, **unjudged} if unjudged else unset  # no check judges these
        if holding:
            self.check_resolved_enums(doc, spec, resolved, skipped, inherited)
            self.check_resolved_values(doc, resolved, holding, skipped, inherited)
        if "skills" not in inherited:
            if "skills" in resolved:
                self.check_skills(doc, resolved["skills"], "spec")
        elif "skills" in holding and self._project_doc is not None and not self._said_skills:
            # The defaults' skills as their references resolve: the same for every
            # session, so judged once, at the Project (as written, when it was read).
            self._said_skills = True
            self.check_skills(self._project_doc, resolved["skills"], "defaults")
        self.check_request(doc, resolved, skipped, inherited)
        lifecycle = value.get("lifecycle")
        return DesiredSession(
            name=value["name"],
            spec=spec,
            resolved=resolved,
            state=state,
            lifecycle=Lifecycle(
                prevent_destroy=lifecycle.get("preventDestroy", False),
                ignore_changes=tuple(lifecycle.get("ignoreChanges", ())),
            )
            if lifecycle
            else _NO_LIFECYCLE,  # most sessions declare none: one value for all of them
            source=_source(doc),
            unset_refs=unset,
            unset_at=unset_at,
            previously=tuple(value.get("previously", ())),
            adopt=value.get("adopt"),
            set_name=doc.set_name if isinstance(doc, GeneratedDocument) else None,
            plain_env=self.plain_env,
        )

    def check_resolved_enums(
        self,
        doc: RawDocument,
        spec: Mapping[str, Any],
        resolved: dict[str, Any],
        unset: Mapping[str, frozenset[str]],
        inherited: Sequence[str],
    ) -> None:
        for key, allowed in _ENUM_FIELDS.items():
            current = resolved.get(key)
            if not isinstance(current, str) or key in unset:
                continue
            if current not in allowed:
                where = "defaults" if key in inherited else "spec"
                # Never the value: it comes from the environment, and may be a secret.
                spelled = spec.get(key)
                message = (
                    f"spec.{key}: {spelled} resolves to a value that is not one of "
                    f"{', '.join(allowed)} (the value is not shown: it comes from the "
                    "environment)"
                )
                if where == "defaults":
                    message += " (value from the Project defaults)"
                self._error(doc, ["spec", key], message)
            else:  # a reference resolved to a short form: the long one
                resolved[key] = normalise(key, current)

    def _puts_token(self, written: Any) -> bool:
        """Whether plain references put the API token into ``written`` as it resolves:
        pieces of it in several variables, put together (``secrecy.token_sources``, each
        string judged alone). Text holding it as written, or a default used, is not
        theirs to answer for (a placeholder token that is a word)."""
        if not self.tokens:
            return False
        for text in strings_in(written):
            sources = token_sources(text, self.environ, self.tokens)
            if sources and sources <= self.plain_env:  # (another reference is refused)
                return True
        return False

    def check_skills(self, doc: RawDocument, skills: Any, where: str) -> bool:
        """A skill declared twice (the same ``model.skill_identity``) in ``where``
        (``spec``, or a Project's ``defaults``):
        the hub would attach it twice, and as the plan compares skills as a set,
        dropping the repeat later would leave it there. Only positions are said: the
        values may come from the environment. True when one was found."""
        first: dict[tuple[Any, ...], int] = {}
        found = False
        for index, skill in enumerate(skills if isinstance(skills, list | tuple) else ()):
            key = skill_identity(skill)
            if key is None:
                continue
            if key not in first:
                first[key] = index
                continue
            found = True
            message = (
                f"{where}.skills[{index}]: the same skill (skillId and repo) as "
                f"{where}.skills[{first[key]}]; declare each skill once"
            )
            self._error(doc, [where, "skills"], message)
        return found

    def check_resolved_values(
        self,
        doc: RawDocument,
        resolved: Mapping[str, Any],
        holding: Sequence[str],
        unset: Mapping[str, frozenset[str]],
        inherited: Sequence[str],
    ) -> None:
        """The schema's rules on what plain references resolve to (a skill id that
        resolves to "", say): the manifest as written passed them, the request would
        not. Enums are :meth:`check_resolved_enums`'; secret fields are never read."""
        keys = [
            k
            for k in holding
            if k not in SECRET_FIELDS and k not in unset and k not in _ENUM_FIELDS
        ]
        if not keys:
            return
        candidate = {**doc.value, "spec": {k: resolved[k] for k in keys}}
        if fast_check().is_valid(candidate):
            return
        seen: set[str] = set()
        # jsonschema's errors, else (the two disagree) jsonschema-rs's: never let through.
        found = [(list(e.absolute_path), e.validator) for e in reference_errors_of(candidate)]
        found = found or [(list(e.instance_path), "") for e in fast_check().iter_errors(candidate)]
        for path, rule in found:
            if path[:1] != ["spec"] or len(path) < 2 or path[1] not in keys:
                continue
            where = field_path(path)
            if where in seen:
                continue
            seen.add(where)
            # Never the value: it comes from the environment.
            message = (
                f"{where}: what its ${{env:...}} reference resolves to is not valid here "
                f"({_RULE_WORDS.get(rule, rule) or 'refused'}; the value is not shown: "
                "it comes from the environment)"
            )
            if path[1] in inherited:
                message += " (value from the Project defaults)"
            # At the reference itself (the reader kept where each one is).
            self._error(doc, path if path[1] not in inherited else [], message)

    def check_request(
        self,
        doc: RawDocument,
        body: Mapping[str, Any],
        unset: Mapping[str, frozenset[str]],
        inherited: Sequence[str],
    ) -> None:
        """What the hub would refuse in this session's create body (apifacts' rules).

        ``body`` is the spec with the Project defaults merged and the references that
        can be resolved, resolved: what apply sends, but for the tool's own additions
        (``BODY_ALLOWANCE_BYTES``).
        """

        def fail(key: str | None, message: str) -> None:
            if key is not None and key in inherited:
                message += " (value from the Project defaults)"
            where = ["spec", key] if key is not None and key not in inherited else []
            self._error(doc, where, message)

        for key in NON_BLANK_FIELDS:
            text = body.get(key)
            if text is None:
                fail(None, f"spec.{key} is required: the hub refuses a session without one")
            elif isinstance(text, str) and key not in unset and is_blank(text):
                fail(key, f"spec.{key} must not be empty or blank")
        for key in NO_BLANK_FIELDS:
            text = body.get(key)
            if isinstance(text, str) and key not in unset and is_blank(text):
                fail(key, f"spec.{key} must not be empty or blank (leave it out for none)")
        if "loop" in body and body.get("workflowMode") == "standard":
            fail("loop", "spec.loop: loop settings need workflowMode loop (or no workflowMode)")
        # Depth: the body is level 1. The document's own depth bounds the spec's (it is
        # level 2 there), so only a deep document or deep defaults need the walk.
        if doc.depth > MAX_BODY_DEPTH or (inherited and self.deep_defaults):
            for key, field_value in body.items():
                if body_depth(field_value, MAX_BODY_DEPTH) + 1 > MAX_BODY_DEPTH:
                    fail(key, f"spec.{key} is nested more than {MAX_BODY_DEPTH} levels deep")
                    return
        try:
            size = encoded_size(body)
        except UnicodeEncodeError:
            bad = next(k for k in body if not _encodable(body[k]))
            fail(bad, f"spec.{bad} holds text that is not valid Unicode (a lone surrogate)")
            return
        except ValueError:  # a number JSON cannot write: a template's inf, a huge integer
            bad = next(k for k in body if not _encodable(body[k]))
            fail(bad, f"spec.{bad} holds a number JSON cannot carry (infinite, or too long)")
            return
        limit = MAX_BODY_BYTES - BODY_ALLOWANCE_BYTES
        if size > limit:
            largest = max(body, key=lambda k: encoded_size(body[k]))
            fail(
                largest,
                f"spec: the create request would be {size} bytes, over the {limit} a "
                f"manifest may use (the hub takes {MAX_BODY_BYTES}); spec.{largest} is "
                f"{encoded_size(body[largest])} of them",
            )


def oversized_creates(
    creating: Sequence[DesiredSession], environ: Mapping[str, str]
) -> list[ManifestError]:
    """The sessions to create (or replace) whose create request, ``env`` values resolved
    as apply sends them, would pass the hub's limit: measured, the values never kept or
    shown. Only a create carries ``env`` (it is create-only), so a value that grew on a
    session that exists refuses nothing."""
    limit = MAX_BODY_BYTES - BODY_ALLOWANCE_BYTES
    errors = []
    not_text: set[str] = set()
    needing: list[DesiredSession] = []
    for d in creating:
        secret = {k: d.spec[k] for k in SECRET_FIELDS if k in d.spec}
        if next(ref_strings(secret), None) is None:
            continue  # no reference: measured as written when loaded
        bad = not_text_names(secret, environ)
        if bad:  # apply could not send the request: said once below, before any is sent
            not_text |= bad
            needing.append(d)
            continue
        body = {**d.resolved, **{k: resolve_partial(v, environ)[0] for k, v in secret.items()}}
        size = encoded_size(body)
        if size > limit:
            shares = ", ".join(f"spec.{k} is {encoded_size(body[k])}" for k in secret)
            errors.append(
                ManifestError(
                    f"{d.name}: the create request would be {size} bytes once its env "
                    f"values are resolved, over the {limit} a manifest may use (the hub "
                    f"takes {MAX_BODY_BYTES}); {shares} of them",
                    file=d.source.file if d.source else None,
                    line=d.source.line if d.source else None,
                    column=d.source.column if d.source else None,
                )
            )
    if needing:
        first = needing[0].source
        errors.append(
            ManifestError(
                str(EnvNotTextError(not_text, where=[f"create {d.name}" for d in needing])),
                file=first.file if first else None,
                line=first.line if first else None,
                column=first.column if first else None,
            )
        )
    return errors


def _encodable(value: Any) -> bool:
    try:
        encoded_size(value)
    except ValueError:  # a lone surrogate (UnicodeEncodeError), inf, a huge integer
        return False
    return True


def project_org_id(value: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    """The orgId of a checked Project document, references resolved (None when unset)."""
    org_id = value.get("orgId")
    if isinstance(org_id, str) and REF_PREFIX in org_id:
        resolved, missing = resolve_partial(org_id, environ)
        return None if missing else str(resolved)
    return org_id if isinstance(org_id, str) else None


def _holding_refs(
    doc: RawDocument, spec: Mapping[str, Any], inherited: Sequence[str], default_refs: set[str]
) -> list[str]:
    """The fields of ``spec`` (the document's, defaults merged) holding a reference, in
    order: from where the reader saw references when it saw them all, else by a walk."""
    if not doc.refs_complete:
        return [key for key, value in spec.items() if _has_ref(value)]
    written = {path[1] for path, _ in doc.reference_strings() if path[:1] == ("spec",)}
    from_defaults = set(inherited)
    return [
        key for key in spec if (key in default_refs if key in from_defaults else key in written)
    ]


def _has_ref(value: Any) -> bool:
    if isinstance(value, str):
        return REF_PREFIX in value
    if isinstance(value, dict):
        return any(_has_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_ref(v) for v in value)
    return False


def identity_errors(docs: Sequence[RawDocument]) -> list[ManifestError]:
    """A second Project document, and every session name declared again.

    Run over every document whose ``kind`` and ``name`` can be read, valid or not, so
    these errors come in the same report as the schema errors of those documents.
    """
    errors: list[ManifestError] = []
    first_project: RawDocument | None = None
    first_by_name: dict[str, RawDocument] = {}
    first_set: dict[str, RawDocument] = {}
    for doc in docs:
        value = doc.value
        if not isinstance(value, Mapping):
            continue
        if value.get("kind") == "Project":  # a second one, whatever its name
            if first_project is None:
                first_project = doc
            else:
                where = f"{first_project.file}:{first_project.line}"
                errors.append(doc.error([], f"more than one Project document (first at {where})"))
        elif value.get("kind") == "Session" and isinstance(value.get("name"), str):
            name = value["name"]
            first = first_by_name.setdefault(name, doc)
            if first is not doc:
                # A clash with a set's session is reported at the set (its template.name).
                target, other, word = doc, first, "first at"
                if isinstance(first, GeneratedDocument) and not isinstance(doc, GeneratedDocument):
                    target, other, word = first, doc, "also declared at"
                message = f"duplicate session name {name!r} ({word} {_where(other)}"
                message += f"{_generated_by(other)}){_generated_by(target)}"
                errors.append(_at(target, ["name"], message))
        elif value.get("kind") == "SessionSet" and isinstance(value.get("name"), str):
            first = first_set.setdefault(value["name"], doc)
            if first is not doc:
                message = f"duplicate SessionSet name {value['name']!r} (first at {_where(first)})"
                errors.append(_at(doc, ["name"], message))
    renaming = [d for d in first_by_name.values() if "previously" in d.value]
    errors.extend(_rename_errors(first_by_name, renaming))
    return errors


def _generated_by(doc: RawDocument) -> str:
    if isinstance(doc, GeneratedDocument):
        return f", generated by SessionSet {doc.set_name!r} ({doc.item})"
    return ""


def _old_names(doc: RawDocument) -> list[tuple[int, str]]:
    previously = doc.value.get("previously")
    if not isinstance(previously, list):
        return []
    return [(i, old) for i, old in enumerate(previously) if isinstance(old, str)]


def _rename_errors(
    declared: Mapping[str, RawDocument], docs: Sequence[RawDocument]
) -> list[ManifestError]:
    """An old name (``previously``) of one of ``docs`` that is ``declared`` (each
    session's first document, by name), or that two of them claim.

    Either way the planner could not tell which session the managed one belongs to.
    """
    claimed: dict[str, RawDocument] = {}
    errors: list[ManifestError] = []
    for doc in docs:
        name = doc.value["name"]
        for index, old in _old_names(doc):
            where = ["previously", index]
            if old in declared:
                other = declared[old]
                errors.append(
                    _at(
                        doc,
                        where,
                        f"previously: {old!r} is declared as a session "
                        f"({other.file}:{other.line}); {name!r} cannot be renamed from it",
                    )
                )
                continue
            first = claimed.setdefault(old, doc)
            if first is not doc:
                errors.append(
                    _at(
                        doc,
                        where,
                        f"previously: {old!r} is also claimed by {first.value['name']!r} "
                        f"({first.file}:{first.line}); one old name renames one session",
                    )
                )
    return errors


def _where(doc: RawDocument) -> str:
    """``file:line:col`` of a document's ``name`` value (the document's line without it)."""
    at = doc.error(["name"], "")
    if at.line is None:
        return f"{doc.file}:{doc.line}"
    return f"{at.file}:{at.line}:{at.column}" if at.column else f"{at.file}:{at.line}"


def build_model(
    docs: Sequence[RawDocument],
    *,
    environ: Mapping[str, str],
    project_name: str | None,
    budget: ExpansionBudget | None = None,
    reading: Sequence[RawDocument] = (),
) -> Built:
    """The model from documents that passed the schema (``kind`` is Project or Session).

    ``budget`` is the run's expansion budget, charged with the defaults each session
    inherits. ``reading``: every document read, in order, when some were refused
    (:func:`read_warnings`).
    """
    builder = _Builder(environ, budget if budget is not None else ExpansionBudget())
    projects = [d for d in docs if d.value["kind"] == "Project"]
    session_docs = [d for d in docs if d.value["kind"] == "Session"]
    project = builder.project(projects, project_name)  # sets builder.plain_env
    # Secrets cannot leave through fields (manifest.secrecy).
    builder.errors += [e for doc in projects[:1] for e in plain_env_errors(doc, environ)]
    known = project.plain_env if project is not None else None  # None: no Project read
    unjudged: list[ManifestError] = []
    builder.errors += reference_errors(docs, known, environ, unjudged)
    defaults = project.defaults if project is not None else {}
    sessions = builder.sessions(session_docs, defaults)
    if reading:
        warnings = read_warnings(reading, docs, environ, known)
    else:
        literal = _literal_env_warnings([*projects[:1], *builder.with_env], known)
        warnings = _unset_warnings(docs, environ) + literal
    warnings += [ManifestWarning(e.file or "", e.line, e.column, e.detail) for e in unjudged]
    return Built(project, sessions, builder.errors, warnings)


def read_warnings(
    reading: Sequence[RawDocument],
    valid: Sequence[RawDocument],
    environ: Mapping[str, str],
    plain: Collection[str] | None,
) -> list[ManifestWarning]:
    """The warnings of manifests some documents of which were refused, said beside the
    errors so that fixing them is not the first a user hears of a secret in git: over
    every document ``reading`` holds (in reading order, so each warning is at its first
    place), the ``valid`` ones as when nothing is refused, the refused ones as far as
    they read (a Project's defaults, a session's spec, a set's template). ``plain``: the
    Project's plainEnv, None when no Project was read or it was refused."""
    valid_ids = {id(d) for d in valid}
    refused = {id(d) for d in reading if id(d) not in valid_ids and isinstance(d.value, Mapping)}
    looked_at = [d for d in reading if id(d) in valid_ids or id(d) in refused]
    # A valid set's env values are its sessions' (generated, valid); a Policy has none.
    with_env = [
        d for d in looked_at if id(d) in refused or d.value["kind"] in ("Project", "Session")
    ]
    return _unset_warnings(looked_at, environ, refused) + _literal_env_warnings(with_env, plain)
