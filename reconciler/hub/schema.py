"""The SQLite schema of the hub and how a connection to it is opened.

One file in WAL mode (readers never wait for the writer; it survives restarts), or
``:memory:``. Tags, label and task are folded into ``search_text`` (lower case) so a
search is one indexed-by-org scan with ``instr``; listing order is served by the index
on ``(org_id, created_ms DESC, pk DESC)``.
"""

from __future__ import annotations

import sqlite3

from reconciler.errors import UsageError
from reconciler.hub.dbfile import private_database

__all__ = ["SCHEMA_VERSION", "connect"]

SCHEMA_VERSION = 2  # 2: sessions.extra_json (spec fields without a column)

_DDL = """
CREATE TABLE IF NOT EXISTS sessions (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL UNIQUE,
    org_id TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    status TEXT NOT NULL,
    label TEXT NOT NULL,
    task TEXT NOT NULL,
    visibility TEXT NOT NULL,
    workflow_mode TEXT NOT NULL,
    default_agent TEXT,
    tags_json TEXT NOT NULL,
    skills_json TEXT NOT NULL,
    search_text TEXT NOT NULL,
    repo_json TEXT,
    repos_json TEXT,
    workspace_id TEXT,
    env_json TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    saved_skill_ids_json TEXT NOT NULL,
    skill_bucket_ids_json TEXT NOT NULL,
    loop_json TEXT,
    loop_status TEXT,
    loop_iteration INTEGER,
    loop_started_ms INTEGER,
    loop_updated_ms INTEGER,
    loop_completed_ms INTEGER,
    sandbox_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    last_activity_ms INTEGER NOT NULL,
    extra_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS sessions_by_org_newest
    ON sessions (org_id, created_ms DESC, pk DESC);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_pk INTEGER NOT NULL REFERENCES sessions(pk) ON DELETE CASCADE,
    event TEXT NOT NULL,
    category TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    occurred_ms INTEGER NOT NULL,
    ingested_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_session ON events (session_pk, id DESC);
CREATE TABLE IF NOT EXISTS participants (
    session_pk INTEGER NOT NULL REFERENCES sessions(pk) ON DELETE CASCADE,
    participant_id TEXT NOT NULL,
    role TEXT NOT NULL,
    transport TEXT NOT NULL,
    connected_ms INTEGER NOT NULL,
    disconnected_ms INTEGER,
    last_activity_ms INTEGER NOT NULL,
    metadata_json TEXT NOT NULL,
    PRIMARY KEY (session_pk, participant_id)
);
CREATE TABLE IF NOT EXISTS users (
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_login_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
"""


def connect(db_path: str) -> sqlite3.Connection:
    """Open (and create if needed) the hub database; autocommit, explicit transactions."""
    private_database(db_path)  # it holds resolved env secrets: 0600, in a 0700 directory
    # One connection shared by every request (guarded by the store's lock): handlers
    # run on one event loop and each statement is short, so a pool would buy nothing.
    try:
        conn = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
    except sqlite3.Error as exc:
        raise _unusable(db_path, exc) from None
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 5000")
        if db_path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across process crashes in WAL mode; only power loss may
        # lose the last commits, which is fine for a local hub.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UsageError(
                f"{db_path} was written by a newer hub (schema {version} > {SCHEMA_VERSION}): "
                "use that version of reconciler, or choose another path (--local-db)"
            )
        conn.executescript(_DDL)
        if version < SCHEMA_VERSION:
            _migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if "locked" in str(exc):  # busy beyond busy_timeout: not the file's fault
            raise
        raise _unusable(db_path, exc) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a file written by an older schema up to ``SCHEMA_VERSION``, in one write
    transaction: the columns are read under it, so two processes opening one old file
    at once (a `plan` beside a `hub serve` or an apply, which take no lock for it) never
    both add a column (the second would fail on a duplicate column)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
        if "extra_json" not in columns:  # a file written by schema 1
            conn.execute("ALTER TABLE sessions ADD COLUMN extra_json TEXT NOT NULL DEFAULT '{}'")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _unusable(db_path: str, exc: sqlite3.Error) -> UsageError:
    """A file that is not a hub database (or one SQLite cannot open), in one line."""
    return UsageError(
        f"{db_path} is not a usable hub database ({exc}): move it away (a new, empty one "
        "is made in its place) or choose another path (--local-db, `hub serve --db`)"
    )
