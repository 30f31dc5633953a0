"""`reconciler sessions ...`: one thin command per session endpoint of the Coder API."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from typing import IO, Any

import click

from reconciler.apifacts import (
    MAX_BODY_DEPTH,
    MAX_INT_DIGITS,
    VISIBILITIES,
    VISIBILITY_ALIASES,
    body_depth,
)
from reconciler.cli.apicall import call_api, emit_json, format_option
from reconciler.cli.context import pass_options, session_id_argument
from reconciler.cli.table import Column, epoch_ms, lookup, render_fields, render_table
from reconciler.client import CoderClient
from reconciler.errors import ApiError, UsageError
from reconciler.masking import mask_answer
from reconciler.model import MARKER_PREFIX, RemoteSession, normalise_visibility
from reconciler.planner.applied import is_protected_tag
from reconciler.settings import GlobalOptions

__all__ = ["command"]

SESSION_COLUMNS: list[Column] = [
    ("SESSION", "sessionId"),
    ("STATUS", "status"),
    ("WORKFLOW", lambda s: _workflow(s)),
    ("VISIBILITY", "visibility"),
    ("AGENT", "defaultAgent"),
    ("LABEL", "label"),
    ("TAGS", "tags"),
]


def _workflow(session: Mapping[str, Any]) -> str | None:
    mode, loop = session.get("workflowMode"), session.get("loopStatus")
    return f"{mode}:{loop}" if mode and loop else mode


# The values create and PATCH take, aliases included (any case: ORG is org), refused
# before any request (exit 64) as a manifest's are.
_VISIBILITY = click.Choice([*VISIBILITIES, *VISIBILITY_ALIASES], case_sensitive=False)


@click.group("sessions")
def command() -> None:
    """List, inspect and change Coder sessions one API call at a time."""


@command.command("list")
@click.option("--search", metavar="S", help="Only sessions matching this search.")
@click.option("--include-archived", is_flag=True, help="Include archived sessions.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Page size.")
@click.option("--offset", type=click.IntRange(min=0), metavar="N", help="Page offset.")
@click.option("--all", "all_pages", is_flag=True, help="Every page (no --limit/--offset).")
@format_option
@pass_options
def list_cmd(
    opts: GlobalOptions,
    search: str | None,
    include_archived: bool,
    limit: int | None,
    offset: int | None,
    all_pages: bool,
    fmt: str,
) -> None:
    """List sessions (GET /hub/sessions): one page, or every page with --all."""
    if all_pages:
        if limit is not None or offset is not None:
            raise UsageError("--all reads every page: leave out --limit and --offset")
        items, sandbox = call_api(
            opts, lambda c: c.list_all_groups(include_archived=include_archived, search=search)
        )
        # Every page in one, in the API's shape: `total` counts the sessions listed.
        page: dict[str, Any] = {
            "sessions": {"websocket": items, "sandbox": sandbox},
            "total": len(items),
        }
    else:
        page = call_api(
            opts,
            lambda c: c.list_sessions(
                search=search, include_archived=include_archived, limit=limit, offset=offset
            ),
        )
    # The list carries no env, but a hub that sends it has it masked, as `get` does.
    groups = page["sessions"]
    page = {**page, "sessions": {k: _masked(groups[k]) for k in ("websocket", "sandbox")}}
    if fmt == "json":
        emit_json(page)
        return
    items = page["sessions"]["websocket"]
    click.echo(render_table(items, SESSION_COLUMNS, empty="(no sessions)"))
    sandbox = page["sessions"]["sandbox"]
    if sandbox:
        click.echo("\nsandbox entries:")
        columns = [("SESSION", "sessionId"), ("SANDBOX", "sandboxId"), ("STATUS", "status")]
        click.echo(render_table(sandbox, [*columns, ("CONNECTED", "wsConnected")]))
    total = page.get("total")
    start = (offset or 0) + 1 if items else 0
    shown = f"{start}-{start + len(items) - 1}" if items else "0"
    click.echo(f"{shown} of {total if total is not None else '?'} sessions", err=True)


def _masked(items: Any) -> list[Any]:
    return [mask_answer(i) if isinstance(i, dict) else i for i in items or ()]


@command.command("get")
@session_id_argument()
@format_option
@pass_options
def get_cmd(opts: GlobalOptions, session_id: str, fmt: str) -> None:
    """Show one session (GET /hub/session/{id}). env values always show as (sensitive)."""
    session = mask_answer(call_api(opts, lambda c: c.get_session(session_id)))
    if fmt == "json":
        emit_json(session)
        return
    pairs: list[tuple[str, Any]] = [
        (k, session.get(k))
        for k in ("sessionId", "label", "status", "mode", "workflowMode", "loopStatus",
                  "loopIteration", "visibility", "defaultAgent")
    ]  # fmt: skip
    pairs += [
        ("owner", lookup(session, "owner.name") or lookup(session, "owner.userId")),
        ("tags", session.get("tags")),
        ("skills", _skill_ids(session)),
        ("repo", lookup(session, "repo.fullName") or session.get("repo")),
        ("participants", session.get("participantCount")),
        ("createdAt", session.get("createdAt")),
        ("lastActivityAt", session.get("lastActivityAt")),
        ("updatedAt", session.get("updatedAt")),
        ("task", session.get("task")),
        ("env", session.get("env")),
        ("metadata", session.get("metadata")),
    ]
    click.echo(render_fields(pairs))


@command.command("create")
@click.option("--task", help="The task prompt (required unless in --from-json).")
@click.option("--label", help="Human-readable label.")
@click.option("--agent", help="Default agent, e.g. claude-code.")
@click.option(
    "--visibility", type=_VISIBILITY, help="private, organization (org) or collaborate (collab)."
)
@click.option("--tag", "tags", multiple=True, metavar="T", help="A tag; repeat for more.")
@click.option(
    "--from-json",
    "from_json",
    type=click.File("r"),
    metavar="FILE",
    help="A create payload (JSON object, - for stdin); the flags above override its fields.",
)
@format_option
@pass_options
def create_cmd(
    opts: GlobalOptions,
    task: str | None,
    label: str | None,
    agent: str | None,
    visibility: str | None,
    tags: tuple[str, ...],
    from_json: IO[str] | None,
    fmt: str,
) -> None:
    """Create a session (POST /hub/session). Never retried: check `sessions list` after
    a network error before creating again."""
    body: dict[str, Any] = _read_json(from_json, "--from-json", dict) if from_json else {}
    flags = {"task": task, "label": label, "agent": agent}
    body.update({k: v for k, v in flags.items() if v is not None})
    if visibility is not None:
        body["visibility"] = normalise_visibility(visibility)
    if tags:
        body["tags"] = list(tags)
    if "task" in body and not isinstance(body["task"], str):
        raise UsageError("--from-json: `task` must be a string")
    env = body.get("env")
    if env is not None and not (
        isinstance(env, dict) and all(isinstance(v, str) for v in env.values())
    ):
        # Only text is masked wherever a hub echoes it: a number is no env value.
        raise UsageError("--from-json: `env` must be an object of strings")
    if not isinstance(body.get("task"), str) or not body["task"].strip():
        raise UsageError("--task is required (or a `task` in --from-json)")
    # A hub may echo what it was sent beyond `env` (in the task, in metadata): the values
    # sent under env are masked wherever they appear.
    answer = call_api(opts, lambda c: c.create_session(body))
    created = mask_answer(answer, request=body)
    if fmt == "json":
        emit_json(created)
        return
    keys = ("sessionId", "status", "mode", "visibility", "sandboxId")
    click.echo(render_fields([(k, created.get(k)) for k in keys]))


@command.command("update")
@session_id_argument()
@click.option("--label", help="New label.")
@click.option("--agent", help="New default agent.")
@click.option(
    "--visibility", type=_VISIBILITY, help="private, organization (org) or collaborate (collab)."
)
@click.option(
    "--tags",
    metavar="A,B",
    help="Replace every tag but the tool's own (comma-separated; '' clears). Tags "
    "starting reconciler: are the session's markers and record: kept unless "
    "--drop-marker, and refused here.",
)
@click.option(
    "--drop-marker",
    is_flag=True,
    help="Also remove the session's reconciler: marker tags, so no project manages it "
    "any more (its next plan creates a new session if it is still declared).",
)
@click.option(
    "--skills-json",
    type=click.File("r"),
    metavar="FILE",
    help="Replace the skills: a JSON array of {skillId, repo, name?, url?}.",
)
@format_option
@pass_options
def update_cmd(
    opts: GlobalOptions,
    session_id: str,
    label: str | None,
    agent: str | None,
    visibility: str | None,
    tags: str | None,
    drop_marker: bool,
    skills_json: IO[str] | None,
    fmt: str,
) -> None:
    """Change a session's mutable fields (PATCH /hub/session/{id}).

    Tags in PATCH replace the whole set; the session's marker tags (reconciler:...),
    which tie it to its manifest, are carried over unless --drop-marker says otherwise.
    """
    body: dict[str, Any] = {
        k: v for k, v in {"label": label, "agent": agent}.items() if v is not None
    }
    if visibility is not None:
        body["visibility"] = normalise_visibility(visibility)
    if skills_json is not None:
        body["skills"] = _read_json(skills_json, "--skills-json", list)
    if not body and tags is None and not drop_marker:
        raise UsageError(
            "nothing to update: give --label, --agent, --visibility, --tags, --skills-json "
            "or --drop-marker"
        )
    wanted = None if tags is None else [t.strip() for t in tags.split(",") if t.strip()]
    if wanted is not None and any(t.startswith(MARKER_PREFIX) for t in wanted):
        # They are carried over; and the applied record holds commas, which --tags
        # splits on: its pieces would be written back as tags of their own.
        raise UsageError(
            "--tags: leave out the reconciler: tags (the session keeps its own; "
            "--drop-marker removes them): give only the other tags"
        )

    async def update(client: CoderClient) -> dict[str, Any]:
        if wanted is not None or drop_marker:
            current = await client.get_session(session_id)
            have = list(RemoteSession.from_api(current).tags)
            body["tags"] = _new_tags(have, wanted, drop_marker=drop_marker)
            for tag in have:
                if tag.startswith(MARKER_PREFIX) and tag not in body["tags"]:
                    click.echo(f"removing marker tag {tag}", err=True)
        return await client.update_session(session_id, body)

    updated = mask_answer(call_api(opts, update))
    if fmt == "json":
        emit_json(updated)
        return
    keys = ("sessionId", "label", "visibility", "defaultAgent", "tags")
    pairs: list[tuple[str, Any]] = [(k, updated.get(k)) for k in keys]
    pairs.append(("skills", _skill_ids(updated)))
    click.echo(render_fields(pairs))


def _new_tags(have: list[str], wanted: list[str] | None, *, drop_marker: bool) -> list[str]:
    """``wanted`` (``have`` when None) with ``have``'s marker tags kept, unless dropped."""
    tags = list(have if wanted is None else wanted)
    if drop_marker:
        return [t for t in tags if not t.startswith(MARKER_PREFIX)]
    markers = [t for t in have if t.startswith(MARKER_PREFIX) and t not in tags]
    return [*tags, *markers]


def _lifecycle(name: str, endpoint: str, doc: str) -> click.Command:
    @session_id_argument()
    @format_option
    @pass_options
    def cmd(opts: GlobalOptions, session_id: str, fmt: str) -> None:
        result = call_api(opts, lambda c: getattr(c, f"{name}_session")(session_id))
        _status_line(result, fmt)

    cmd.__doc__ = f"{doc} ({endpoint})."
    return command.command(name)(cmd)


_lifecycle(
    "archive",
    "POST /hub/session/{id}/archive",
    "Archive a session, whatever its status; a running loop is cancelled, and an archived "
    "session stays as it is",
)
_lifecycle("resume", "POST /hub/session/{id}/resume", "Resume a paused session")


@command.command("delete")
@session_id_argument()
@click.option("--yes", "-y", is_flag=True, help="Do not ask (required without a terminal).")
@format_option
@pass_options
def delete_cmd(opts: GlobalOptions, session_id: str, yes: bool, fmt: str) -> int | None:
    """Delete a session permanently (DELETE /hub/session/{id}); asks first unless --yes.

    Which projects manage it, and whether one protects it, is in the question; with
    --yes it is said on stderr once the session is deleted."""
    about = ""
    if yes:
        try:
            read = call_api(opts, lambda c: c.get_session(session_id), once=True)
            about = _ownership(read, done=True)
        except ApiError:
            pass  # tried once: the delete says what is wrong, with its own retries
    else:
        if not _interactive():
            raise UsageError("refusing to delete without confirmation: pass --yes")
        try:
            about = _ownership(call_api(opts, lambda c: c.get_session(session_id)))
        except ApiError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                raise  # no such session, no access: the delete could not happen either
            # The hub failed to answer the read: the question is still the person's.
            click.echo(f"warning: could not read the session first ({exc})", err=True)
        if not click.confirm(f"Delete session {session_id} permanently?{about}", err=True):
            click.echo("Not deleted; nothing changed.", err=True)
            if fmt == "json":
                emit_json({"sessionId": session_id, "deleted": False})
            return None  # as apply and export --adopt do when the answer is no
    _status_line(call_api(opts, lambda c: c.delete_session(session_id)), fmt)
    if yes and about:  # asked nothing: said once it is done
        click.echo(f"note: deleted {session_id}.{about}", err=True)
    return None


def _ownership(detail: Mapping[str, Any], *, done: bool = False) -> str:
    """What a person deleting the session by hand should know (for the prompt, or once
    ``done``): which projects manage it, and whether one protects it
    (``preventDestroy``)."""
    remote = RemoteSession.from_api(detail)
    owners = [f"{m.project} as {m.name}" for m in remote.markers()]
    if not owners:
        return ""
    # A protection another project recorded is not one of these owners'.
    managing = {m.project for m in remote.markers()}
    protected = any(is_protected_tag(t, managing) for t in remote.tags)
    was, protects = ("was", "protected") if done else ("is", "protects")
    return (
        f" It {was} managed by {', '.join(owners)}"
        + (f", which {protects} it (preventDestroy)" if protected else "")
        # Deleting an archived one changes nothing a plan does: it is not live either way.
        + (
            "."
            if remote.archived_like
            else ": the next apply of manifests that still declare it creates it again."
        )
    )


@command.command("loop")
@session_id_argument()
@format_option
@pass_options
def loop_cmd(opts: GlobalOptions, session_id: str, fmt: str) -> None:
    """Show a session's loop state (GET /hub/session/{id}/loop)."""
    state = call_api(opts, lambda c: c.get_loop(session_id))
    if fmt == "json":
        emit_json(state)
        return
    pairs: list[tuple[str, Any]] = [(k, state.get(k)) for k in ("sessionId", "workflowMode")]
    loop = state.get("loop")
    if not isinstance(loop, dict):
        pairs.append(("loop", "(not a loop session)"))
    else:
        order = ["status", "iteration", "maxIterations", "goal", "autoContinue",
                 "allowDetached", "summary", "nextAction"]  # fmt: skip
        keys = [k for k in order if k in loop] + [k for k in loop if k not in order]
        # Loop timestamps are epoch milliseconds (docs/reference/service-notes.md).
        pairs += [(k, epoch_ms(loop[k]) if k.endswith("At") else loop[k]) for k in keys]
    click.echo(render_fields(pairs))


@command.command("replay")
@session_id_argument()
@format_option
@pass_options
def replay_cmd(opts: GlobalOptions, session_id: str, fmt: str) -> None:
    """Show a session's replay entries (GET /hub/session/{id}/replay)."""
    replay = call_api(opts, lambda c: c.get_replay(session_id))
    if fmt == "json":
        emit_json(replay)
        return
    click.echo(render_fields([(k, replay.get(k)) for k in ("entriesSource", "sourceCounts")]))
    columns: list[Column] = [
        ("SEQ", "sequence"),
        ("TIME", lambda e: epoch_ms(e.get("timestamp"))),
        ("TYPE", "type"),
        ("AGENT", "agent"),
        ("CONTENT", lambda e: e.get("content") or e.get("toolName")),
    ]
    click.echo(render_table(replay["entries"], columns, empty="(no entries)"))


@command.command("participants")
@session_id_argument()
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N participants.")
@click.option("--include-disconnected", is_flag=True, help="Also those who left.")
@format_option
@pass_options
def participants_cmd(
    opts: GlobalOptions, session_id: str, limit: int | None, include_disconnected: bool, fmt: str
) -> None:
    """List a session's participants (GET /hub/session/{id}/participants)."""
    result = call_api(
        opts,
        lambda c: c.list_participants(
            session_id, limit=limit, include_disconnected=include_disconnected
        ),
    )
    if fmt == "json":
        emit_json(result)
        return
    columns = [
        ("ID", "id"),
        ("ROLE", "role"),
        ("TRANSPORT", "transport"),
        ("AGENT ROLE", "agentRole"),
        ("CONNECTED", "connectedAt"),
        ("DISCONNECTED", "disconnectedAt"),
    ]
    click.echo(render_table(result["participants"], columns, empty="(no participants)"))


@command.command("events")
@session_id_argument()
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N events.")
@click.option(
    "--before-id", type=click.IntRange(min=0), metavar="N", help="Only events older than event N."
)
@format_option
@pass_options
def events_cmd(
    opts: GlobalOptions, session_id: str, limit: int | None, before_id: int | None, fmt: str
) -> None:
    """List a session's event history (GET /hub/session/{id}/events/history)."""
    result = call_api(opts, lambda c: c.list_events(session_id, limit=limit, before_id=before_id))
    if fmt == "json":
        emit_json(result)
        return
    columns = [
        ("ID", "id"),
        ("OCCURRED", "occurredAt"),
        ("CATEGORY", "category"),
        ("EVENT", "event"),
        ("AGENT", "agent"),
        ("TASK", "taskId"),
    ]
    click.echo(render_table(result["events"], columns, empty="(no events)"))


def _status_line(result: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        emit_json(result)
    else:
        click.echo(
            render_fields(
                [("sessionId", result.get("sessionId")), ("status", result.get("status"))]
            )
        )


def _skill_ids(session: Mapping[str, Any]) -> list[Any]:
    skills = session.get("skills")
    return (
        [s.get("skillId") for s in skills if isinstance(s, dict)]
        if isinstance(skills, list)
        else []
    )


def _interactive() -> bool:
    return sys.stdin.isatty()


def _read_json(stream: IO[str], flag: str, kind: type) -> Any:
    name = getattr(stream, "name", flag)
    text = stream.read()
    try:
        # A leading byte-order mark (an editor's) is no part of the payload.
        data = json.loads(
            text.removeprefix("\ufeff"), parse_constant=_no_constant, parse_int=_integer
        )
    except json.JSONDecodeError as exc:
        raise UsageError(f"{flag} {name}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None
    except RecursionError:
        raise UsageError(f"{flag} {name}: nested too deeply to read") from None
    except ValueError as exc:  # _no_constant's or _integer's refusal
        raise UsageError(f"{flag} {name}: not JSON a request can carry: {exc}") from None
    # The request nests it one level deeper when it is a field's value (--skills-json).
    limit = MAX_BODY_DEPTH if kind is dict else MAX_BODY_DEPTH - 1
    if body_depth(data, limit) > limit:  # the hub refuses it; deeper, httpx cannot send it
        raise UsageError(f"{flag} {name}: nested more than {limit} levels deep")
    if _has_non_finite(data):  # 1e400 reads as infinity: no JSON request can carry it
        raise UsageError(f"{flag} {name}: holds a number too large for JSON (1e400, say)")
    if not isinstance(data, kind):
        expected = "an object" if kind is dict else "an array"
        raise UsageError(f"{flag} {name}: expected {expected}")
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (\ud800): no UTF-8 request can carry it
        raise UsageError(f"{flag} {name}: holds a lone surrogate escape (\\udXXX)") from None
    return data


def _no_constant(word: str) -> Any:
    """``NaN``, ``Infinity``, ``-Infinity``: Python's JSON reads them, JSON has none."""
    raise ValueError(f"{word} is not a JSON number")


def _integer(digits: str) -> int:
    """An integer literal, refused past the digits Python converts (4,300 by default)."""
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(digits.lstrip('-'))} digits")
    return int(digits)


def _has_non_finite(value: Any) -> bool:
    """Whether a float in ``value`` is infinite (``json`` reads ``1e400`` as one)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
