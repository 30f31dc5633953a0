"""The JSON Schema of a ``kind: Policy`` document (``schemagen`` puts it in the manifest
schema beside the other kinds)."""

from __future__ import annotations

from typing import Any

from reconciler.apifacts import API_VERSION, SESSION_NAME_PATTERN

__all__ = ["policy_rule_schema", "policy_schema"]


def _names(description: str, pattern: str | None = None) -> dict[str, Any]:
    items: dict[str, Any] = {"type": "string", "minLength": 1}
    if pattern is not None:
        items["pattern"] = pattern
    return {
        "type": "array",
        "description": description,
        "minItems": 1,
        "uniqueItems": True,
        "items": items,
    }


def _selector(description: str, *, min_properties: int = 0) -> dict[str, Any]:
    """``match`` and ``exclude``: sessions by name, tag or SessionSet."""
    return {
        "type": "object",
        "description": description,
        "additionalProperties": False,
        **({"minProperties": min_properties} if min_properties else {}),
        "properties": {
            "names": _names("Session names.", SESSION_NAME_PATTERN),
            "tags": _names("Tags (any one of them)."),
            "sets": _names("SessionSet names.", SESSION_NAME_PATTERN),
        },
    }


def _rule() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "One CEL rule: true means the session (or plan) complies.",
        "additionalProperties": False,
        "required": ["expression"],
        "properties": {
            "expression": {
                "type": "string",
                "minLength": 1,
                "description": "A CEL expression that evaluates to a boolean. Session "
                "scope sees `session`, `live` and `change`; plan scope sees `plan`.",
            },
            "message": {
                "type": "string",
                "minLength": 1,
                "description": "What a violation says (default: the expression).",
            },
            "messageExpression": {
                "type": "string",
                "minLength": 1,
                "description": "A CEL expression giving the message as a string, with the "
                "same variables as the rule; wins over message when it evaluates.",
            },
        },
    }


def policy_schema() -> dict[str, Any]:
    """One ``kind: Policy`` document."""
    return {
        "type": "object",
        "description": "Rules in CEL checked by validate, plan, apply and watch: a deny "
        "violation refuses the plan (exit 3; --force never lifts it), a warn is shown.",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "name", "spec"],
        "properties": {
            "apiVersion": {
                "const": API_VERSION,
                "description": f"Manifest format version: always {API_VERSION}.",
            },
            "kind": {"const": "Policy", "description": "Document kind: Policy."},
            "name": {
                "type": "string",
                "pattern": SESSION_NAME_PATTERN,
                "description": "Policy name (what --override-policy names): lowercase "
                "letters, digits and '-', at most 63 characters.",
            },
            "spec": {
                "type": "object",
                "description": "What the policy does and its rules.",
                "additionalProperties": False,
                "required": ["rules"],
                "properties": {
                    "action": {
                        "type": "string",
                        "enum": ["deny", "warn"],
                        "default": "deny",
                        "description": "deny (default): a violation refuses the plan; "
                        "warn: it is shown in the plan.",
                    },
                    "scope": {
                        "type": "string",
                        "enum": ["session", "plan"],
                        "default": "session",
                        "description": "session (default): each declared session in "
                        "scope is checked; plan: the plan as a whole, once.",
                    },
                    "match": _selector(
                        "The sessions a session rule applies to: every list given must "
                        "match one of its entries (default: all)."
                    ),
                    "exclude": _selector(
                        "The sessions a session rule leaves alone, chosen as match chooses "
                        "(every list given matches one of its entries): lasting exceptions. "
                        "By names they are the policy owner's to grant; tags and sets are "
                        "written in the session's own file. At least one list: an empty "
                        "exclude would read as every session.",
                        min_properties=1,
                    ),
                    "overridable": {
                        "type": "boolean",
                        "default": False,
                        "description": "true: `apply --override-policy NAME` may lift a "
                        "deny of this policy (recorded in the apply report and the "
                        "sessions' metadata.reconciler).",
                    },
                    "rules": {
                        "type": "array",
                        "description": "The rules; each must hold.",
                        "minItems": 1,
                        "items": {"$ref": "#/$defs/policyRule"},
                    },
                },
            },
        },
    }


def policy_rule_schema() -> dict[str, Any]:
    """One rule of a Policy (``#/$defs/policyRule``)."""
    return _rule()
