"""The SQLite schema, its versions and migrations.

The file is ours when its ``application_id`` is ours; ``user_version`` counts the
migrations applied. Projection tables are defined by a function so that a rebuild
can create identical tables beside the live ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

APPLICATION_ID = 0x494E5659  # "INVY"

EVENTS_DDL = """
CREATE TABLE streams (
    stream_id INTEGER PRIMARY KEY,
    store     TEXT NOT NULL,
    product   TEXT NOT NULL,
    UNIQUE (store, product)
);
CREATE TABLE events (
    position        INTEGER PRIMARY KEY,
    stream_id       INTEGER NOT NULL REFERENCES streams (stream_id),
    version         INTEGER NOT NULL,
    type            TEXT    NOT NULL,
    quantity        INTEGER NOT NULL,
    data            TEXT    NOT NULL,
    occurred_at     TEXT    NOT NULL,
    recorded_at     TEXT    NOT NULL,
    idempotency_key TEXT,
    command_hash    TEXT,
    UNIQUE (stream_id, version)
);
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: events cannot be updated'); END;
CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: events cannot be deleted'); END;
CREATE VIEW event_log AS
    SELECT e.position, s.store, s.product, e.version, e.type, e.quantity, e.data,
           e.occurred_at, e.recorded_at, e.idempotency_key
    FROM events AS e JOIN streams AS s USING (stream_id);
"""


def projection_ddl(suffix: str = "") -> str:
    """DDL of the projection tables, optionally with a suffix for a rebuild."""
    return f"""
CREATE TABLE stock{suffix} (
    stream_id  INTEGER PRIMARY KEY,
    store      TEXT    NOT NULL,
    product    TEXT    NOT NULL,
    on_hand    INTEGER NOT NULL,
    reserved   INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
);
CREATE TABLE reservations{suffix} (
    reservation_id TEXT    PRIMARY KEY,
    stream_id      INTEGER NOT NULL,
    quantity       INTEGER NOT NULL,
    customer       TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    closed_at      TEXT
);
CREATE TABLE idempotency_keys{suffix} (
    key          TEXT    PRIMARY KEY,
    command_hash TEXT    NOT NULL,
    stream_id    INTEGER NOT NULL,
    position     INTEGER NOT NULL
);
"""


PROJECTION_INDEXES = """
CREATE UNIQUE INDEX stock_by_store_product ON stock (store, product);
"""

PROJECTION_TABLES = ("stock", "reservations", "idempotency_keys")

REFUSE_UPDATE_TRIGGER = """
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: events cannot be updated'); END;
"""

AUDIT_VIEW = """
CREATE VIEW event_log AS
    SELECT e.position, s.store, s.product, e.version, e.type, e.quantity, e.data,
           e.occurred_at, e.recorded_at, e.actor, e.idempotency_key, e.hash
    FROM events AS e JOIN streams AS s USING (stream_id);
"""


def _run(script: str) -> Callable[[sqlite3.Connection], None]:
    def migration(conn: sqlite3.Connection) -> None:
        for statement in _statements(script):
            conn.execute(statement)

    return migration


def _add_actor_and_hash_chain(conn: sqlite3.Connection) -> None:
    """Version 2: every event gets an actor ('unknown' before) and a hash chained over all."""
    from inventory_cli.storage.chain import GENESIS, HASHED_COLUMNS_SQL, event_hash

    conn.execute("ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT 'unknown'")
    conn.execute("ALTER TABLE events ADD COLUMN hash TEXT")
    conn.execute("DROP TRIGGER events_refuse_update")  # only for the time of this transaction
    previous, after = GENESIS, 0
    while True:
        rows = conn.execute(
            f"SELECT {HASHED_COLUMNS_SQL} FROM events AS e JOIN streams AS s USING (stream_id)"
            " WHERE e.position > ? ORDER BY e.position LIMIT 10000",
            (after,),
        ).fetchall()
        if not rows:
            break
        updates = []
        for row in rows:
            previous = event_hash(previous, *row)
            updates.append((previous, row[0]))
        conn.executemany("UPDATE events SET hash = ? WHERE position = ?", updates)
        after = rows[-1][0]
    _run(REFUSE_UPDATE_TRIGGER + "DROP VIEW event_log;" + AUDIT_VIEW)(conn)


# Each migration takes the schema from version i to i + 1 (list index i).
# Never edit a released migration: add a new one.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _run(EVENTS_DDL + projection_ddl() + PROJECTION_INDEXES),
    _add_actor_and_hash_chain,
]
CURRENT_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, from_version: int, to_version: int = CURRENT_VERSION) -> None:
    """Apply the missing migrations; the caller holds a write transaction."""
    for version in range(from_version, to_version):
        MIGRATIONS[version](conn)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {to_version}")


def _statements(script: str) -> list[str]:
    """Split a script into statements, keeping trigger bodies whole."""
    statements, current = [], ""
    for line in script.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements
