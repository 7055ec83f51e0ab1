"""The tables behind the feed (schema version 6): followers' positions and events per type.

``consumers`` is the readers' state, not something the log implies: no rebuild or
check touches it. ``event_counts`` is a projection (schema.PROJECTION_TABLES) that
`metrics` reads instead of counting the log; the open reservations' index by
stream lets it count them per store without reading each row.
"""

from __future__ import annotations

import sqlite3

OPEN_RESERVATIONS_BY_STREAM = (
    "CREATE INDEX IF NOT EXISTS reservations_open_by_stream ON reservations (stream_id)"
    " WHERE status = 'open'"
)


def event_counts_fill_sql(suffix: str = "") -> str:
    # An upsert per event, like schema.fold_streams_sql: faster in SQLite than GROUP BY's sort.
    return (
        f"INSERT INTO event_counts{suffix} (type, events) SELECT type, 1 FROM events WHERE true"
        " ON CONFLICT (type) DO UPDATE SET events = events + 1"
    )


def feed_tables(conn: sqlite3.Connection) -> None:
    """Version 6: consumers, the event_counts projection counted from the log, and the index.

    Frozen, like every released migration. Migration 3 builds today's projections,
    so on a file that old event_counts and the index may exist already: the table
    is made again, the index only if missing.
    """
    for statement in (
        "CREATE TABLE IF NOT EXISTS consumers (consumer TEXT PRIMARY KEY,"
        " position INTEGER NOT NULL, updated_at TEXT NOT NULL)",
        "DROP TABLE IF EXISTS event_counts",
        "CREATE TABLE event_counts (type TEXT PRIMARY KEY, events INTEGER NOT NULL)",
        event_counts_fill_sql(),
        OPEN_RESERVATIONS_BY_STREAM,
    ):
        conn.execute(statement)
