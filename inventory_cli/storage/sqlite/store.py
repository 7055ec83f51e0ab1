"""The SQLite implementation of the storage port: the log and the projections of one file,
with its transactions. Open one with ``connection.open_store``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from inventory_cli.domain.events import Event
from inventory_cli.storage.errors import TargetNotEmpty
from inventory_cli.storage.port import (
    LineSales,
    PeriodMovement,
    ChainReport,
    KeyRecord,
    LoadedStream,
    LogSummary,
    NewEvent,
    RebuildReport,
    RecordedEvent,
    StockLine,
    StoreTotals,
    StreamInfo,
    T,
    VerifyReport,
)
from inventory_cli.storage.sqlite import overview
from inventory_cli.storage.sqlite import schema
from inventory_cli.storage.sqlite import snapshots as snapshot_rows
from inventory_cli.storage.sqlite.log import EventLog
from inventory_cli.storage.sqlite.projections import Projections, check_beside
from inventory_cli.storage.sqlite.reports import Reports
from inventory_cli.timestamps import utc_now


class _WriteTransaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (a class, not @contextmanager: one per command)."""

    __slots__ = ("store",)

    def __init__(self, store: SqliteEventStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        store = self.store
        store.log.head = (-1, "")  # other processes may have appended since
        if store.on_wait is None:
            store._cursor.execute("BEGIN IMMEDIATE")
            return
        # SQLite waits for the lock inside BEGIN (the GIL released); a timer says so.
        import threading

        notice = threading.Timer(1.0, store.on_wait)
        notice.daemon = True
        notice.start()
        try:
            store._cursor.execute("BEGIN IMMEDIATE")
        finally:
            notice.cancel()

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        store = self.store
        if kind is None:
            store._cursor.execute("COMMIT")
        elif store.conn.in_transaction:
            store.conn.execute("ROLLBACK")


class SqliteEventStore:
    """The storage port over one SQLite connection: an EventLog and its Projections."""

    def __init__(self, conn: sqlite3.Connection, location: str) -> None:
        self.conn = conn
        self.location = location
        # For the write path's one-shot statements (fetched at once, never iterated):
        # reusing a cursor saves creating one per statement, several per command. One,
        # shared by the log and the projections: a cursor keeps its last statement
        # prepared, and while one is, closing the connection leaves the WAL
        # un-checkpointed (a fresh import's scratch file was then published empty).
        self._cursor = conn.cursor()
        self.log = EventLog(conn, self._cursor)
        self.projections = Projections(conn, self._cursor, location)
        self.reports = Reports(conn, location)
        # Called once when a write has waited a second for another writer's lock.
        self.on_wait: Callable[[], object] | None = None

    def close(self) -> None:
        self._cursor.close()
        self.conn.close()

    # -- transactions ---------------------------------------------------------------

    def write(self, streams: Sequence[tuple[str, str]] = (), *, bulk: bool = False) -> _WriteTransaction:
        """One exclusive write transaction (``bulk`` or not: every one holds off the other
        writers; ``streams`` serve a server only): commit on success, roll back on any error."""
        return _WriteTransaction(self)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees one state of the file."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def run_read(self, query: Callable[[SqliteEventStore], T]) -> T:
        return query(self)  # a file is not lost mid-query

    # -- the write side ---------------------------------------------------------------

    def head_position(self) -> int:
        return self.log.head_position()

    def now(self) -> str:
        return utc_now()

    def position_shift(self) -> int:
        return 0  # the session's positions are the stored ones: the write is exclusive

    def lock_streams(self, streams: Sequence[tuple[str, str]]) -> None:
        pass  # the write transaction holds the whole file

    def stream(self, store: str, product: str, *, create: bool) -> StreamInfo | None:
        return self.log.stream(store, product, create=create)

    def stream_by_id(self, stream_id: int) -> StreamInfo:
        return self.log.stream_by_id(stream_id)

    def stream_version(self, stream_id: int) -> int:
        return self.log.stream_version(stream_id)

    def open_streams(self, streams: Sequence[tuple[str, str]]) -> dict[tuple[str, str], LoadedStream]:
        return {key: self.log.load_stream(*key) for key in streams}  # in-process: nothing to batch

    def stream_events(self, stream_id: int) -> tuple[list[Event], str]:
        return self.log.stream_events(stream_id)

    def find_reservation_stream(self, reservation_id: str) -> int | None:
        return self.projections.find_reservation_stream(reservation_id)

    def reservation_status(self, reservation_id: str) -> str | None:
        return self.projections.reservation_status(reservation_id)

    def find_key(self, key: str) -> KeyRecord | None:
        return self.projections.find_key(key)

    def find_keys(self, keys: Sequence[str]) -> dict[str, KeyRecord]:
        return self.projections.find_keys(keys) if keys else {}

    def append(self, events: Sequence[NewEvent], lines: Sequence[tuple[int, StockLine]]) -> None:
        """Append the events and update the projections, in the open write transaction."""
        if events:
            side = self.log.append(events)
            if side:
                self.projections.write_side_tables(side)
        self.projections.write_lines(lines)

    # -- reads ------------------------------------------------------------------------

    def read_stream(
        self,
        stream_id: int,
        *,
        until_position: int | None = None,
        until_time: str | None = None,
    ) -> Iterator[RecordedEvent]:
        return self.log.read_stream(stream_id, until_position=until_position, until_time=until_time)

    def read_log(
        self,
        *,
        store: str | None = None,
        after_position: int = 0,
        until_time: str | None = None,
    ) -> Iterator[RecordedEvent]:
        return self.log.read_log(store=store, after_position=after_position, until_time=until_time)

    def verify_chain(self, anchor: tuple[int, str] | None = None) -> ChainReport:
        """Recompute every event's hash from its content and the previous event's hash."""
        try:
            with self.snapshot():
                return self.log.verify_chain(anchor)
        except sqlite3.OperationalError as error:
            if not is_undecodable(error):
                raise
        with self.snapshot(), _lenient_text(self.conn):
            return self.log.verify_chain(anchor)

    def stock_lines(
        self, store: str | None, product: str | None, *, low: bool = False
    ) -> list[StockLine]:
        return self.projections.stock_lines(store, product, low=low)

    def open_reservations(self, store: str | None, product: str | None) -> list[dict[str, object]]:
        return self.projections.open_reservations(store, product)

    def overdue_streams(self, now: str) -> list[int]:
        return self.projections.overdue_streams(now)

    def find_transfer_stream(self, transfer_id: str) -> int | None:
        return self.projections.find_transfer_stream(transfer_id)

    def product_name(self, product: str) -> str | None:
        return self.projections.product_name(product)

    def transfers(self, *, open_only: bool) -> list[dict[str, object]]:
        return self.projections.transfers(open_only=open_only)

    def replay_lines(
        self,
        store: str | None,
        product: str | None,
        *,
        until_position: int | None,
        until_time: str | None,
    ) -> list[StockLine]:
        return self.projections.replay_lines(
            store, product, until_position=until_position, until_time=until_time
        )

    # -- rebuild and check --------------------------------------------------------------

    def rebuild_projections(self) -> RebuildReport:
        """Rebuild every projection from the log in one write transaction (readers keep
        seeing the old tables until it commits; a crash leaves them in place)."""
        with self.write():
            return self.projections.rebuild(self.log.head_position())

    def restore(self, events: Iterable[RecordedEvent]) -> int:
        """Load exported events into this empty log and build the projections, in one write
        transaction: a bad line (raised by ``events``) or a log with events leaves it as it was."""
        with self.write():
            if self.log.head_position() != 0:
                raise TargetNotEmpty(
                    f"The database {self.location} already has events; restore loads into an empty one only."
                )
            count = self.log.load(events)
            schema.replace_projections(self.conn, schema.PROJECTION_TABLES)
        return count

    def check_projections(self) -> RebuildReport:
        """Compare the projections with what the log says, changing nothing."""
        try:
            with self.snapshot():
                return self.projections.check(self.log.head_position())
        except sqlite3.OperationalError as error:
            if not is_undecodable(error):
                raise
        with self.snapshot(), _lenient_text(self.conn):
            return self.projections.check(self.log.head_position())

    # -- reports ------------------------------------------------------------------------

    def period_movements(
        self,
        store: str | None,
        product: str | None,
        *,
        by: str,
        since: str | None,
        until: str | None,
    ) -> list[PeriodMovement]:
        return self.reports.period_movements(store, product, by=by, since=since, until=until)

    def line_sales(self, store: str | None, *, after: str, until: str) -> list[LineSales]:
        return self.reports.line_sales(store, after=after, until=until)

    # -- small reads for people and shells ------------------------------------------------

    def store_totals(self) -> list[StoreTotals]:
        return overview.store_totals(self.conn)

    def summary(self) -> LogSummary:
        with self.snapshot():
            return overview.summary(self.conn)

    def product_codes(self, store: str | None) -> list[str]:
        return overview.product_codes(self.conn, store)

    def store_codes(self) -> list[str]:
        return overview.store_codes(self.conn)

    def open_ids(self) -> tuple[list[str], list[str]]:
        return overview.open_ids(self.conn)

    def event_at(self, position: int) -> tuple[int, RecordedEvent] | None:
        return overview.event_at(self.conn, position)

    def revert_of(self, stream_id: int, position: int) -> int | None:
        return overview.revert_of(self.conn, stream_id, position)

    def verify(self, anchor: tuple[int, str] | None = None) -> VerifyReport:
        """The chain, recomputed here in Python, while a second connection compares the
        projections in SQL on the other core (sqlite3 releases the GIL as SQLite works).
        Both read the same state when they see the same head; otherwise the check runs
        again here, after the chain."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:
            beside = pool.submit(check_beside, self.location)
            chain = self.verify_chain(anchor)
            checked = beside.result()
        if checked is not None and checked[0] == (chain.head_position, chain.head_hash or None):
            return VerifyReport(chain, checked[1])
        return VerifyReport(chain, self.check_projections())

    def load_stream(self, store: str, product: str) -> LoadedStream:
        return self.log.load_stream(store, product)

    def load_stream_by_id(self, stream_id: int) -> LoadedStream:
        return self.log.load_stream_by_id(stream_id)

    def write_snapshots(self, snapshots: Sequence[tuple[int, int, str]]) -> None:
        if snapshots:
            snapshot_rows.write(self.conn, snapshots)


def is_undecodable(error: sqlite3.Error) -> bool:
    """True for a text column holding bytes that are not UTF-8 (only a change made
    behind the tool's back stores such bytes)."""
    return str(error).startswith("Could not decode to UTF-8")


@contextmanager
def _lenient_text(conn: sqlite3.Connection) -> Iterator[None]:
    """Read text that is not UTF-8 as text with the bytes escaped, instead of failing:
    for verify, which must name the changed event rather than stop at it. (Slower than
    the default, so only used once the default has failed.)"""
    conn.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
    try:
        yield
    finally:
        conn.text_factory = str
