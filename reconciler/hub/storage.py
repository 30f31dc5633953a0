"""The hub's storage: sessions, their events and participants, and known users (SQLite).

Every method is one short transaction under one lock, so the store is safe to share
between the event loop and other threads. Methods that address a session take the
caller's org: another org's session is indistinguishable from a missing one.

Listing keeps the API's offset paging, but a sweep through every page costs linear
time, not quadratic: each listing (org, search, archived or not) remembers its match
count and, for the offset just past each page it served, the key of that page's last
row. A page at a remembered offset then starts from that key (an index seek) instead of
counting and skipping every earlier row. What is remembered holds only while the
sessions table is unchanged: any write to it, by this store or by another connection
to the same file (SQLite's ``data_version``), forgets it all, so every page and total
is exactly what ``COUNT(*)`` and ``LIMIT/OFFSET`` would answer at that moment.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from reconciler.hub.errors import HubError
from reconciler.hub.records import (
    AdminChanges,
    EventRecord,
    NewSession,
    ParticipantRecord,
    SessionChanges,
    SessionRecord,
    SessionSummary,
    UserRecord,
)
from reconciler.hub.schema import connect
from reconciler.hub.timefmt import now_ms

__all__ = ["HubStore"]

# Loop statuses after which a loop no longer runs; archiving stops any other.
_LOOP_FINAL = frozenset({"completed", "cancelled"})
# A user's lastSeenAt is written at most this often (ms): reads stay reads.
_SEEN_WRITE_INTERVAL_MS = 1000
# Listings remembered at once (most recently used kept), and page keys per listing.
_LISTINGS_KEPT = 16
_PAGE_KEYS_KEPT = 100_000

_PARTICIPANT_COUNTS = """
    (SELECT COUNT(*) FROM participants p
      WHERE p.session_pk = s.pk AND p.disconnected_ms IS NULL) AS participant_count,
    (SELECT COUNT(*) FROM participants p
      WHERE p.session_pk = s.pk AND p.disconnected_ms IS NULL AND p.role = 'observer')
      AS observer_count
"""
_SESSION_COLUMNS = "s.*," + _PARTICIPANT_COUNTS
# A list page reads only what it shows, in SessionSummary's order: decoding the JSON
# columns a page never shows (env, metadata, loop, skill ids) was half of its cost.
_SUMMARY_COLUMNS = (
    "s.session_id, s.owner_id, s.status, s.label, s.visibility, s.workflow_mode,"
    " s.default_agent, s.tags_json, s.skills_json, s.repo_json, s.repos_json,"
    " s.workspace_id, s.loop_status, s.loop_iteration, s.created_ms, s.last_activity_ms,"
    + _PARTICIPANT_COUNTS
    + ", s.extra_json"
)


ListingKey = tuple[str, str | None, bool]  # (org, lower-cased search, archived included)


@dataclass
class _Listing:
    """One listing's match count and page keys, valid for one state of the table."""

    total: int
    # Sorted offsets, and for each the (created_ms, pk) of the row just before it.
    offsets: list[int] = field(default_factory=list)
    keys: dict[int, tuple[int, int]] = field(default_factory=dict)

    def nearest(self, offset: int) -> tuple[int, tuple[int, int] | None]:
        """The greatest remembered offset <= ``offset`` and its key (0, None if none)."""
        i = bisect.bisect_right(self.offsets, offset)
        if i == 0:
            return 0, None
        start = self.offsets[i - 1]
        return start, self.keys[start]

    def remember(self, offset: int, key: tuple[int, int]) -> None:
        if offset in self.keys or len(self.keys) >= _PAGE_KEYS_KEPT:
            return
        bisect.insort(self.offsets, offset)
        self.keys[offset] = key


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _search_text(label: str, task: str, tags: tuple[str, ...]) -> str:
    return "\n".join((label, task, *tags)).lower()


class HubStore:
    """Sessions, events, participants and users of every org, in one SQLite database."""

    def __init__(self, db_path: str = ":memory:", *, clock: Callable[[], int] = now_ms):
        self.db_path = db_path
        self._clock = clock
        self._conn: sqlite3.Connection | None = connect(db_path)
        self._lock = threading.RLock()
        self._seen: dict[tuple[str, str], int] = {}
        # Listings as of one state of the sessions table (see the module docstring).
        self._listings: dict[ListingKey, _Listing] = {}
        self._listings_state: tuple[int, int] = (-1, -1)
        self._session_writes = 0

    # -- plumbing -------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise RuntimeError("the hub store is closed")
            yield self._conn

    @contextlib.contextmanager
    def _write(self, *, sessions: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction; ``sessions`` unless it leaves the sessions table alone."""
        with self._lock:
            if self._conn is None:
                raise RuntimeError("the hub store is closed")
            conn = self._conn
            if sessions:
                self._session_writes += 1  # even if it rolls back: forgetting is safe
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _add_event(
        self,
        conn: sqlite3.Connection,
        session_pk: int,
        event: str,
        payload: Any,
        *,
        category: str = "session",
        at: int,
    ) -> None:
        conn.execute(
            "INSERT INTO events (session_pk, event, category, payload_json, occurred_ms,"
            " ingested_ms) VALUES (?, ?, ?, ?, ?, ?)",
            (session_pk, event, category, _dumps(payload), at, at),
        )

    def _fetch(self, conn: sqlite3.Connection, org_id: str, session_id: str) -> SessionRecord:
        row = conn.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions s WHERE s.session_id = ? AND s.org_id = ?",
            (session_id, org_id),
        ).fetchone()
        if row is None:
            raise HubError.not_found(session_id)
        return _session(row)

    # -- sessions -------------------------------------------------------------------

    def create_session(self, org_id: str, owner_id: str, new: NewSession) -> SessionRecord:
        at = self._clock()
        session_id = "codesess_" + secrets.token_hex(10)
        loop_status = "running" if new.workflow_mode == "loop" else None
        with self._write() as conn:
            cursor = conn.execute(
                """INSERT INTO sessions (session_id, org_id, owner_id, status, label, task,
                    visibility, workflow_mode, default_agent, tags_json, skills_json,
                    search_text, repo_json, repos_json, workspace_id, env_json,
                    metadata_json, saved_skill_ids_json, skill_bucket_ids_json, loop_json,
                    loop_status, loop_iteration, loop_started_ms, loop_updated_ms,
                    sandbox_id, created_ms, updated_ms, last_activity_ms, extra_json)
                   VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                    ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    session_id,
                    org_id,
                    owner_id,
                    new.label,
                    new.task,
                    new.visibility,
                    new.workflow_mode,
                    new.default_agent,
                    _dumps(list(new.tags)),
                    _dumps(list(new.skills)),
                    _search_text(new.label, new.task, new.tags),
                    None if new.repo is None else _dumps(new.repo),
                    None if new.repos is None else _dumps(list(new.repos)),
                    new.workspace_id,
                    _dumps(dict(new.env)),
                    _dumps(new.metadata),
                    _dumps(list(new.saved_skill_ids)),
                    _dumps(list(new.skill_bucket_ids)),
                    None if new.loop is None else _dumps(new.loop),
                    loop_status,
                    0 if loop_status else None,
                    at if loop_status else None,
                    at if loop_status else None,
                    "sbx_" + secrets.token_hex(10),
                    at,
                    at,
                    at,
                    _dumps(new.extra),
                ),
            )
            pk = int(cursor.lastrowid or 0)
            # An API create holds no socket: the creator joins as lead and is gone at once.
            conn.execute(
                "INSERT INTO participants (session_pk, participant_id, role, transport,"
                " connected_ms, disconnected_ms, last_activity_ms, metadata_json)"
                " VALUES (?, ?, 'lead', 'ws', ?, ?, ?, ?)",
                (pk, owner_id, at, at, at, _dumps({"userId": owner_id, "source": "api"})),
            )
            self._add_event(
                conn,
                pk,
                "session_created",
                {
                    "status": "active",
                    "label": new.label,
                    "visibility": new.visibility,
                    "workflowMode": new.workflow_mode,
                    "task": new.task,
                },
                at=at,
            )
            if loop_status:
                self._add_event(
                    conn,
                    pk,
                    "loop_started",
                    {"loopStatus": loop_status, "iteration": 0},
                    category="runtime",
                    at=at,
                )
            return self._fetch(conn, org_id, session_id)

    def get_session(self, org_id: str, session_id: str) -> SessionRecord:
        with self._read() as conn:
            return self._fetch(conn, org_id, session_id)

    def list_sessions(
        self,
        org_id: str,
        *,
        search: str | None = None,
        include_archived: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[SessionSummary], int]:
        """One page, newest first (ties too: the later inserted first), and the match count.

        Exactly ``LIMIT/OFFSET`` and ``COUNT(*)`` over the table as it is now; a page
        that follows one already served starts from that page's last key.
        """
        where = ["s.org_id = ?"]
        params: list[Any] = [org_id]
        if not include_archived:
            where.append("s.status != 'archived'")
        needle = search.lower() if search else None
        if needle:
            where.append("instr(s.search_text, ?) > 0")
            params.append(needle)
        clause = " AND ".join(where)
        with self._read() as conn:
            listing = self._listing(conn, (org_id, needle, include_archived), clause, params)
            start, key = listing.nearest(offset)
            if key is not None:
                clause += " AND (s.created_ms, s.pk) < (?, ?)"
                params.extend(key)
            cursor = conn.cursor()
            cursor.row_factory = None  # plain tuples: a page reads columns by position
            rows = cursor.execute(
                f"SELECT s.pk, {_SUMMARY_COLUMNS} FROM sessions s WHERE {clause}"
                " ORDER BY s.created_ms DESC, s.pk DESC LIMIT ? OFFSET ?",
                [*params, limit, offset - start],
            ).fetchall()
            page = [_summary(row) for row in rows]
            if page:
                listing.remember(offset + len(page), (page[-1].created_ms, rows[-1][0]))
        return page, listing.total

    def _listing(
        self, conn: sqlite3.Connection, key: ListingKey, clause: str, params: list[Any]
    ) -> _Listing:
        """What is remembered of this listing (counted now if nothing is)."""
        state = (conn.execute("PRAGMA data_version").fetchone()[0], self._session_writes)
        if state != self._listings_state:
            self._listings.clear()
            self._listings_state = state
        listing = self._listings.pop(key, None)
        if listing is None:
            total = conn.execute(f"SELECT COUNT(*) FROM sessions s WHERE {clause}", params)
            listing = _Listing(int(total.fetchone()[0]))
            while len(self._listings) >= _LISTINGS_KEPT:
                del self._listings[next(iter(self._listings))]  # the least recently used
        self._listings[key] = listing
        return listing

    def update_session(
        self, org_id: str, session_id: str, changes: SessionChanges
    ) -> SessionRecord:
        at = self._clock()
        with self._write() as conn:
            current = self._fetch(conn, org_id, session_id)
            changed: dict[str, Any] = {}
            label, agent, visibility = current.label, current.default_agent, current.visibility
            tags, skills = current.tags, current.skills
            if changes.label is not None and changes.label != label:
                label = changed["label"] = changes.label
            if changes.changes_agent and changes.agent != agent:
                agent = changed["agent"] = changes.agent
            if changes.visibility is not None and changes.visibility != visibility:
                visibility = changed["visibility"] = changes.visibility
            if changes.tags is not None and changes.tags != tags:
                tags = changes.tags
                changed["tags"] = list(tags)
            if changes.skills is not None and changes.skills != skills:
                skills = changes.skills
                changed["skills"] = list(skills)
            extra = dict(current.extra)
            for key, value in changes.extra.items():
                if extra.get(key) != value:
                    extra[key] = changed[key] = value
            if not changed:
                return current
            conn.execute(
                """UPDATE sessions SET label = ?, default_agent = ?, visibility = ?,
                    tags_json = ?, skills_json = ?, search_text = ?, updated_ms = ?,
                    last_activity_ms = ?, extra_json = ? WHERE pk = ?""",
                (
                    label,
                    agent,
                    visibility,
                    _dumps(list(tags)),
                    _dumps(list(skills)),
                    _search_text(label, current.task, tags),
                    at,
                    at,
                    _dumps(extra),
                    current.pk,
                ),
            )
            self._add_event(conn, current.pk, "session_updated", {"changes": changed}, at=at)
            return self._fetch(conn, org_id, session_id)

    def archive_session(self, org_id: str, session_id: str) -> SessionRecord:
        """Any status but archived -> archived (a running loop is cancelled); idempotent."""
        at = self._clock()
        with self._write() as conn:
            current = self._fetch(conn, org_id, session_id)
            if current.status == "archived":
                return current
            self._set_status(conn, current, "archived", "session_archived", at)
            # Every side effect of archiving is in the history too.
            if current.loop_status is not None and current.loop_status not in _LOOP_FINAL:
                self._set_loop(conn, current.pk, "cancelled", current.loop_iteration or 0, at)
            self._disconnect_all(conn, current.pk, at)
            return self._fetch(conn, org_id, session_id)

    def resume_session(self, org_id: str, session_id: str) -> SessionRecord:
        """paused -> resuming -> active; active stays; archived-like is 409."""
        at = self._clock()
        with self._write() as conn:
            current = self._fetch(conn, org_id, session_id)
            if current.status in ("archived", "shutdown", "stopped"):
                raise HubError(
                    409,
                    "CODER_SESSION_ARCHIVED",
                    f"session {session_id} is {current.status} and cannot be resumed",
                )
            if current.status == "active":
                return current
            self._set_status(conn, current, "resuming", "session_resuming", at)
            self._set_status(conn, current, "active", "session_resumed", at)
            return self._fetch(conn, org_id, session_id)

    def delete_session(self, org_id: str, session_id: str) -> None:
        with self._write() as conn:
            current = self._fetch(conn, org_id, session_id)
            # Events and participants go with it (ON DELETE CASCADE).
            conn.execute("DELETE FROM sessions WHERE pk = ?", (current.pk,))

    def _set_status(
        self, conn: sqlite3.Connection, current: SessionRecord, status: str, event: str, at: int
    ) -> None:
        previous = conn.execute(
            "SELECT status FROM sessions WHERE pk = ?", (current.pk,)
        ).fetchone()[0]
        conn.execute(
            "UPDATE sessions SET status = ?, updated_ms = ?, last_activity_ms = ? WHERE pk = ?",
            (status, at, at, current.pk),
        )
        payload = {"status": status, "previousStatus": previous}
        self._add_event(conn, current.pk, event, payload, at=at)

    def _set_loop(
        self, conn: sqlite3.Connection, session_pk: int, status: str, iteration: int, at: int
    ) -> None:
        """Set the loop's state and record it (``loop_updated``)."""
        completed = at if status in _LOOP_FINAL else None
        conn.execute(
            "UPDATE sessions SET loop_status = ?, loop_iteration = ?,"
            " loop_updated_ms = ?, loop_completed_ms = ? WHERE pk = ?",
            (status, iteration, at, completed, session_pk),
        )
        payload = {"loopStatus": status, "iteration": iteration}
        self._add_event(conn, session_pk, "loop_updated", payload, category="runtime", at=at)

    def _disconnect_all(self, conn: sqlite3.Connection, session_pk: int, at: int) -> None:
        """Disconnect every connected participant, one ``session_leave`` each."""
        connected = conn.execute(
            "SELECT participant_id FROM participants WHERE session_pk = ?"
            " AND disconnected_ms IS NULL",
            (session_pk,),
        ).fetchall()
        conn.execute(
            "UPDATE participants SET disconnected_ms = ? WHERE session_pk = ?"
            " AND disconnected_ms IS NULL",
            (at, session_pk),
        )
        for (participant_id,) in connected:
            payload = {"participantId": participant_id}
            self._add_event(conn, session_pk, "session_leave", payload, at=at)

    def admin_update(self, org_id: str, session_id: str, changes: AdminChanges) -> SessionRecord:
        """Test-only state changes the API has no endpoint for (pause, loop, presence)."""
        at = self._clock()
        with self._write() as conn:
            current = self._fetch(conn, org_id, session_id)
            if changes.status is not None and changes.status != current.status:
                event = "session_paused" if changes.status == "paused" else "session_status"
                self._set_status(conn, current, changes.status, event, at)
            if changes.loop_status is not None or changes.loop_iteration is not None:
                if current.workflow_mode != "loop":
                    raise HubError.bad_request(f"session {session_id} is not in loop mode")
                status = changes.loop_status or current.loop_status or "running"
                iteration = (
                    changes.loop_iteration
                    if changes.loop_iteration is not None
                    else current.loop_iteration or 0
                )
                self._set_loop(conn, current.pk, status, iteration, at)
            if changes.disconnect_participants:
                self._disconnect_all(conn, current.pk, at)
            if changes.connect_participant is not None:
                who = changes.connect_participant
                role = "lead" if who == current.owner_id else "observer"
                conn.execute(
                    """INSERT INTO participants (session_pk, participant_id, role, transport,
                        connected_ms, disconnected_ms, last_activity_ms, metadata_json)
                       VALUES (?, ?, ?, 'ws', ?, NULL, ?, ?)
                       ON CONFLICT (session_pk, participant_id) DO UPDATE SET
                        connected_ms = excluded.connected_ms, disconnected_ms = NULL,
                        last_activity_ms = excluded.last_activity_ms""",
                    (current.pk, who, role, at, at, _dumps({"userId": who, "source": "admin"})),
                )
                payload = {"participantId": who, "role": role}
                self._add_event(conn, current.pk, "session_join", payload, at=at)
            conn.execute("UPDATE sessions SET last_activity_ms = ? WHERE pk = ?", (at, current.pk))
            return self._fetch(conn, org_id, session_id)

    # -- session data ---------------------------------------------------------------

    def list_events(
        self, org_id: str, session_id: str, *, limit: int, before_id: int | None = None
    ) -> list[EventRecord]:
        """Newest first; ``before_id`` pages towards older events."""
        with self._read() as conn:
            current = self._fetch(conn, org_id, session_id)
            rows = conn.execute(
                "SELECT * FROM events WHERE session_pk = ? AND id < ? ORDER BY id DESC LIMIT ?",
                (current.pk, before_id if before_id is not None else 2**62, limit),
            ).fetchall()
        return [_event(row) for row in rows]

    def all_events(self, org_id: str, session_id: str) -> list[EventRecord]:
        """Oldest first: what a replay is synthesised from."""
        with self._read() as conn:
            current = self._fetch(conn, org_id, session_id)
            rows = conn.execute(
                "SELECT * FROM events WHERE session_pk = ? ORDER BY id", (current.pk,)
            ).fetchall()
        return [_event(row) for row in rows]

    def list_participants(
        self, org_id: str, session_id: str, *, limit: int, include_disconnected: bool
    ) -> list[ParticipantRecord]:
        with self._read() as conn:
            current = self._fetch(conn, org_id, session_id)
            only_connected = "" if include_disconnected else " AND disconnected_ms IS NULL"
            rows = conn.execute(
                f"SELECT * FROM participants WHERE session_pk = ?{only_connected}"
                " ORDER BY connected_ms, participant_id LIMIT ?",
                (current.pk, limit),
            ).fetchall()
        return [
            ParticipantRecord(
                participant_id=row["participant_id"],
                role=row["role"],
                transport=row["transport"],
                connected_ms=row["connected_ms"],
                disconnected_ms=row["disconnected_ms"],
                last_activity_ms=row["last_activity_ms"],
                metadata=json.loads(row["metadata_json"]),
            )
            for row in rows
        ]

    # -- users ----------------------------------------------------------------------

    def touch_user(self, org_id: str, user_id: str) -> None:
        """Record that ``user_id`` used the hub in ``org_id`` (throttled writes)."""
        at = self._clock()
        key = (org_id, user_id)
        last = self._seen.get(key)
        if last is not None and at - last < _SEEN_WRITE_INTERVAL_MS:
            return
        first_this_run = last is None
        self._seen[key] = at
        with self._write(sessions=False) as conn:
            # A hub (re)start counts as a new login for every token used afterwards.
            conn.execute(
                """INSERT INTO users (org_id, user_id, created_ms, last_login_ms, last_seen_ms)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (org_id, user_id) DO UPDATE SET
                    last_seen_ms = excluded.last_seen_ms,
                    last_login_ms = CASE WHEN ? THEN excluded.last_login_ms
                                    ELSE users.last_login_ms END""",
                (org_id, user_id, at, at, at, first_this_run),
            )

    def list_users(
        self, org_id: str, *, search: str | None, limit: int, offset: int
    ) -> tuple[list[UserRecord], int]:
        where = "org_id = ?"
        params: list[Any] = [org_id]
        if search:
            # Display name and email are derived from the user id, so it is the haystack.
            where += " AND instr(lower(user_id), ?) > 0"
            params.append(search.lower())
        with self._read() as conn:
            total = conn.execute(f"SELECT COUNT(*) FROM users WHERE {where}", params).fetchone()
            rows = conn.execute(
                f"SELECT * FROM users WHERE {where} ORDER BY user_id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
        users = [
            UserRecord(
                user_id=row["user_id"],
                created_ms=row["created_ms"],
                last_login_ms=row["last_login_ms"],
                last_seen_ms=row["last_seen_ms"],
            )
            for row in rows
        ]
        return users, int(total[0])


def _opt_json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _session(row: sqlite3.Row) -> SessionRecord:
    repos = _opt_json(row["repos_json"])
    return SessionRecord(
        pk=row["pk"],
        session_id=row["session_id"],
        org_id=row["org_id"],
        owner_id=row["owner_id"],
        status=row["status"],
        label=row["label"],
        task=row["task"],
        visibility=row["visibility"],
        workflow_mode=row["workflow_mode"],
        default_agent=row["default_agent"],
        tags=tuple(json.loads(row["tags_json"])),
        skills=tuple(json.loads(row["skills_json"])),
        repo=_opt_json(row["repo_json"]),
        repos=None if repos is None else tuple(repos),
        workspace_id=row["workspace_id"],
        env=json.loads(row["env_json"]),
        metadata=json.loads(row["metadata_json"]),
        saved_skill_ids=tuple(json.loads(row["saved_skill_ids_json"])),
        skill_bucket_ids=tuple(json.loads(row["skill_bucket_ids_json"])),
        loop=_opt_json(row["loop_json"]),
        loop_status=row["loop_status"],
        loop_iteration=row["loop_iteration"],
        loop_started_ms=row["loop_started_ms"],
        loop_updated_ms=row["loop_updated_ms"],
        loop_completed_ms=row["loop_completed_ms"],
        sandbox_id=row["sandbox_id"],
        created_ms=row["created_ms"],
        updated_ms=row["updated_ms"],
        last_activity_ms=row["last_activity_ms"],
        participant_count=row["participant_count"],
        observer_count=row["observer_count"],
        extra=json.loads(row["extra_json"]),
    )


# The columns hold what _dumps wrote (no surrounding whitespace): raw_decode skips
# json.loads' whitespace scans, a third of decoding a list page's small values.
_raw_decode = json.JSONDecoder().raw_decode


def _summary(row: tuple[Any, ...]) -> SessionSummary:
    # The row is (pk, *_SUMMARY_COLUMNS): pk keys the next page, the summary omits it.
    (sid, owner, status, label, visibility, mode, agent, tags, skills, repo, repos) = row[1:12]

    def loads(text: str) -> Any:
        return _raw_decode(text)[0]

    return SessionSummary(
        sid,
        owner,
        status,
        label,
        visibility,
        mode,
        agent,
        tuple(loads(tags)),
        tuple(loads(skills)),
        None if repo is None else loads(repo),
        None if repos is None else tuple(loads(repos)),
        row[12],  # workspace_id
        row[13],  # loop_status
        row[14],  # loop_iteration
        row[15],  # created_ms
        row[16],  # last_activity_ms
        row[17],  # participant_count
        row[18],  # observer_count
        loads(row[19]),  # extra
    )


def _event(row: sqlite3.Row) -> EventRecord:
    return EventRecord(
        id=row["id"],
        event=row["event"],
        category=row["category"],
        payload=json.loads(row["payload_json"]),
        occurred_ms=row["occurred_ms"],
        ingested_ms=row["ingested_ms"],
    )
