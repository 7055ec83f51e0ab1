"""The log as a feed on SQLite: reading by position, followers' positions, figures.

A follower keeps one connection open and asks ``PRAGMA data_version`` whether
another connection committed since it last asked: a read of the WAL index in
shared memory, cheap enough to poll many times a second. Every read is one
short statement (fetched at once), so no read transaction outlives a call and
neither writers nor checkpoints ever wait for a follower.
"""

from __future__ import annotations

import sqlite3

from inventory_cli.storage.chain import stored_event
from inventory_cli.storage.empty import EmptyFeed, EmptyStore
from inventory_cli.storage.errors import StorageBusy, StorageError
from inventory_cli.storage.port import ConsumerPosition, FeedFigures, RecordedEvent, StoreFigures
from inventory_cli.storage.sqlite import feed_schema
from inventory_cli.storage.sqlite.connection import is_busy, open_store
from inventory_cli.storage.sqlite.store import SqliteEventStore

POLL_INTERVAL = 0.05  # seconds between two looks at data_version
_SHORT_WAIT_MS = 20  # a save that need not wait gives up on a busy database after this

_READ_AFTER = (
    "SELECT e.position, e.version, s.store, s.product, e.type, e.quantity, e.data,"
    " e.occurred_at, e.recorded_at, e.actor, e.idempotency_key, e.hash"
    " FROM events AS e JOIN streams AS s USING (stream_id)"
    " WHERE e.position > ? ORDER BY e.position LIMIT ?"
)


def open_feed(location: str, *, busy_timeout: float) -> SqliteLogFeed | EmptyFeed:
    """The feed of the database at ``location``; an EmptyFeed when it does not exist yet."""
    store = open_store(location, create=False, busy_timeout=busy_timeout)
    if isinstance(store, EmptyStore):
        return EmptyFeed()
    return SqliteLogFeed(store, busy_timeout)


class SqliteLogFeed:
    """The SQLite implementation of the port's ``LogFeed``, on an opened store's connection."""

    poll_interval = POLL_INTERVAL

    def __init__(self, store: SqliteEventStore, busy_timeout: float) -> None:
        self.store = store
        self.conn = store.conn
        self._busy_ms = int(busy_timeout * 1000)
        # Saved positions are not events: losing the last one to a power cut only
        # means a few lines are delivered again, so the commit does not wait for fsync.
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self._data_version = self._current_data_version()

    def _current_data_version(self) -> int:
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def read_after(self, position: int, limit: int) -> list[RecordedEvent]:
        rows = self.conn.execute(_READ_AFTER, (position, limit)).fetchall()
        return [
            RecordedEvent(position, version, store, product, stored_event(type_name, quantity, data),
                          occurred_at, recorded_at, actor, key, hash_, data)
            for (position, version, store, product, type_name, quantity, data, occurred_at,
                 recorded_at, actor, key, hash_) in rows
        ]

    def may_have_changed(self) -> bool:
        version = self._current_data_version()
        changed, self._data_version = version != self._data_version, version
        return changed

    def wakeup_fileno(self) -> int | None:
        return None

    def consumer_position(self, consumer: str) -> int | None:
        row = self.conn.execute("SELECT position FROM consumers WHERE consumer = ?", (consumer,)).fetchone()
        return None if row is None else row[0]

    def save_position(self, consumer: str, position: int, *, wait: bool) -> bool:
        conn = self.conn
        if not wait:
            conn.execute(f"PRAGMA busy_timeout = {_SHORT_WAIT_MS}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO consumers (consumer, position, updated_at)"
                " VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))"
                " ON CONFLICT (consumer) DO UPDATE SET position = excluded.position,"
                " updated_at = excluded.updated_at",
                (consumer, position),
            )
            conn.execute("COMMIT")
            return True
        except sqlite3.Error as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if is_busy(error):
                if wait:
                    raise StorageBusy(str(error)) from None
                return False
            if (getattr(error, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_READONLY:
                raise StorageError(
                    f"The database {self.store.location} is read-only, so the position of "
                    f"consumer {consumer} cannot be saved. Follow without --consumer, or give "
                    "this user write access to the file and its folder."
                ) from None
            raise
        finally:
            if not wait:
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")

    def consumers(self) -> list[ConsumerPosition]:
        """Every saved follower position, by name, with its lag behind the head."""
        rows = self.conn.execute(
            "SELECT consumer, position,"
            " max(0, coalesce((SELECT max(position) FROM events), 0) - position)"
            " FROM consumers ORDER BY consumer"
        ).fetchall()
        return [ConsumerPosition(*row) for row in rows]

    def figures(self, now: str) -> FeedFigures:
        """The figures of `inventory metrics`, all read in one snapshot of the file.

        Events per type are the event_counts tally plus the events after it (since
        the last `metrics`, as a rule); the tally then moves on to the head.
        """
        conn = self.conn
        conn.execute("BEGIN")
        try:
            head = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
            through = conn.execute(feed_schema.THROUGH_SQL.format(table="event_counts")).fetchone()[0]
            counted = dict(conn.execute("SELECT type, events FROM event_counts").fetchall())
            tail = conn.execute(feed_schema.TAIL_SQL, (through, head)).fetchall()
            lines = {store: (count, low) for store, count, low in conn.execute(_STOCK_FIGURES)}
            open_ = dict(conn.execute(_OPEN_RESERVATIONS).fetchall())
            overdue = dict(conn.execute(_OVERDUE_RESERVATIONS, (now,)).fetchall())
            incoming = dict(conn.execute(_INCOMING_TRANSFERS).fetchall())
            followers = tuple(self.consumers())
        finally:
            conn.execute("COMMIT")
        if tail:
            self._tally(through, head, tail)
        for type_name, count in tail:
            counted[type_name] = counted.get(type_name, 0) + count
        stores = tuple(
            StoreFigures(store, *lines.get(store, (0, 0)), open_.get(store, 0), overdue.get(store, 0),
                         incoming.get(store, 0))
            for store in sorted(lines.keys() | open_.keys() | incoming.keys())
        )
        return FeedFigures(head, tuple(sorted(counted.items())), stores, followers)

    def _tally(self, through: int, head: int, tail: list[tuple[str, int]]) -> None:
        """Move the event_counts tally from ``through`` to ``head``: a few upserts in a short
        write transaction, skipped when the file is busy or read-only or another run moved it."""
        conn = self.conn
        conn.execute(f"PRAGMA busy_timeout = {_SHORT_WAIT_MS}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            if conn.execute(feed_schema.THROUGH_SQL.format(table="event_counts")).fetchone()[0] == through:
                conn.executemany(feed_schema.TALLY_SQL, [(t, n, head) for t, n in tail])
                conn.execute("UPDATE event_counts SET through = ?", (head,))
            conn.execute("COMMIT")
        except sqlite3.OperationalError as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not is_busy(error) and error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_READONLY:
                raise
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")

    def close(self) -> None:
        self.store.close()


# Per store, from the projections only, each through an index that holds just the rows
# it counts: the open reservations by stream, the overdue ones by expiry, the open transfers.
_STOCK_FIGURES = (
    "SELECT store, count(*), coalesce(sum(reorder_point IS NOT NULL"
    " AND on_hand - reserved <= reorder_point), 0) FROM stock GROUP BY store"
)
_OPEN_RESERVATIONS = (
    "SELECT s.store, sum(r.open) FROM (SELECT stream_id, count(*) AS open FROM reservations"
    " WHERE status = 'open' GROUP BY stream_id) AS r JOIN streams AS s USING (stream_id)"
    " GROUP BY s.store"
)
_OVERDUE_RESERVATIONS = (
    "SELECT s.store, count(*) FROM reservations AS r JOIN streams AS s USING (stream_id)"
    " WHERE r.status = 'open' AND r.expires_at <= ? GROUP BY s.store"
)
_INCOMING_TRANSFERS = "SELECT to_store, count(*) FROM transfers WHERE status = 'open' GROUP BY to_store"
