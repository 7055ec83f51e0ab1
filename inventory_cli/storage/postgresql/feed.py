"""The log as a feed on PostgreSQL: reading by position, wake-ups, followers' positions, figures.

A follower LISTENs on its own autocommit connection before its first read, so no
append that commits after that read goes unannounced: every appending statement
sends a notification at its COMMIT (feed_schema's trigger). ``wakeup_fileno`` is
the connection's socket, readable when one arrives. A notification can still be
lost (a connection pooler, a queue that filled up, a reconnect), so the head is
also compared every ``poll_interval`` seconds: a follower never stalls for longer
(the eventsourcing library's issue #305 is what happens without this).

Every read is one short statement in autocommit mode: no transaction outlives a
call, so a follower never holds back writers or VACUUM.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from inventory_cli.storage.chain import stored_event
from inventory_cli.storage.errors import StorageBusy, StorageError
from inventory_cli.storage.port import ConsumerPosition, FeedFigures, RecordedEvent, StoreFigures
from inventory_cli.storage.postgresql import connection, feed_schema

if TYPE_CHECKING:
    import psycopg

    from inventory_cli.storage.empty import EmptyFeed, EmptyStore
    from inventory_cli.storage.postgresql.store import PostgresEventStore

POLL_INTERVAL = 1.0  # seconds: the longest a lost notification can delay a follower
_SHORT_WAIT = "20ms"  # a save that need not wait gives up on a locked row after this

_READ_AFTER = (
    "SELECT e.position, e.version, s.store, s.product, e.type, e.quantity, e.data,"
    " e.occurred_at, e.recorded_at, e.actor, e.idempotency_key, e.hash"
    " FROM events AS e JOIN streams AS s USING (stream_id)"
    " WHERE e.position > %s ORDER BY e.position LIMIT %s"
)
_HEAD = "SELECT coalesce(max(position), 0) FROM events"
_UTC_NOW = "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
_SAVE = (
    "INSERT INTO consumers (consumer, position, updated_at) VALUES (%s, %s, " + _UTC_NOW + ")"
    " ON CONFLICT (consumer) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at"
)


def open_feed(url: str, *, busy_timeout: float) -> PostgresLogFeed | EmptyFeed:
    """The feed of the schema at ``url``; an EmptyFeed when it holds no log yet."""
    from inventory_cli.storage.postgresql.store import open_store

    return feed_of(open_store(url, create=False, busy_timeout=busy_timeout))


def feed_of(store: PostgresEventStore | EmptyStore) -> PostgresLogFeed | EmptyFeed:
    """The feed on a store opened without ``create`` (it takes the store's connection)."""
    from inventory_cli.storage.empty import EmptyFeed, EmptyStore

    if isinstance(store, EmptyStore):
        return EmptyFeed()
    try:
        return PostgresLogFeed(store)
    except BaseException:
        store.close()
        raise


class PostgresLogFeed:
    """The PostgreSQL implementation of the port's ``LogFeed``, on an opened store's connection."""

    poll_interval = POLL_INTERVAL

    def __init__(self, store: PostgresEventStore) -> None:
        self.store = store
        self._notified = False
        self._wake_fd: int | None = None
        self._listen()
        self._head = self._fetch(_HEAD)[0][0]

    @property
    def conn(self) -> psycopg.Connection:
        return self.store.conn

    def _listen(self) -> None:
        """LISTEN (before any read), on the store's connection or a new one after a loss."""
        import psycopg

        self.store._reconnect_if_lost()
        conn = self.conn
        self._schema = connection.first_schema(conn)[0]
        conn.add_notify_handler(self._on_notify)
        try:
            conn.execute(f"LISTEN {feed_schema.CHANNEL}")
        except psycopg.Error as error:
            raise self._mapped(error) from None
        # The caller polls one descriptor for the whole run: a duplicate of the socket,
        # pointed at the new one after a reconnection.
        if self._wake_fd is None:
            self._wake_fd = os.dup(conn.fileno())
        else:
            os.dup2(conn.fileno(), self._wake_fd)

    def _on_notify(self, notify: psycopg.Notify) -> None:
        """Called by psycopg for notifications that arrive while a statement runs."""
        if notify.payload == self._schema:
            self._notified = True

    def _mapped(self, error: BaseException) -> Exception:
        self.store._after_failure(error)
        return connection.mapped(error, self.store.url)

    def _fetch(self, sql: str, params: tuple = ()) -> list[tuple]:
        """One short statement's rows. A lost connection is made again (retried up to the
        busy timeout, then StorageBusy) and listened on before the statement is repeated:
        a server restart costs a follower a pause, not its run."""
        import psycopg

        for attempt in (1, 2):
            if self.conn.closed:
                self._listen()
                self._notified = True  # what was announced meanwhile is unknown
            try:
                return self.conn.execute(sql, params).fetchall()
            except psycopg.Error as error:
                mapped = self._mapped(error)
                if attempt == 2 or not self.conn.closed:
                    raise mapped from None
        raise AssertionError("unreachable")

    # -- following --------------------------------------------------------------------

    def read_after(self, position: int, limit: int) -> list[RecordedEvent]:
        return [
            RecordedEvent(position, version, store, product, stored_event(type_name, quantity, data),
                          occurred_at, recorded_at, actor, key, hash_, data)
            for (position, version, store, product, type_name, quantity, data, occurred_at,
                 recorded_at, actor, key, hash_) in self._fetch(_READ_AFTER, (position, limit))
        ]

    def may_have_changed(self) -> bool:
        """A notification for this schema arrived, or (the fallback) the head moved."""
        self._drain_notifications()
        head = self._fetch(_HEAD)[0][0]
        notified, self._notified = self._notified, False
        moved, self._head = head != self._head, head
        return notified or moved

    def _drain_notifications(self) -> None:
        """Read what the socket holds (so that it stops being readable) and note ours."""
        import psycopg

        if self.conn.closed:
            return
        pgconn = self.conn.pgconn
        try:
            pgconn.consume_input()
        except psycopg.Error:  # lost: the next statement connects again
            self.conn.close()
            return
        while (notify := pgconn.notifies()) is not None:
            if notify.extra.decode("utf-8", "replace") == self._schema:
                self._notified = True

    def wakeup_fileno(self) -> int | None:
        """The connection's socket (the same number for the whole run, reconnections included):
        readable when a notification, or anything else, arrives."""
        return self._wake_fd

    # -- consumers ----------------------------------------------------------------------

    def consumer_position(self, consumer: str) -> int | None:
        rows = self._fetch("SELECT position FROM consumers WHERE consumer = %s", (consumer,))
        return rows[0][0] if rows else None

    def save_position(self, consumer: str, position: int, *, wait: bool) -> bool:
        """One upsert in a transaction of its own; it touches no table writers use."""
        import psycopg

        if self.conn.closed:
            self._listen()
        try:
            with self.conn.transaction():
                if not wait:
                    self.conn.execute(f"SET LOCAL lock_timeout = '{_SHORT_WAIT}'")
                self.conn.execute(_SAVE, (consumer, position))
            return True
        except psycopg.errors.InsufficientPrivilege:
            raise StorageError(
                f"The role may not save the position of consumer {consumer} at {self.store.location}: "
                "it needs INSERT and UPDATE on the table consumers (see docs/postgresql.md). Follow "
                "without --consumer, or have the owner grant them."
            ) from None
        except psycopg.Error as error:
            mapped = self._mapped(error)
            if isinstance(mapped, StorageBusy) and not wait:
                return False
            raise mapped from None

    def consumers(self) -> list[ConsumerPosition]:
        """Every saved follower position, by name, with its lag behind the head."""
        return [ConsumerPosition(*row) for row in self._fetch(_CONSUMERS)]

    # -- metrics ------------------------------------------------------------------------

    def figures(self, now: str) -> FeedFigures:
        """The figures of `inventory metrics`, all read in one snapshot.

        Events per type are the event_counts tally plus the events after it (since
        the last `metrics`, as a rule); the tally then moves on to the head.
        """
        import psycopg

        if self.conn.closed:
            self._listen()
        conn = self.conn
        try:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                head = conn.execute(_HEAD).fetchone()[0]  # type: ignore[index]
                through = conn.execute(feed_schema.THROUGH_SQL).fetchone()[0]  # type: ignore[index]
                counted = dict(conn.execute("SELECT type, events FROM event_counts").fetchall())
                tail = conn.execute(feed_schema.TAIL_SQL, (through, head)).fetchall()
                lines = {store: (count, low) for store, count, low in conn.execute(_STOCK_FIGURES)}
                open_ = dict(conn.execute(_OPEN_RESERVATIONS).fetchall())
                overdue = dict(conn.execute(_OVERDUE_RESERVATIONS, (now,)).fetchall())
                incoming = dict(conn.execute(_INCOMING_TRANSFERS).fetchall())
                followers = tuple(ConsumerPosition(*row) for row in conn.execute(_CONSUMERS))
        except psycopg.Error as error:
            raise self._mapped(error) from None
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
        """Move the tally from ``through`` to ``head`` in a short transaction; skipped when
        another run holds it, another run moved it, or the role may not write it."""
        import psycopg

        conn = self.conn
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{_SHORT_WAIT}'")
                conn.execute("LOCK TABLE event_counts IN SHARE ROW EXCLUSIVE MODE")
                if conn.execute(feed_schema.THROUGH_SQL).fetchone()[0] == through:  # type: ignore[index]
                    with conn.cursor() as cursor:
                        cursor.executemany(feed_schema.TALLY_SQL, [(t, n, head) for t, n in tail])
                    conn.execute("UPDATE event_counts SET through = %s", (head,))
        except psycopg.errors.InsufficientPrivilege:
            pass
        except psycopg.errors.LockNotAvailable:
            pass
        except psycopg.Error as error:
            raise self._mapped(error) from None

    def close(self) -> None:
        if self._wake_fd is not None:
            os.close(self._wake_fd)
            self._wake_fd = None
        self.store.close()


_CONSUMERS = (
    "SELECT consumer, position, greatest(0, (" + _HEAD + ") - position)::bigint"
    " FROM consumers ORDER BY consumer"
)
# Per store, from the projections only, each through an index that holds just the rows
# it counts: the open reservations by stream, the overdue ones by expiry, the open transfers.
_STOCK_FIGURES = (
    "SELECT store, count(*), count(*) FILTER (WHERE reorder_point IS NOT NULL"
    " AND on_hand - reserved <= reorder_point) FROM stock GROUP BY store"
)
_OPEN_RESERVATIONS = (
    "SELECT s.store, sum(r.open)::bigint FROM (SELECT stream_id, count(*) AS open FROM reservations"
    " WHERE status = 'open' GROUP BY stream_id) AS r JOIN streams AS s USING (stream_id)"
    " GROUP BY s.store"
)
_OVERDUE_RESERVATIONS = (
    "SELECT s.store, count(*) FROM reservations AS r JOIN streams AS s USING (stream_id)"
    " WHERE r.status = 'open' AND r.expires_at <= %s GROUP BY s.store"
)
_INCOMING_TRANSFERS = "SELECT to_store, count(*) FROM transfers WHERE status = 'open' GROUP BY to_store"
