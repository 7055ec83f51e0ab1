"""The tables behind the feed (schema version 6): followers' positions and events per type.

``consumers`` is the readers' state, not something the log implies: no rebuild or
check touches it. ``event_counts`` is a projection (schema.PROJECTION_TABLES)
kept off the write path: it tallies the events up to its ``through`` position
(the same in every row; no rows: nothing tallied yet), and `metrics` adds the
events after it and moves ``through`` on (``TALLY_SQL``). A rebuild leaves it
empty, a check compares it with the log up to its own ``through``. The open
reservations' index by stream lets `metrics` count them per store from the index.
"""

from __future__ import annotations

import sqlite3

OPEN_RESERVATIONS_BY_STREAM = (
    "CREATE INDEX IF NOT EXISTS reservations_open_by_stream ON reservations (stream_id)"
    " WHERE status = 'open'"
)

# The tally's position: 0 when it holds nothing yet.
THROUGH_SQL = "SELECT coalesce(max(through), 0) FROM {table}"
# The events after the tally, up to a head, per type: a range of the log's primary key.
TAIL_SQL = "SELECT type, count(*) FROM events WHERE position > ? AND position <= ? GROUP BY type"
TALLY_SQL = (
    "INSERT INTO event_counts (type, events, through) VALUES (?, ?, ?)"
    " ON CONFLICT (type) DO UPDATE SET events = events + excluded.events"
)


def event_counts_fill_sql(suffix: str = "") -> str:
    """The tally as it should be: the log's events per type up to the tally's ``through``.

    For a check (``_expected``) that is the live table's ``through``; for a rebuild
    (``_next``) the new table's, which is empty: the tally starts again from 0.
    """
    tally = "main.event_counts" if suffix == "_expected" else f"event_counts{suffix}"
    through = f"({THROUGH_SQL.format(table=tally)})"
    return (
        f"INSERT INTO event_counts{suffix} (type, events, through)"
        f" SELECT type, count(*), {through} FROM events WHERE position <= {through} GROUP BY type"
    )


def feed_tables(conn: sqlite3.Connection) -> None:
    """Version 6: consumers, the event_counts projection (nothing tallied yet), the index.

    Frozen, like every released migration. Migration 3 builds today's projections,
    so on a file that old event_counts and the index may exist already: the table
    is made again, the index only if missing.
    """
    for statement in (
        "CREATE TABLE IF NOT EXISTS consumers (consumer TEXT PRIMARY KEY,"
        " position INTEGER NOT NULL, updated_at TEXT NOT NULL)",
        "DROP TABLE IF EXISTS event_counts",
        "CREATE TABLE event_counts (type TEXT PRIMARY KEY, events INTEGER NOT NULL,"
        " through INTEGER NOT NULL)",
        OPEN_RESERVATIONS_BY_STREAM,
    ):
        conn.execute(statement)
