"""The source of the JSON Schemas in ``reconciler/schemas/``.

The spec fields appear in a Session's ``spec`` and a Project's ``defaults``; writing the
schemas from one description keeps the two (and the two files) from drifting. A test
checks that the shipped files equal this output. Regenerate with
``python -m reconciler.manifest.schemagen``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, get_args

from reconciler.apifacts import (
    API_VERSION,
    ENV_NAME,
    ENV_NAME_PATTERN,
    HEADER_VALUE_PATTERN,
    LOOP_FIELDS,
    MAX_ITERATIONS,
    PROJECT_NAME_PATTERN,
    PROJECT_NAME_RULE,
    REPO_FIELDS,
    SESSION_ID_PATTERN,
    SESSION_NAME_PATTERN,
    SKILL_FIELDS,
    SKILL_REQUIRED_FIELDS,
)
from reconciler.fields import FIELDS, IGNORABLE_CHANGES, SpecField, spec_field
from reconciler.manifest.policyschema import policy_rule_schema, policy_schema
from reconciler.masking import CREDENTIAL_VARIABLES, PLAIN_ENV_KEY
from reconciler.model import MARKER_PREFIX, SESSION_STATES, Policy, PruneMode

__all__ = [
    "KINDS",
    "SCHEMA_BASE",
    "build_manifest_schema",
    "build_project_schema",
    "main",
    "render",
]

SCHEMA_BASE = "https://schemas.coder-reconciler.dev/v1/"
# The document kinds a manifest may hold.
KINDS = ("Project", "Session", "SessionSet", "Policy")
# A whole-string reference: enum-valued fields accept one in place of a literal.
WHOLE_REF_PATTERN = rf"^\$\{{env:{ENV_NAME}(:-[^}}]*)?\}}$"


_POLICY = Policy().to_manifest()


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _strings(description: str, *, unique: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "array",
        "description": description,
        "items": {"type": "string"},
    }
    if unique:
        schema["uniqueItems"] = True
    return schema


def _enum_or_ref(description: str, values: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "string",
        "description": description,
        "anyOf": [{"enum": list(values)}, {"pattern": WHOLE_REF_PATTERN}],
    }


_REPO_DESCRIPTIONS = {
    "repoId": "Repository identifier when available.",
    "type": "Repository type (e.g. GitHub, GitLab).",
    "provider": "Git provider identifier.",
    "owner": "Repository owner or organization.",
    "name": "Repository name.",
    "fullName": "Fully qualified repository name, e.g. acme/api.",
    "url": "Repository web URL.",
    "cloneUrl": "Repository clone URL.",
    "defaultBranch": "Default branch of the repository.",
    "branch": "Branch checked out in the session workspace.",
    "ref": "Ref checked out in the session workspace.",
    "commit": "Pinned commit SHA for the session workspace.",
    "path": "Subpath of the repository mounted in the session.",
    "rootPath": "Absolute workspace root path for the repository.",
}


def _defs() -> dict[str, Any]:
    return {
        "repo": {
            "type": "object",
            "description": spec_field("repo").description,
            "additionalProperties": False,
            "properties": {k: _string(_REPO_DESCRIPTIONS[k]) for k in REPO_FIELDS},
        },
        "skill": {
            "type": "object",
            "description": "A skill attached to the session.",
            "additionalProperties": False,
            "required": list(SKILL_REQUIRED_FIELDS),
            "properties": {k: _skill_field(k) for k in SKILL_FIELDS},
        },
        "loop": {
            "type": "object",
            "description": spec_field("loop").description,
            "additionalProperties": False,
            "properties": {k: _LOOP_PROPERTIES[k] for k in LOOP_FIELDS},
        },
    }


_SKILL_DESCRIPTIONS = {
    "skillId": "Unique skill identifier.",
    "repo": "Repository slug of the skill source, e.g. acme/skills.",
    "name": "Human-readable skill name.",
    "url": "Canonical URL of the skill repository or page.",
}


def _skill_field(name: str) -> dict[str, Any]:
    schema = _string(_SKILL_DESCRIPTIONS[name])
    if name in SKILL_REQUIRED_FIELDS:
        schema["minLength"] = 1
    return schema


_LOOP_PROPERTIES: dict[str, Any] = {
    "goal": _string("High-level goal of the loop."),
    "maxIterations": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_ITERATIONS,
        "description": "Maximum loop iterations before completion.",
    },
    "autoContinue": {
        "type": "boolean",
        "description": "Whether the loop continues without manual approval.",
    },
    "allowDetached": {
        "type": "boolean",
        "description": "Whether the loop runs on with no client attached.",
    },
}


def _property(spec_field: SpecField) -> dict[str, Any]:
    """One spec field's schema, from its shape (``reconciler.fields``)."""
    description = spec_field.description
    shape = spec_field.shape
    if shape == "text":
        return _string(description)
    if shape == "enum":
        return _enum_or_ref(description, spec_field.accepted)
    if shape == "strings":
        return _strings(description, unique=spec_field.compare == "set")
    if shape == "tags":
        return {
            **_strings(description, unique=True),
            "items": {"type": "string", "not": {"pattern": "^" + MARKER_PREFIX}},
        }
    if shape == "skills":
        # A skill declared twice (the same id and repo, whatever else either says) is
        # refused by the model builder (``build.check_skills``), which a schema cannot say.
        return {"type": "array", "description": description, "items": {"$ref": "#/$defs/skill"}}
    if shape in ("repo", "loop"):
        return {"$ref": f"#/$defs/{shape}"}  # described there
    if shape == "repos":
        return {"type": "array", "description": description, "items": {"$ref": "#/$defs/repo"}}
    if shape == "env":
        return {
            "type": "object",
            # A secret map: the tool's own credentials are never referenced, not even here.
            "description": f"{description} Never the tool's own credentials "
            f"({', '.join(CREDENTIAL_VARIABLES)}).",
            "propertyNames": {"pattern": ENV_NAME_PATTERN},
            "additionalProperties": {"type": "string"},
        }
    # shape == "map": the key `reconciler` is the tool's own.
    return {
        "type": "object",
        "description": description,
        "propertyNames": {"not": {"const": "reconciler"}},
    }


def _spec_properties() -> dict[str, Any]:
    """The create payload fields of the Coder API, with their meaning for the reconciler."""
    return {f.name: _property(f) for f in FIELDS}


def _spec(with_state: bool) -> dict[str, Any]:
    props = _spec_properties()
    if with_state:
        props["state"] = {
            "type": "string",
            "enum": list(SESSION_STATES),
            "description": "Desired state: active (default), archived, or forgotten (the "
            "next apply stops managing the session: its marker goes, nothing else changes; "
            "then the document may be deleted). Not sent to the API.",
        }
        description = (
            "The create payload of the Coder API (same field names), plus state. A field "
            "left out is not managed; a field declared, even as [], is."
        )
    else:
        description = (
            "Values for any spec field a Session leaves out (the whole field: not merged)."
        )
    return {
        "type": "object",
        "description": description,
        "additionalProperties": False,
        "properties": props,
    }


def _header(kind: str) -> dict[str, Any]:
    return {
        "apiVersion": {
            "const": API_VERSION,
            "description": f"Manifest format version: always {API_VERSION}.",
        },
        "kind": {"const": kind, "description": f"Document kind: {kind}."},
    }


def _project() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The project: ownership scope of the managed sessions, defaults, "
        "and the safety policy. At most one per run.",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "name"],
        "properties": {
            **_header("Project"),
            "name": {
                "type": "string",
                "pattern": PROJECT_NAME_PATTERN,
                "description": "Project name, the ownership scope in marker tags: "
                f"{PROJECT_NAME_RULE}.",
            },
            "orgId": {
                "type": "string",
                "minLength": 1,
                "pattern": HEADER_VALUE_PATTERN,
                "description": "Organisation id (visible ASCII: it travels in a header); "
                "--org and AGENTUITY_ORG_ID win over it.",
            },
            PLAIN_ENV_KEY: _plain_env(),
            "previously": {
                "type": "array",
                "description": "Names this project had before: their sessions are this "
                "project's, their marker tags re-tagged in place with this name (a rename "
                "of the project, not a replacement of its sessions).",
                "uniqueItems": True,
                "items": {"type": "string", "pattern": PROJECT_NAME_PATTERN},
            },
            "defaults": {"$ref": "#/$defs/defaults"},
            "policy": {
                "type": "object",
                "description": "Safety policy for plan and apply.",
                "additionalProperties": False,
                "properties": {
                    "prune": {
                        "type": "string",
                        "enum": list(get_args(PruneMode)),
                        "default": _POLICY["prune"],
                        "description": "What happens to managed sessions no longer declared: "
                        "archive (default), delete or keep.",
                    },
                    "maxDestroyPercent": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 100,
                        "default": _POLICY["maxDestroyPercent"],
                        "description": "Archives, deletes and replacements above this share "
                        "of the managed sessions (when there are 10 or more) need --force.",
                    },
                    "protectLive": {
                        "type": "boolean",
                        "default": _POLICY["protectLive"],
                        "description": "Refuse to archive, delete or replace a live session "
                        "without --force (default true).",
                    },
                },
            },
        },
    }


def _plain_env() -> dict[str, Any]:
    return {
        "type": "array",
        "description": "Environment variables whose values are not secret (a branch name, "
        "a team): only these may be referenced with ${env:NAME} outside spec.env (label, "
        "tags, task, repo, metadata...), where the whole organisation can read them; "
        "plans show their values. Secrets belong under spec.env. Never the tool's own "
        f"credentials ({', '.join(CREDENTIAL_VARIABLES)}).",
        "uniqueItems": True,
        "items": {"type": "string", "pattern": ENV_NAME_PATTERN},
    }


def _previously() -> dict[str, Any]:
    return {
        "type": "array",
        "description": "Names this session was declared under before: the managed session "
        "is found under any of them and its marker re-tagged in place (a rename, not a "
        "replacement). No other session may declare or claim them.",
        "uniqueItems": True,
        "items": {"type": "string", "pattern": SESSION_NAME_PATTERN},
    }


def _session() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "One desired coding session.",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "name", "spec"],
        "properties": {
            **_header("Session"),
            "name": {
                "type": "string",
                "pattern": SESSION_NAME_PATTERN,
                "description": "Session name, its identity inside the project: lowercase "
                "letters, digits and '-', at most 63 characters.",
            },
            "previously": _previously(),
            "adopt": {
                "type": "string",
                "pattern": SESSION_ID_PATTERN,
                "description": "The id of an existing session to adopt as this one while "
                "no session is managed under its name, as `reconciler import` does: the "
                "plan tags it (and updates its label, tags...) instead of creating one; "
                "refused when it is missing, archived, managed already or its create-only "
                "fields differ. Ignored once a session is managed as the name.",
            },
            "spec": {"$ref": "#/$defs/spec"},
            "lifecycle": {"$ref": "#/$defs/lifecycle"},
        },
    }


def _lifecycle() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "How the reconciler treats this session.",
        "additionalProperties": False,
        "properties": {
            "preventDestroy": {
                "type": "boolean",
                "default": False,
                "description": "true: any plan that archives, deletes or replaces "
                "this session fails, even with --force; also once its document is "
                "removed, until a plan declaring false is applied (the session carries "
                "the protection in a tag).",
            },
            "ignoreChanges": {
                "type": "array",
                "description": "Mutable spec fields left alone (never updated, whether the "
                "hub or the manifest changed), and `status`: a paused session is left paused "
                "(never resumed).",
                "uniqueItems": True,
                "items": {"type": "string", "enum": list(IGNORABLE_CHANGES)},
            },
        },
    }


_TEMPLATED = (
    "Any string may use the template language ({{ item... }}); each generated session "
    "is checked like a written one."
)
_OWNER_NAME = r"^[^/\s]+/[^/\s]+$"


def _template_spec() -> dict[str, Any]:
    """A Session's spec in a template: the same fields, checked once rendered."""
    fields = [*_spec_properties(), "state"]
    return {
        "type": "object",
        "description": "The spec of every generated session. " + _TEMPLATED,
        "additionalProperties": False,
        "properties": {k: {"description": f"spec.{k} of a Session. {_TEMPLATED}"} for k in fields},
    }


def _generator() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Where the sessions come from: exactly one of items, matrix, repos.",
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "items": {
                "type": "array",
                "description": "One session per item (a string or a mapping), as `item`.",
                "items": {"type": ["string", "object"]},
            },
            "matrix": {
                "type": "object",
                "description": "One session per combination of the named lists (the cross "
                "product), as `item` ({name: value, ...}).",
                "minProperties": 1,
                "propertyNames": {"pattern": ENV_NAME_PATTERN},
                "additionalProperties": {"type": "array", "minItems": 1},
            },
            "repos": {
                "type": "array",
                "description": "One session per repository (owner/name, or fullName and "
                "branch), with spec.repo set; `item` is {fullName, owner, name, branch}.",
                "items": {
                    "anyOf": [
                        {"type": "string", "pattern": _OWNER_NAME},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["fullName"],
                            "properties": {
                                "fullName": {
                                    "type": "string",
                                    "pattern": _OWNER_NAME,
                                    "description": "The repository, owner/name.",
                                },
                                "branch": {
                                    "type": "string",
                                    "minLength": 1,
                                    "description": "The branch checked out.",
                                },
                            },
                        },
                    ]
                },
            },
        },
    }


def _session_set() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A template and a generator yielding ordinary sessions.",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "name", "generator", "template"],
        "properties": {
            **_header("SessionSet"),
            "name": {
                "type": "string",
                "pattern": SESSION_NAME_PATTERN,
                "description": "Set name (plans group its sessions under it): lowercase "
                "letters, digits and '-', at most 63 characters.",
            },
            "generator": _generator(),
            "template": {
                "type": "object",
                "description": "What each generated session declares. " + _TEMPLATED,
                "additionalProperties": False,
                "required": ["name", "spec"],
                "properties": {
                    "name": {
                        "type": "string",
                        "minLength": 1,
                        "description": "The session name pattern, e.g. "
                        "review-{{ item.name | slug }}; names must be unique in the project.",
                    },
                    "previously": {
                        "type": "array",
                        "description": "Old names of each session (patterns too).",
                        "items": {"type": "string"},
                    },
                    "spec": {"$ref": "#/$defs/templateSpec"},
                    "lifecycle": {"$ref": "#/$defs/lifecycle"},
                },
            },
        },
    }


def build_manifest_schema() -> dict[str, Any]:
    """One manifest document: a Project or a Session, chosen by ``kind``."""
    defs = _defs()
    defs["spec"] = _spec(with_state=True)
    defs["defaults"] = _spec(with_state=False)
    defs["project"] = _project()
    defs["session"] = _session()
    defs["lifecycle"] = _lifecycle()
    defs["templateSpec"] = _template_spec()
    defs["sessionSet"] = _session_set()
    defs["policy"] = policy_schema()
    defs["policyRule"] = policy_rule_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE + "manifest.schema.json",
        "title": "coder-reconciler manifest document",
        "description": "One YAML document of a coder-reconciler manifest: kind Project, "
        "Session, SessionSet or Policy.",
        "type": "object",
        "required": ["apiVersion", "kind"],
        "properties": {
            "apiVersion": {
                "const": API_VERSION,
                "description": f"Manifest format version: always {API_VERSION}.",
            },
            "kind": {
                "enum": list(KINDS),
                "description": "Document kind: Project, Session, SessionSet or Policy.",
            },
        },
        "allOf": [
            {
                "if": {"required": ["kind"], "properties": {"kind": {"const": "Project"}}},
                "then": {"$ref": "#/$defs/project"},
            },
            {
                "if": {"required": ["kind"], "properties": {"kind": {"const": "Session"}}},
                "then": {"$ref": "#/$defs/session"},
            },
            {
                "if": {"required": ["kind"], "properties": {"kind": {"const": "SessionSet"}}},
                "then": {"$ref": "#/$defs/sessionSet"},
            },
            {
                "if": {"required": ["kind"], "properties": {"kind": {"const": "Policy"}}},
                "then": {"$ref": "#/$defs/policy"},
            },
        ],
        "$defs": defs,
    }


def build_project_schema() -> dict[str, Any]:
    """A Project document alone."""
    defs = _defs()
    defs["defaults"] = _spec(with_state=False)
    project = _project()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE + "project.schema.json",
        "title": "coder-reconciler Project document",
        **project,
        "$defs": defs,
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write both schemas into ``reconciler/schemas/``."""
    target = Path(__file__).resolve().parent.parent / "schemas"
    for name, schema in (
        ("manifest", build_manifest_schema()),
        ("project", build_project_schema()),
    ):
        (target / f"{name}.schema.json").write_text(render(schema), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
