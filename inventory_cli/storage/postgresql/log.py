"""The event log on PostgreSQL: the write transaction, stream locks, append.

A write transaction runs in psycopg's pipeline mode: statements whose results
are not needed at once (BEGIN, the projection updates, the append) travel with
the next one that is, so the append, which takes the log lock, reaches the
server in the same round trip as the COMMIT. A flush of thousands of events
(an import) is COPYed instead (bulk.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from inventory_cli.domain.events import Event
from inventory_cli.storage.chain import payload, stored_event
from inventory_cli.storage.port import KeyRecord, LoadedStream, NewEvent, StockLine, StreamInfo
from inventory_cli.storage.postgresql import bulk, connection
from inventory_cli.storage.postgresql import snapshots as snapshot_table
from inventory_cli.storage.postgresql.log_reads import LogReads
from inventory_cli.storage.postgresql.projections import ProjectionWrites
from inventory_cli.storage.postgresql.schema import IMPORT_LOCK_SQL, STREAM_LOCK_SQL, WRITER_LOCK_SQL
from inventory_cli.storage.snapshot_rows import LOAD_COLUMNS, LOAD_JOINS, loaded_stream

if TYPE_CHECKING:
    import psycopg

# The server's clock in the format of timestamps.utc_now, and the head, at BEGIN.
_CLOCK_AND_HEAD = (
    "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'),"
    " coalesce((SELECT max(position) FROM events), 0)"
)
_CLOCK = (
    "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
)


class _WriteTransaction:
    """BEGIN … COMMIT in pipeline mode; errors become the port's errors."""

    __slots__ = ("store", "streams", "bulk")

    def __init__(self, store: EventLog, streams: Sequence[tuple[str, str]], bulk: bool) -> None:
        self.store = store
        self.streams = streams
        self.bulk = bulk

    def __enter__(self) -> None:
        store = self.store
        store._reconnect_if_lost()
        store._append_cursor = None
        store._proposed_first = store._first = None
        store._name_cursors = {}
        store._names_now = {}
        store._preloaded = {}
        store._bulk = self.bulk
        begun = store.tables_pending  # then BEGIN and the tables, before the pipeline (DDL scripts)
        if begun:
            connection.begin_with_tables(store.conn, store.url)
        store._enter_pipeline()
        store._in_write = True
        try:
            if not begun:
                store.conn.execute("BEGIN")
            store.conn.execute(f"SELECT {IMPORT_LOCK_SQL if self.bulk else WRITER_LOCK_SQL}")
            clock = store.conn.execute(_CLOCK_AND_HEAD)
            # The round trip ends with a Sync, not a Flush: waiting for the client after
            # it, the session is "idle in transaction", so idle_in_transaction_session_timeout
            # ends a command that stops there (its process suspended) and frees its locks.
            store._sync_at_fetch = True
            if self.streams:  # locked and loaded in the same round trip as the clock
                store._preloaded = store.open_streams(self.streams)
            store._sync_if_asked()
            store._now, store._head = clock.fetchone()  # type: ignore[misc]
        except BaseException as error:
            self.__exit__(type(error), error, None)
            raise

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, _tb: object) -> None:
        import psycopg

        store = self.store
        store._in_write = False
        store._now = None
        store._preloaded = {}
        try:
            if kind is None:
                store.conn.execute("COMMIT")
            store._leave_pipeline()
        except psycopg.Error as error:
            store._after_failure(error)
            if kind is None:
                store._shift = 0
                raise connection.mapped(error, store.url, writing=True) from None
        else:
            if kind is None:
                store.tables_pending = False  # committed with this write, if it made them
            if kind is None and store._append_cursor is not None:
                store._first = store._append_cursor.fetchone()[0]
            if kind is None and store._first is not None:
                store._shift = store._first - store._proposed_first
        finally:
            store._append_cursor = None
        if kind is not None:
            connection.rollback_quietly(store.conn)
            if isinstance(value, psycopg.Error):
                raise connection.mapped(value, store.url, writing=True) from None


class EventLog(LogReads, ProjectionWrites):
    """The log half of PostgresEventStore (its reads are in log_reads.py, the projections
    half in projections.py)."""

    conn: psycopg.Connection
    url: str
    busy_timeout: float
    tables_pending: bool

    def _init_log(self) -> None:
        self._in_write = False
        self._bulk = False  # this write holds off every other writer: no stream locks
        self._now: str | None = None
        self._head = 0
        self._shift = 0
        self._append_cursor: Any = None
        self._proposed_first: int | None = None
        self._first: int | None = None  # the position the server gave the first event
        self._pipeline: Any = None
        self._pipe: Any = None
        self._names: dict[int, tuple[str, str]] = {}
        # Inside a write: each locked stream's product name, read in the same round trip,
        # so that the answer's name needs no query between the append and the COMMIT.
        self._name_cursors: dict[str, Any] = {}
        self._names_now: dict[str, str | None] = {}
        # Inside a write: the streams its command named, locked and loaded at BEGIN.
        self._preloaded: dict[tuple[str, str], LoadedStream] = {}
        self._sync_at_fetch = False  # the next fetch of a write sends a Sync (see __enter__)

    # -- connection upkeep ----------------------------------------------------------------

    def _reconnect_if_lost(self) -> None:
        if self.conn.closed:
            self.conn = connection.connect(self.url, self.busy_timeout)

    def _after_failure(self, error: BaseException) -> None:
        connection.close_if_lost(self.conn, error)

    def _enter_pipeline(self) -> None:
        self._pipeline = self.conn.pipeline()  # the context manager; what it yields, below
        self._pipe = self._pipeline.__enter__()

    def _sync_if_asked(self) -> None:
        if self._sync_at_fetch and self._pipeline is not None:
            self._sync_at_fetch = False
            self._pipe.sync()

    def _leave_pipeline(self) -> None:
        """Send what is queued and collect every result (raising the first error)."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.__exit__(None, None, None)

    # -- transactions -----------------------------------------------------------------------

    def write(self, streams: Sequence[tuple[str, str]] = (), *, bulk: bool = False) -> _WriteTransaction:
        return _WriteTransaction(self, streams, bulk)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read-only transaction: every query inside sees one state of the log."""
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield

    def now(self) -> str:
        """The server's clock (read at BEGIN inside a write transaction)."""
        if self._now is not None:
            return self._now
        return self.conn.execute(_CLOCK).fetchone()[0]  # type: ignore[index]

    def position_shift(self) -> int:
        """How far the last committed write's positions moved from those the session proposed."""
        return self._shift

    # -- the write side --------------------------------------------------------------------

    def head_position(self) -> int:
        if self._in_write:
            return self._head
        return self.conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]  # type: ignore[index]

    def _lock_stream(self, store: str, product: str) -> None:
        """Writers of one stream decide one after another (a transaction-level lock)."""
        if self._in_write:
            if not self._bulk:
                self.conn.execute(STREAM_LOCK_SQL, (store, product))
            if product not in self._name_cursors:
                self._name_cursors[product] = self.conn.execute(
                    "SELECT name FROM products WHERE product = %s", (product,)
                )

    def lock_streams(self, streams: Sequence[tuple[str, str]]) -> None:
        for store, product in streams:
            self._lock_stream(store, product)

    def stream(self, store: str, product: str, *, create: bool) -> StreamInfo | None:
        if create:
            return self.load_stream(store, product).info
        self._lock_stream(store, product)
        row = self.conn.execute(
            "SELECT stream_id FROM streams WHERE store = %s AND product = %s", (store, product)
        ).fetchone()
        if row is None:
            return None
        self._names[row[0]] = (store, product)
        return StreamInfo(row[0], store, product)

    def load_stream(self, store: str, product: str) -> LoadedStream:
        """Lock the stream, create it if new, then read it from its snapshot (a statement after the lock)."""
        loaded = self._preloaded.pop((store, product), None)
        return loaded or self.open_streams([(store, product)])[(store, product)]

    def open_streams(self, streams: Sequence[tuple[str, str]]) -> dict[tuple[str, str], LoadedStream]:
        """load_stream for many streams in one round trip: locked in sorted order (so
        that two importers cannot deadlock on them), created in the order given."""
        if not streams:
            return {}
        for store, product in sorted(streams):
            self._lock_stream(store, product)
        stores, products = [s for s, _ in streams], [p for _, p in streams]
        self.conn.execute(
            "INSERT INTO streams (store, product) SELECT x.store, x.product"
            " FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS x(store, product, i)"
            " WHERE NOT EXISTS (SELECT 1 FROM streams AS s WHERE s.store = x.store AND s.product = x.product)"
            " ORDER BY x.i",
            (stores, products),
        )
        return self._loaded(
            " FROM unnest(%s::text[], %s::text[]) AS x(store, product)"
            " JOIN streams AS s ON s.store = x.store AND s.product = x.product",
            "", (stores, products),
        )

    def load_stream_by_id(self, stream_id: int) -> LoadedStream:
        self._lock_stream(*self._name(stream_id))
        return next(iter(self._loaded(" FROM streams AS s", " WHERE s.stream_id = %s", (stream_id,)).values()))

    def _loaded(self, source: str, where: str, params: tuple) -> dict[tuple[str, str], LoadedStream]:
        """The streams of ``source`` (a FROM naming ``streams AS s``), each from its snapshot."""
        cursor = self.conn.execute(
            f"SELECT s.stream_id, s.store, s.product, {LOAD_COLUMNS}{source}{LOAD_JOINS}{where}"
            " ORDER BY s.stream_id, e.version",
            params,
        )
        self._sync_if_asked()
        rows = cursor.fetchall()
        loaded: dict[tuple[str, str], LoadedStream] = {}
        for stream_id, group in groupby(rows, key=itemgetter(0)):
            stream_rows = list(group)
            store, product = stream_rows[0][1:3]
            self._names[stream_id] = (store, product)
            info = StreamInfo(stream_id, store, product)
            loaded[(store, product)] = loaded_stream(info, [row[3:] for row in stream_rows], self.stream_events)
        return loaded

    def write_snapshots(self, snapshots: Sequence[tuple[int, int, str]]) -> None:
        if snapshots:
            snapshot_table.write(self.conn, snapshots)

    def stream_by_id(self, stream_id: int) -> StreamInfo:
        store, product = self._name(stream_id)
        self._lock_stream(store, product)
        return StreamInfo(stream_id, store, product)

    def _name(self, stream_id: int) -> tuple[str, str]:
        names = self._names.get(stream_id)
        if names is None:
            row = self.conn.execute(
                "SELECT store, product FROM streams WHERE stream_id = %s", (stream_id,)
            ).fetchone()
            assert row is not None, f"no stream {stream_id}"
            names = self._names[stream_id] = (row[0], row[1])
        return names

    def stream_version(self, stream_id: int) -> int:
        self._lock_stream(*self._name(stream_id))
        return self.conn.execute(
            "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = %s", (stream_id,)
        ).fetchone()[0]  # type: ignore[index]

    def stream_events(self, stream_id: int) -> tuple[list[Event], str]:
        rows = self.conn.execute(
            "SELECT type, quantity, data, occurred_at FROM events WHERE stream_id = %s ORDER BY version",
            (stream_id,),
        ).fetchall()
        if not rows:
            return [], ""
        return [stored_event(t, q, d) for t, q, d, _ in rows], rows[-1][3]

    def find_reservation_stream(self, reservation_id: str) -> int | None:
        return self._one("SELECT stream_id FROM reservations WHERE reservation_id = %s", reservation_id)

    def reservation_status(self, reservation_id: str) -> str | None:
        return self._one("SELECT status FROM reservations WHERE reservation_id = %s", reservation_id)

    def find_transfer_stream(self, transfer_id: str) -> int | None:
        return self._one(
            "SELECT s.stream_id FROM transfers AS t"
            " JOIN streams AS s ON s.store = t.to_store AND s.product = t.product"
            " WHERE t.transfer_id = %s",
            transfer_id,
        )

    def product_name(self, product: str) -> str | None:
        if self._in_write:
            if product in self._names_now:
                return self._names_now[product]
            cursor = self._name_cursors.get(product)
            if cursor is not None:  # its result came with the stream's events
                row = cursor.fetchone()
                name = self._names_now[product] = None if row is None else row[0]
                return name
        return self._one("SELECT name FROM products WHERE product = %s", product)

    def find_key(self, key: str) -> KeyRecord | None:
        row = self.conn.execute(
            "SELECT key, command_hash, stream_id, position FROM idempotency_keys WHERE key = %s", (key,)
        ).fetchone()
        return None if row is None else KeyRecord(*row)

    def find_keys(self, keys: Sequence[str]) -> dict[str, KeyRecord]:
        if not keys:
            return {}
        rows = self.conn.execute(
            "SELECT key, command_hash, stream_id, position FROM idempotency_keys WHERE key = ANY(%s)",
            (list(keys),),
        ).fetchall()
        return {row[0]: KeyRecord(*row) for row in rows}

    def _one(self, sql: str, value: object) -> Any:
        row = self.conn.execute(sql, (value,)).fetchone()
        return None if row is None else row[0]

    def append(self, events: Sequence[NewEvent], lines: Sequence[tuple[int, StockLine]]) -> None:
        """Queue the projection updates and the append; they reach the server with the COMMIT.

        The server assigns positions and hashes under the log lock; ``position_shift``
        tells the caller, after the commit, how far they moved from the proposed ones.
        """
        if events:
            self._write_side_tables(events)
        self._write_lines(lines)
        if not events:
            return
        if len(events) >= bulk.BULK_EVENTS:
            self._append_bulk(events)
            return
        columns: list[list[Any]] = [[] for _ in range(12)]
        (stream_ids, stores, products, versions, types, quantities, payloads, occurred, recorded,
         actors, keys, hashes) = columns
        for stream_id, _position, version, event, occurred_at, recorded_at, key, command_hash, actor in events:
            store, product = self._names.get(stream_id) or self._name(stream_id)
            stream_ids.append(stream_id)
            stores.append(store)
            products.append(product)
            versions.append(version)
            types.append(type(event).__name__)
            quantities.append(event[0])
            payloads.append(payload(event))
            occurred.append(occurred_at)
            recorded.append(recorded_at)
            actors.append(actor)
            keys.append(key)
            hashes.append(command_hash)
        cursor = self.conn.cursor()
        cursor.execute(
            "SELECT inventory_append(%s::bigint[], %s::text[], %s::text[], %s::integer[], %s::text[],"
            " %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])",
            columns,
        )
        if self._proposed_first is None:  # later appends of this transaction follow on directly
            self._append_cursor = cursor
            self._proposed_first = events[0].position
        if len(self._names) > 10_000:
            self._names.clear()

    def _append_bulk(self, events: Sequence[NewEvent]) -> None:
        """COPY a big flush (bulk.py): the log lock first, then the head, then the rows."""
        self._names_of({new.stream_id for new in events})
        self.conn.execute(bulk.LOCK_SQL)
        after = bulk.head(self.conn.execute(bulk.HEAD_SQL).fetchone())  # type: ignore[arg-type]
        self._leave_pipeline()  # COPY cannot run in pipeline mode
        try:
            bulk.copy_events(self.conn, events, self._names.__getitem__, after)
        finally:
            self._enter_pipeline()
        if self._proposed_first is None:
            self._proposed_first, self._first = events[0].position, after[0] + 1
        if len(self._names) > 10_000:
            self._names.clear()

    def _names_of(self, stream_ids: set[int]) -> None:
        """Have every stream's (store, product) at hand, asking for the missing ones at once."""
        missing = [stream_id for stream_id in stream_ids if stream_id not in self._names]
        if missing:
            for stream_id, store, product in self.conn.execute(
                "SELECT stream_id, store, product FROM streams WHERE stream_id = ANY(%s)", (missing,)
            ).fetchall():
                self._names[stream_id] = (store, product)
