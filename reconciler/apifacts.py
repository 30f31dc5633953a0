"""Facts about the Coder API and the manifest format, each defined once.

The hub's request validation (``reconciler.hub``), the manifest checks and the JSON
Schemas generated from them (``reconciler.manifest``) all read these, so what
``validate`` accepts is what the hub accepts. The spec fields themselves are declared in
``reconciler.fields``. No I/O; of the project, only ``reconciler.jsontext`` (how a
body's size is measured).
"""

from __future__ import annotations

import sys
from typing import Any

from reconciler import jsontext

__all__ = [
    "API_VERSION",
    "BODY_ALLOWANCE_BYTES",
    "DEFAULT_API_URL",
    "ENV_NAME",
    "ENV_NAME_PATTERN",
    "HEADER_VALUE",
    "HEADER_VALUE_PATTERN",
    "MAX_INT_DIGITS",
    "LOOP_FIELDS",
    "LOOP_FLAG_DEFAULTS",
    "MAX_BODY_BYTES",
    "MAX_BODY_DEPTH",
    "MAX_ITERATIONS",
    "NON_BLANK_FIELDS",
    "NO_BLANK_FIELDS",
    "PROJECT_NAME",
    "PROJECT_NAME_PATTERN",
    "PROJECT_NAME_RULE",
    "REPO_FIELDS",
    "ROSTER_FIELD",
    "SESSION_NAME",
    "SESSION_NAME_MAX",
    "SESSION_ID_PATTERN",
    "SESSION_NAME_PATTERN",
    "SKILL_FIELDS",
    "SKILL_REQUIRED_FIELDS",
    "VISIBILITIES",
    "VISIBILITY_ALIASES",
    "WORKFLOW_MODES",
    "body_depth",
    "encoded_size",
    "is_blank",
]

# The Coder API a token from AGENTUITY_SDK_KEY belongs to, when no hub is configured
# (reconciler.connect resolves it; the CLI's --api-url help names it).
DEFAULT_API_URL = "https://catalyst-usw.agentuity.cloud"

# The manifest format.
API_VERSION = "reconciler/v1"
# Names: a project's is the ownership scope in marker tags, a session's its identity.
PROJECT_NAME = "[a-z0-9][a-z0-9-]{0,39}"
SESSION_NAME_MAX = 63  # characters
SESSION_NAME = f"[a-z0-9][a-z0-9-]{{0,{SESSION_NAME_MAX - 1}}}"
PROJECT_NAME_PATTERN = f"^{PROJECT_NAME}$"
# PROJECT_NAME in words, for the errors that refuse one.
PROJECT_NAME_RULE = (
    "lowercase letters, digits and '-', starting with a letter or digit, at most 40 characters"
)
SESSION_NAME_PATTERN = f"^{SESSION_NAME}$"
# A session id as the service makes them (`codesess_...`): what `adopt:` and the commands
# that take an ID accept, so a path or a typo is refused before it becomes a URL.
SESSION_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
# An environment variable's name (env keys, ${env:NAME} references, template variables).
ENV_NAME = "[A-Za-z_][A-Za-z0-9_]*"
ENV_NAME_PATTERN = f"^{ENV_NAME}$"
# What an HTTP header may carry as the token or the organisation id: visible ASCII (a
# space, a newline or anything else would make httpx fail, or quote the value).
HEADER_VALUE = r"[\x21-\x7e]+"
HEADER_VALUE_PATTERN = f"^{HEADER_VALUE}$"
# The longest integer a manifest or a payload may hold, in digits: Python's limit on
# converting between an int and its text (json could neither read nor write a longer
# one), and 4,300, its default, when that limit is lifted.
MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300

# What the official clients (@agentuity/core's update schema, `agentuity coder update`)
# also send in a create or an update body besides the spec fields (and their aliases,
# ``fields.SpecField.aliases``): a roster of agents this hub does not keep.
ROSTER_FIELD = "enabledAgents"

# The fields of a repository reference, of a skill, and of the loop settings, as the
# API reference lists them.
REPO_FIELDS: tuple[str, ...] = (
    "repoId",
    "type",
    "provider",
    "owner",
    "name",
    "fullName",
    "url",
    "cloneUrl",
    "defaultBranch",
    "branch",
    "ref",
    "commit",
    "path",
    "rootPath",
)
SKILL_FIELDS: tuple[str, ...] = ("skillId", "repo", "name", "url")
LOOP_FIELDS: tuple[str, ...] = ("goal", "maxIterations", "autoContinue", "allowDetached")
# What a loop session holds for a flag its create leaves out: off. The reference calls
# both optional and names no default; the local hub reports them off, and a flag left
# out and one written `false` mean the same everywhere the tool compares loops.
LOOP_FLAG_DEFAULTS: dict[str, bool] = {"autoContinue": False, "allowDetached": False}

# Enumerations: the long forms, and the short forms the hub accepts and normalises.
VISIBILITIES: tuple[str, ...] = ("private", "organization", "collaborate")
VISIBILITY_ALIASES: dict[str, str] = {"org": "organization", "collab": "collaborate"}
WORKFLOW_MODES: tuple[str, ...] = ("standard", "loop")

# Required in a create body, as text that is not blank (all whitespace counts as blank).
NON_BLANK_FIELDS: tuple[str, ...] = ("task",)
# Optional text the hub holds no blank value of: a create derives a label from the task
# for a blank one, and an empty agent is dropped; declared blank, they never converge.
NO_BLANK_FIELDS: tuple[str, ...] = ("label", "agent")
# Required in every skill, as non-empty strings.
SKILL_REQUIRED_FIELDS: tuple[str, ...] = ("skillId", "repo")
# Iteration counts are stored as SQLite integers and read by JavaScript clients.
MAX_ITERATIONS = 2**31 - 1

# A request body over this many bytes is answered 413.
MAX_BODY_BYTES = 1024 * 1024
# What the tool adds to a create body besides the declared spec: the marker tag and
# `metadata.reconciler` (lineage, with a source path, and the record of the declared
# form, at most planner.body.RECORD_BUDGET_BYTES). A manifest's body fits in the rest.
BODY_ALLOWANCE_BYTES = 32 * 1024
# Objects and arrays nested deeper than this in a request body are answered 400 (the
# body itself is level 1, so a create body's `metadata` is level 2).
MAX_BODY_DEPTH = 64


def is_blank(text: str) -> bool:
    """True for text that holds nothing but whitespace (the hub refuses such a task)."""
    return not text.strip()


# Made once: json.dumps with options builds an encoder per call (a plan sizes every body).
_COMPACT = jsontext.encoder(allow_nan=False)


def encoded_size(body: Any) -> int:
    """Bytes of ``body`` as JSON the way the client sends it: compact, UTF-8.

    Raises ``UnicodeEncodeError`` for text that cannot be sent (a lone surrogate).
    """
    text = _COMPACT(body)
    # An ASCII-only str knows it is one: no need to encode it to count its bytes.
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def body_depth(value: Any, limit: int = MAX_BODY_DEPTH) -> int:
    """How deeply objects and arrays nest in ``value`` (a scalar is 0, ``{}`` is 1).

    Walks without recursion and stops counting once past ``limit`` (returning
    ``limit + 1``), so a hostile body costs no more than the limit.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return limit + 1
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest
