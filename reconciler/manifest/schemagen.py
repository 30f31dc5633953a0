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
from typing import Any

from reconciler.apifacts import (
    API_VERSION,
    ENV_NAME_PATTERN,
    LOOP_FIELDS,
    MAX_ITERATIONS,
    MUTABLE_FIELDS,
    PROJECT_NAME_PATTERN,
    REPO_FIELDS,
    SESSION_NAME_PATTERN,
    SKILL_FIELDS,
    SKILL_REQUIRED_FIELDS,
    VISIBILITIES,
    VISIBILITY_ALIASES,
    WORKFLOW_MODES,
)
from reconciler.manifest.policyschema import policy_rule_schema, policy_schema
from reconciler.model import MARKER_PREFIX

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
WHOLE_REF_PATTERN = r"^\$\{env:[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$"
# Every visibility the hub accepts: the long forms and their aliases.
VISIBILITY = (*VISIBILITIES, *VISIBILITY_ALIASES)


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
            "description": "A repository mounted in the session. Create-only.",
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
            "description": "Loop mode settings (with workflowMode: loop). Create-only.",
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


def _spec_properties() -> dict[str, Any]:
    """The create payload fields of the Coder API, with their meaning for the reconciler."""
    return {
        "task": _string("Primary task prompt of the session. Create-only: a change replaces it."),
        "label": _string("Human-readable session label. Mutable (updated in place)."),
        "agent": _string("Default agent identifier (the hub reports it as defaultAgent). Mutable."),
        "visibility": _enum_or_ref(
            "Who can see the session: private, organization or collaborate "
            "(org and collab are accepted and normalised). Mutable.",
            VISIBILITY,
        ),
        "workflowMode": _enum_or_ref(
            "Workflow execution mode: standard or loop. Create-only.", WORKFLOW_MODES
        ),
        "loop": {"$ref": "#/$defs/loop"},
        "tags": {
            **_strings(
                "Tags for filtering, managed as a set (the reconciler's marker tag is added "
                "and kept; the prefix `reconciler:` is reserved for it). Mutable.",
                unique=True,
            ),
            "items": {"type": "string", "not": {"pattern": "^" + MARKER_PREFIX}},
        },
        "savedSkillIds": _strings(
            "Saved skill IDs attached at creation. Create-only.", unique=True
        ),
        "skillBucketIds": _strings(
            "Skill bucket IDs attached at creation. Create-only.", unique=True
        ),
        "skills": {
            "type": "array",
            "description": "Skill definitions attached to the session, managed as a set. Mutable.",
            "items": {"$ref": "#/$defs/skill"},
        },
        "repo": {"$ref": "#/$defs/repo"},
        "repos": {
            "type": "array",
            "description": "Several repositories mounted in the session. Create-only.",
            "items": {"$ref": "#/$defs/repo"},
        },
        "workspaceId": _string("Workspace the session belongs to. Create-only."),
        "env": {
            "type": "object",
            "description": "Environment variables injected into the session runtime. Values "
            "are secret (shown as (sensitive), never logged) and usually ${env:NAME} "
            "references. Create-only (hashed as written, so rotating a secret does not "
            "replace the session).",
            "propertyNames": {"pattern": ENV_NAME_PATTERN},
            "additionalProperties": {"type": "string"},
        },
        "metadata": {
            "type": "object",
            "description": "Arbitrary metadata recorded at creation (any JSON values). The "
            "key `reconciler` is reserved for the tool. Create-only.",
            "propertyNames": {"not": {"const": "reconciler"}},
        },
    }


def _spec(with_state: bool) -> dict[str, Any]:
    props = _spec_properties()
    if with_state:
        props["state"] = {
            "type": "string",
            "enum": ["active", "archived"],
            "description": "Desired state: active (default) or archived. Not sent to the API.",
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
                "description": "Project name, the ownership scope in marker tags: lowercase "
                "letters, digits and '-', at most 40 characters.",
            },
            "orgId": {
                "type": "string",
                "minLength": 1,
                "description": "Organisation id; --org and AGENTUITY_ORG_ID win over it.",
            },
            "defaults": {"$ref": "#/$defs/defaults"},
            "policy": {
                "type": "object",
                "description": "Safety policy for plan and apply.",
                "additionalProperties": False,
                "properties": {
                    "prune": {
                        "type": "string",
                        "enum": ["archive", "delete", "keep"],
                        "default": "archive",
                        "description": "What happens to managed sessions no longer declared: "
                        "archive (default), delete or keep.",
                    },
                    "maxDestroyPercent": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 100,
                        "default": 30,
                        "description": "Archives, deletes and replacements above this share "
                        "of the managed sessions (when there are 10 or more) need --force.",
                    },
                    "protectLive": {
                        "type": "boolean",
                        "default": True,
                        "description": "Refuse to archive, delete or replace a live session "
                        "without --force (default true).",
                    },
                },
            },
        },
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
                "this session fails, even with --force.",
            },
            "ignoreChanges": {
                "type": "array",
                "description": "Mutable spec fields whose drift is not corrected.",
                "uniqueItems": True,
                "items": {"type": "string", "enum": list(MUTABLE_FIELDS)},
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
                "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
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
