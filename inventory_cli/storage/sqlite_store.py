"""The event log and its projections in one SQLite file.

WAL, ``synchronous=FULL`` and ``BEGIN IMMEDIATE`` writers; a file is used only
when it is new, empty or carries our ``application_id`` (see ``schema``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from inventory_cli.domain.errors import ConcurrencyConflict
from inventory_cli.domain.events import (
    Event,
    ProductDefined,
    ReservationFulfilled,
    StockReleased,
    StockReserved,
    TransferLost,
    TransferReceived,
    TransferShipped,
    event_data,
    event_from_record,
)
from inventory_cli.storage import schema
from inventory_cli.storage.chain import GENESIS, HASHED_COLUMNS_SQL, event_hash
from inventory_cli.storage.port import (
    ChainReport,
    KeyRecord,
    NewEvent,
    RebuildReport,
    RecordedEvent,
    StockLine,
    StreamInfo,
)
from inventory_cli.storage.errors import StorageBusy, StorageError

SQLITE_HEADER = b"SQLite format 3\x00"
_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
# Failures of the disk or the permissions around a sound file, not of its content.
_ENVIRONMENT_CODES = {
    sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM,
}


# Built once: json.dumps with options builds a new encoder at every call.
_PAYLOAD_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_PAYLOADS: dict[tuple[object, ...], str] = {}


def _payload(event: Event) -> str:
    """The event's JSON payload; repeated payloads (same type and reason) are encoded once."""
    key = (type(event), event[1:])
    text = _PAYLOADS.get(key)
    if text is None:
        text = _PAYLOAD_ENCODER.encode(event_data(event))
        if len(_PAYLOADS) > 4096:
            _PAYLOADS.clear()
        _PAYLOADS[key] = text
    return text


# Event types that other projections than `stock` follow (see _write_side_tables).
_SIDE_TABLE_TYPES = frozenset({
    "StockReserved", "StockReleased", "ReservationFulfilled", "TransferShipped",
    "TransferReceived", "TransferLost", "ProductDefined",
})

_EVENT_COLUMNS = "position, stream_id, version, type, quantity, data, occurred_at, recorded_at, actor, hash"
_INSERT_EVENTS = f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES ({', '.join('?' * 10)})"
_INSERT_KEYED_EVENTS = (
    f"INSERT INTO events ({_EVENT_COLUMNS}, idempotency_key, command_hash) VALUES ({', '.join('?' * 12)})"
)

_SHAPES: dict[tuple[str, str], tuple[type, tuple[object, ...]]] = {}
_EVENTS: dict[tuple[str, int, str], Event] = {}


def _event(type_name: str, quantity: int, data: str) -> Event:
    """A stored event as a domain event. The common short payloads ("{}", a reason)
    are parsed and checked once per type, and a frequent event (same type, quantity
    and payload) is built once: events are immutable, so one instance serves all."""
    key = (type_name, quantity, data)
    event = _EVENTS.get(key)
    if event is not None:
        return event
    shape = _SHAPES.get((type_name, data))
    if shape is None:
        event = event_from_record(type_name, quantity, json.loads(data))
        if len(data) > 40:
            return event
        if len(_SHAPES) > 4096:
            _SHAPES.clear()
        _SHAPES[type_name, data] = (type(event), tuple(event)[1:])
    else:
        cls, rest = shape
        event = tuple.__new__(cls, (quantity, *rest))  # type: ignore[assignment]
    if len(_EVENTS) > 4096:
        _EVENTS.clear()
    _EVENTS[key] = event
    return event


def is_busy(error: sqlite3.Error) -> bool:
    return (getattr(error, "sqlite_errorcode", 0) & 0xFF) in _BUSY_CODES


def open_store(
    location: str, *, create: bool, busy_timeout: float = 30.0
) -> SqliteEventStore | None:
    """Open the database at ``location`` (a path or a ``file:`` URI).

    Returns None when the file does not exist and ``create`` is false: a query
    on a database that does not exist yet answers with nothing and creates
    nothing. Raises StorageError for a file that is not ours or not usable.
    """
    is_uri = location.startswith("file:")
    if not is_uri:
        path = Path(location)
        if path.is_dir():
            raise StorageError(f"{location} is a directory, not a database file. Give a file path with --db.")
        if not path.exists():
            if not create:
                return None
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StorageError(f"Cannot create the folder for {location}: {error.strerror}.") from None
        else:
            _check_header(path)
    try:
        conn = sqlite3.connect(
            location, timeout=busy_timeout, isolation_level=None, uri=is_uri, check_same_thread=False
        )
    except sqlite3.Error as error:
        raise StorageError(f"Cannot open the database {location}: {error}.") from None
    store = SqliteEventStore(conn, location)
    try:
        if not store._prepare(create=create):
            conn.close()
            return None
    except BaseException:
        conn.close()
        raise
    return store


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as error:
        raise StorageError(f"Cannot read {path}: {error.strerror}.") from None
    if header and header != SQLITE_HEADER:
        raise StorageError(
            f"{path} is not an SQLite database. Check the --db path or INVENTORY_DB; "
            "the file was left untouched."
        )


class _WriteTransaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (a class, not @contextmanager: one per command)."""

    __slots__ = ("store",)

    def __init__(self, store: SqliteEventStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        self.store._head = (-1, "")  # other processes may have appended since
        self.store._cursor.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        store = self.store
        if kind is None:
            store._cursor.execute("COMMIT")
        elif store.conn.in_transaction:
            store.conn.execute("ROLLBACK")


class SqliteEventStore:
    """The SQLite implementation of the storage port."""

    def __init__(self, conn: sqlite3.Connection, location: str) -> None:
        self.conn = conn
        # For the write path's one-shot statements (fetched at once, never iterated):
        # reusing a cursor saves creating one per statement, several per command.
        self._cursor = conn.cursor()
        self.location = location
        self._names: dict[int, tuple[str, str]] = {}  # stream id -> (store, product)
        self._head: tuple[int, str] = (0, GENESIS)  # (position, hash) of the last event appended

    # -- opening ------------------------------------------------------------------

    def _prepare(self, *, create: bool) -> bool:
        """Check the file is ours; initialise or migrate it. False: empty and not created."""
        state = self._schema_state()
        if state == "empty":
            if not create:
                return False
            self._initialise()
        elif state == "old":
            self._initialise()
        self.conn.execute("PRAGMA synchronous = FULL")
        return True

    def _schema_state(self) -> str:
        try:
            app_id = self.conn.execute("PRAGMA application_id").fetchone()[0]
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            objects = self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as error:
            if is_busy(error):
                raise StorageBusy(str(error)) from None
            if (getattr(error, "sqlite_errorcode", 0) & 0xFF) in _ENVIRONMENT_CODES:
                raise StorageError(
                    f"The database {self.location} can't be opened ({error}). Check the free "
                    "disk space and the permissions of the file and its folder; the file was "
                    "left untouched."
                ) from None
            raise StorageError(
                f"The database {self.location} is damaged or not a database ({error}). "
                "Restore it from a backup; the file was left untouched."
            ) from None
        if app_id == schema.APPLICATION_ID:
            if version > schema.CURRENT_VERSION:
                raise StorageError(
                    f"The database {self.location} was written by a newer version of inventory "
                    f"(schema {version}, this one knows {schema.CURRENT_VERSION}). "
                    "Upgrade inventory; the file was left untouched."
                )
            return "current" if version == schema.CURRENT_VERSION else "old"
        if app_id == 0 and version == 0 and objects == 0:
            return "empty"
        raise StorageError(
            f"The database {self.location} belongs to another application "
            "(it has tables but not inventory's schema). Use another --db path; "
            "the file was left untouched."
        )

    def _initialise(self) -> None:
        mode = self._switch_to_wal()
        if mode.lower() != "wal" and self.location != ":memory:" and not self.location.startswith("file:"):
            raise StorageError(f"Cannot switch {self.location} to WAL mode (got {mode}).")
        with self.write():
            # Another process may have initialised the file while we waited.
            app_id = self.conn.execute("PRAGMA application_id").fetchone()[0]
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if app_id == schema.APPLICATION_ID and version == schema.CURRENT_VERSION:
                return
            schema.migrate(self.conn, version if app_id == schema.APPLICATION_ID else 0)

    def _switch_to_wal(self) -> str:
        """Set WAL mode; two processes creating the same new file may collide here."""
        for attempt in range(50):
            try:
                return self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as error:
                if not is_busy(error) or attempt == 49:
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()

    # -- transactions ---------------------------------------------------------------

    def write(self) -> _WriteTransaction:
        """One exclusive write transaction: commit on success, roll back on any error."""
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

    # -- write side -------------------------------------------------------------------

    def head_position(self) -> int:
        # The head's hash comes with it: the next append chains to it without asking again.
        row = self._cursor.execute("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1").fetchone()
        if self.conn.in_transaction:
            self._head = (row[0], row[1]) if row else (0, GENESIS)
        return row[0] if row else 0

    def stream(self, store: str, product: str, *, create: bool) -> StreamInfo | None:
        row = self.conn.execute(
            "SELECT stream_id FROM streams WHERE store = ? AND product = ?", (store, product)
        ).fetchone()
        if row is not None:
            self._names[row[0]] = (store, product)
            return StreamInfo(row[0], store, product)
        return self._create_stream(store, product) if create else None

    def _create_stream(self, store: str, product: str) -> StreamInfo:
        cursor = self.conn.execute(
            "INSERT INTO streams (store, product) VALUES (?, ?)", (store, product)
        )
        self._names[cursor.lastrowid] = (store, product)  # type: ignore[index]
        return StreamInfo(cursor.lastrowid, store, product)  # type: ignore[arg-type]

    def open_stream(self, store: str, product: str) -> tuple[StreamInfo, list[Event], str]:
        """The stream (created if new) with what stream_events gives, in one query."""
        rows = self._cursor.execute(
            "SELECT s.stream_id, e.type, e.quantity, e.data, e.occurred_at"
            " FROM streams AS s LEFT JOIN events AS e ON e.stream_id = s.stream_id"
            " WHERE s.store = ? AND s.product = ? ORDER BY e.version",
            (store, product),
        ).fetchall()
        if not rows:
            return self._create_stream(store, product), [], ""
        stream_id = rows[0][0]
        self._names[stream_id] = (store, product)
        info = StreamInfo(stream_id, store, product)
        if rows[0][1] is None:  # a stream without events (none is written so, but be lenient)
            return info, [], ""
        return info, [_event(t, q, d) for _, t, q, d, _ in rows], rows[-1][4]

    def stream_by_id(self, stream_id: int) -> StreamInfo:
        store, product = self.conn.execute(
            "SELECT store, product FROM streams WHERE stream_id = ?", (stream_id,)
        ).fetchone()
        self._names[stream_id] = (store, product)
        return StreamInfo(stream_id, store, product)

    def stream_version(self, stream_id: int) -> int:
        return self.conn.execute(
            "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?", (stream_id,)
        ).fetchone()[0]

    def _name(self, stream_id: int) -> tuple[str, str]:
        names = self._names.get(stream_id)
        if names is None:
            info = self.stream_by_id(stream_id)
            names = (info.store, info.product)
        return names

    def _hash_before(self, position: int) -> str:
        if self._head[0] == position - 1:
            return self._head[1]
        row = self.conn.execute(
            "SELECT hash FROM events WHERE position < ? ORDER BY position DESC LIMIT 1", (position,)
        ).fetchone()
        return GENESIS if row is None else row[0]

    def find_reservation_stream(self, reservation_id: str) -> int | None:
        row = self.conn.execute(
            "SELECT stream_id FROM reservations WHERE reservation_id = ?", (reservation_id,)
        ).fetchone()
        return None if row is None else row[0]

    def reservation_status(self, reservation_id: str) -> str | None:
        row = self.conn.execute(
            "SELECT status FROM reservations WHERE reservation_id = ?", (reservation_id,)
        ).fetchone()
        return None if row is None else row[0]

    def find_key(self, key: str) -> KeyRecord | None:
        row = self.conn.execute(
            "SELECT key, command_hash, stream_id, position FROM idempotency_keys WHERE key = ?",
            (key,),
        ).fetchone()
        return None if row is None else KeyRecord(*row)

    def append(self, events: Sequence[NewEvent], lines: Sequence[tuple[int, StockLine]]) -> None:
        if not events:
            self._write_lines(lines)
            return
        rows: list[tuple] = []
        keys: dict[str, tuple] = {}
        side: list[tuple] = []  # events that the reservations, transfers or products tables follow
        keyed = 0
        payload, names, side_types = _payload, self._names, _SIDE_TABLE_TYPES
        previous = self._hash_before(events[0].position)
        # Unpacked rather than read by attribute: this loop runs once per imported row.
        for stream_id, position, version, event, occurred_at, recorded_at, key, command_hash, actor in events:
            type_name, data, quantity = type(event).__name__, payload(event), event[0]
            store, product = names.get(stream_id) or self._name(stream_id)
            previous = event_hash(
                previous, position, store, product, version, type_name, quantity,
                data, occurred_at, recorded_at, actor, key,
            )
            if key is None:
                rows.append((position, stream_id, version, type_name, quantity, data, occurred_at,
                             recorded_at, actor, previous))
            else:
                rows.append((position, stream_id, version, type_name, quantity, data, occurred_at,
                             recorded_at, actor, previous, key, command_hash))
                keys[key] = (key, command_hash, stream_id, position)
                keyed += 1
            if type_name in side_types:
                side.append((event, stream_id, occurred_at, store, product))
        # For a large batch, lift the refuse-replace trigger inside this transaction
        # only (other connections never see it missing; a crash restores it): it
        # costs ~1.4 µs a row, and these inserts use plain INSERT, never REPLACE,
        # with positions and versions that the UNIQUE constraints still check.
        lifted = len(rows) >= 1000
        if lifted:
            self.conn.execute("DROP TRIGGER events_refuse_replace")
        try:
            # Rows without a key leave its two columns out: CPython's sqlite3 binds a None
            # through its adapter lookup, ~0.35 µs each, a tenth of an imported row's insert.
            if keyed == 0:
                self._cursor.executemany(_INSERT_EVENTS, rows)
            else:
                if keyed < len(rows):
                    rows = [row if len(row) == 12 else (*row, None, None) for row in rows]
                self._cursor.executemany(_INSERT_KEYED_EVENTS, rows)
            if lifted:
                self.conn.execute(schema.EVENTS_REFUSE_REPLACE)
            self._head = (events[-1].position, previous)
            if len(self._names) > 10_000:  # keep memory flat over huge catalogues
                self._names.clear()
            if keys:
                self.conn.executemany(
                    "INSERT INTO idempotency_keys (key, command_hash, stream_id, position)"
                    " VALUES (?, ?, ?, ?)",
                    keys.values(),
                )
        except sqlite3.IntegrityError as error:
            raise ConcurrencyConflict(f"another writer appended first ({error})") from None
        if side:
            self._write_side_tables(side)
        self._write_lines(lines)

    def _write_side_tables(self, side: list[tuple]) -> None:
        """Open and close reservations, ship and settle transfers, name products."""
        opened, closed, shipped, settled = [], [], [], []
        named: dict[str, str] = {}
        for event, stream_id, occurred_at, store, product in side:
            if isinstance(event, StockReserved):
                opened.append((event.reservation_id, stream_id, event.quantity,
                               event.customer, occurred_at, event.expires_at))
            elif isinstance(event, StockReleased):
                closed.append(("released", occurred_at, event.reservation_id))
            elif isinstance(event, ReservationFulfilled):
                closed.append(("fulfilled", occurred_at, event.reservation_id))
            elif isinstance(event, TransferShipped):
                shipped.append((event.transfer_id, product, store, event.to_store, event.quantity,
                                occurred_at))
            elif isinstance(event, TransferReceived):
                settled.append((event.quantity, 0, occurred_at, event.transfer_id))
            elif isinstance(event, TransferLost):
                settled.append((0, event.quantity, occurred_at, event.transfer_id))
            elif isinstance(event, ProductDefined) and event.name is not None:
                named[product] = event.name
        if opened:
            self.conn.executemany(
                "INSERT INTO reservations (reservation_id, stream_id, quantity, customer, status,"
                " created_at, expires_at) VALUES (?, ?, ?, ?, 'open', ?, ?)",
                opened,
            )
        if closed:
            self.conn.executemany(
                "UPDATE reservations SET status = ?, closed_at = ? WHERE reservation_id = ?", closed
            )
        if shipped:
            self.conn.executemany(
                "INSERT INTO transfers (transfer_id, product, from_store, to_store, quantity,"
                " received, lost, status, shipped_at) VALUES (?, ?, ?, ?, ?, 0, 0, 'open', ?)",
                shipped,
            )
        if settled:
            self.conn.executemany(
                "UPDATE transfers SET received = received + ?, lost = lost + ?,"
                " status = 'received', received_at = ? WHERE transfer_id = ?",
                settled,
            )
        if named:
            self.conn.executemany(
                "INSERT INTO products (product, name) VALUES (?, ?)"
                " ON CONFLICT (product) DO UPDATE SET name = excluded.name",
                named.items(),
            )

    def _write_lines(self, lines: Sequence[tuple[int, StockLine]]) -> None:
        if not lines:
            return
        # The columns in StockLine's order: a row is the stream id and the line's first eight fields.
        self._cursor.executemany(
            "INSERT INTO stock (stream_id, store, product, on_hand, reserved, version, updated_at,"
            " incoming, reorder_point) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (stream_id) DO UPDATE SET on_hand = excluded.on_hand,"
            " reserved = excluded.reserved, incoming = excluded.incoming,"
            " reorder_point = excluded.reorder_point, version = excluded.version,"
            " updated_at = excluded.updated_at",
            [(stream_id, *line[:8]) for stream_id, line in lines],
        )

    # -- reads ------------------------------------------------------------------------

    def stream_events(self, stream_id: int) -> tuple[list[Event], str]:
        """Every event of a stream in order, with the last one's occurred_at:
        what a writer folds to decide (lighter than read_stream, once per command)."""
        rows = self._cursor.execute(
            "SELECT type, quantity, data, occurred_at FROM events WHERE stream_id = ? ORDER BY version",
            (stream_id,),
        ).fetchall()
        if not rows:
            return [], ""
        return [_event(t, q, d) for t, q, d, _ in rows], rows[-1][3]

    def read_stream(
        self,
        stream_id: int,
        *,
        until_position: int | None = None,
        until_time: str | None = None,
    ) -> Iterator[RecordedEvent]:
        store, product = self._name(stream_id)
        sql = (
            "SELECT position, version, type, quantity, data, occurred_at, recorded_at, actor"
            " FROM events WHERE stream_id = ?"
        )
        params: list[object] = [stream_id]
        if until_position is not None:
            sql += " AND position <= ?"
            params.append(until_position)
        if until_time is not None:
            sql += " AND occurred_at <= ?"
            params.append(until_time)
        for position, version, type_name, quantity, data, occurred_at, recorded_at, actor in (
            self.conn.execute(sql + " ORDER BY version", params)
        ):
            yield RecordedEvent(
                position,
                version,
                store,
                product,
                _event(type_name, quantity, data),
                occurred_at,
                recorded_at,
                actor,
            )

    def read_log(
        self,
        *,
        store: str | None = None,
        after_position: int = 0,
        until_time: str | None = None,
    ) -> Iterator[RecordedEvent]:
        where, params = _filters(
            ("e.position >", after_position or None), ("s.store", store), ("e.occurred_at <=", until_time)
        )
        rows = self.conn.execute(
            "SELECT e.position, e.version, s.store, s.product, e.type, e.quantity, e.data,"
            " e.occurred_at, e.recorded_at, e.actor, e.idempotency_key, e.hash"
            f" FROM events AS e JOIN streams AS s USING (stream_id){where} ORDER BY e.position",
            params,
        )
        for (position, version, store_code, product, type_name, quantity, data, occurred_at,
             recorded_at, actor, key, hash_) in rows:
            yield RecordedEvent(
                position, version, store_code, product,
                _event(type_name, quantity, data),
                occurred_at, recorded_at, actor, key, hash_, data,
            )

    def verify_chain(self, anchor: tuple[int, str] | None = None) -> ChainReport:
        """Recompute every event's hash from its content and the previous event's hash."""
        previous, first_bad, count, head = GENESIS, None, 0, (0, None)
        anchor_ok = None if anchor is None else False
        with self.snapshot():
            rows = self.conn.execute(
                f"SELECT {HASHED_COLUMNS_SQL}, e.hash FROM events AS e"
                " JOIN streams AS s USING (stream_id) ORDER BY e.position"
            )
            for row in rows:
                count += 1
                stored = row[-1]
                expected = event_hash(previous, *row[:-1])
                if first_bad is None and (expected != stored or row[0] != count):
                    # A changed row fails its own hash; a deleted row, its successor's
                    # (or leaves a gap in the positions).
                    first_bad = row[0] if row[0] == count or expected != stored else count
                if anchor is not None and row[0] == anchor[0]:
                    anchor_ok = stored == anchor[1] and expected == stored and first_bad is None
                previous = stored
                head = (row[0], stored)
        return ChainReport(count, first_bad, head[0], head[1], anchor_ok)

    def stock_lines(
        self, store: str | None, product: str | None, *, low: bool = False
    ) -> list[StockLine]:
        where, params = _filters(("st.store", store), ("st.product", product))
        if low:
            where += (" AND" if where else " WHERE") + (
                " st.reorder_point IS NOT NULL AND st.on_hand - st.reserved <= st.reorder_point"
            )
        rows = self.conn.execute(
            "SELECT st.store, st.product, st.on_hand, st.reserved, st.version, st.updated_at,"
            " st.incoming, st.reorder_point, p.name"
            f" FROM stock AS st LEFT JOIN products AS p USING (product){where}"
            " ORDER BY st.store, st.product",
            params,
        )
        return [StockLine(*row) for row in rows]

    def replay_lines(
        self,
        store: str | None,
        product: str | None,
        *,
        until_position: int | None,
        until_time: str | None,
    ) -> list[StockLine]:
        """Stock lines folded in SQL from the log alone (name and reorder point are today's)."""
        where, params = _filters(
            ("e.position <=", until_position), ("e.occurred_at <=", until_time)
        )
        where = where.replace(" WHERE", " AND", 1)
        streams, stream_params = _filters(("store", store), ("product", product))
        if streams:
            where += f" AND e.stream_id IN (SELECT stream_id FROM streams{streams})"
            params = params + stream_params
        self.conn.execute(schema.FOLD_TABLE_DDL.format(table="temp.replay_fold"))
        try:
            self.conn.execute("DELETE FROM temp.replay_fold")
            self.conn.execute(schema.fold_streams_sql("temp.replay_fold", where), params)
            rows = self.conn.execute(
                "SELECT s.store, s.product, f.on_hand, f.reserved, f.version, f.updated_at,"
                " f.incoming, st.reorder_point, p.name"
                " FROM temp.replay_fold AS f JOIN streams AS s USING (stream_id)"
                " LEFT JOIN stock AS st USING (stream_id) LEFT JOIN products AS p ON p.product = s.product"
                " ORDER BY s.store, s.product"
            ).fetchall()
        finally:
            self.conn.execute("DELETE FROM temp.replay_fold")
        return [StockLine(*row) for row in rows]

    def open_reservations(self, store: str | None, product: str | None) -> list[dict[str, object]]:
        where, params = _filters(("s.store", store), ("s.product", product))
        rows = self.conn.execute(
            "SELECT r.reservation_id, s.store, s.product, r.quantity, r.customer, r.created_at,"
            " r.expires_at FROM reservations AS r JOIN streams AS s USING (stream_id)"
            f" WHERE r.status = 'open'{where.replace(' WHERE', ' AND', 1)}"
            " ORDER BY s.store, s.product, r.created_at, r.reservation_id",
            params,
        )
        names = ("reservation_id", "store", "product", "quantity", "customer", "created_at", "expires_at")
        return [dict(zip(names, row)) for row in rows]

    def overdue_streams(self, now: str) -> list[int]:
        rows = self.conn.execute(
            "SELECT DISTINCT stream_id FROM reservations"
            " WHERE status = 'open' AND expires_at IS NOT NULL AND expires_at <= ?",
            (now,),
        )
        return [row[0] for row in rows]

    def product_name(self, product: str) -> str | None:
        row = self._cursor.execute("SELECT name FROM products WHERE product = ?", (product,)).fetchone()
        return None if row is None else row[0]

    def find_transfer_stream(self, transfer_id: str) -> int | None:
        row = self.conn.execute(
            "SELECT s.stream_id FROM transfers AS t"
            " JOIN streams AS s ON s.store = t.to_store AND s.product = t.product"
            " WHERE t.transfer_id = ?",
            (transfer_id,),
        ).fetchone()
        return None if row is None else row[0]

    def transfers(self, *, open_only: bool) -> list[dict[str, object]]:
        rows = self.conn.execute(
            "SELECT transfer_id, product, from_store, to_store, quantity, received, lost, status,"
            " shipped_at, received_at FROM transfers"
            + (" WHERE status = 'open'" if open_only else "")
            + " ORDER BY shipped_at, transfer_id"
        )
        names = ("transfer_id", "product", "from", "to", "quantity", "received", "lost", "status",
                 "shipped_at", "received_at")
        return [dict(zip(names, row)) for row in rows]

    # -- rebuild ------------------------------------------------------------------------

    def _counts(self) -> tuple[int, int]:
        events = self.head_position()
        streams = self.conn.execute("SELECT count(*) FROM streams").fetchone()[0]
        return events, streams

    def rebuild_projections(self) -> RebuildReport:
        """Build new projection tables beside the old ones and swap them in.

        It all happens in one write transaction, so readers keep seeing the old
        tables until the commit, and a crash leaves the old tables in place.
        """
        from concurrent.futures import ThreadPoolExecutor

        with self.write(), _large_cache(self.conn):
            head = self.head_position()
            # The stock fold reads the whole log too: a second connection does it on
            # the other core (sqlite3 releases the GIL while SQLite works).
            with ThreadPoolExecutor(max_workers=1) as pool:
                folded = pool.submit(self._fold_stock_beside, head)
                schema.replace_projections(self.conn, schema.PROJECTION_TABLES, folded.result)
            events, streams = self._counts()
        return RebuildReport(events, streams, [])

    def _fold_stock_beside(self, head: int) -> list[tuple] | None:
        """The stock lines folded on a connection of its own; None if it can't see our state.

        Our write transaction keeps other writers out, so a read transaction begun now
        sees the log this one sees; the head position confirms it.
        """
        if self.location == ":memory:" or "mode=memory" in self.location:
            return None
        try:
            conn = sqlite3.connect(self.location, isolation_level=None,
                                   uri=self.location.startswith("file:"))
        except sqlite3.Error:
            return None
        try:
            conn.execute("BEGIN")
            if conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0] != head:
                return None
            for statement in schema.STOCK_FOLD_SQL:
                conn.execute(statement)
            return conn.execute(schema.STOCK_FOLD_ROWS).fetchall()
        except sqlite3.Error:
            return None
        finally:
            conn.close()

    def check_projections(self) -> RebuildReport:
        """Compare the projections with what the log says, changing nothing."""
        with self.snapshot(), _large_cache(self.conn):
            for table in schema.PROJECTION_TABLES:
                self.conn.execute(f"DROP TABLE IF EXISTS temp.{table}_expected")
            ddl = schema.projection_ddl("_expected").replace("CREATE TABLE ", "CREATE TEMP TABLE ")
            for statement in schema._statements(ddl):
                self.conn.execute(statement)
            for statement in schema.projection_fill_sql("_expected"):
                self.conn.execute(statement)
            differences: list[dict[str, object]] = []
            for table, key in schema.PROJECTION_TABLES.items():
                differences += self._table_differences(table, key)
            events, streams = self._counts()
            for table in schema.PROJECTION_TABLES:
                self.conn.execute(f"DROP TABLE temp.{table}_expected")
        return RebuildReport(events, streams, differences)

    def _table_differences(self, table: str, key: str) -> list[dict[str, object]]:
        cursor = self.conn.execute(f"SELECT * FROM temp.{table}_expected LIMIT 0")
        columns = [d[0] for d in cursor.description]
        select = ", ".join(columns)
        at = columns.index(key)
        actual = {row[at]: row for row in self.conn.execute(f"SELECT {select} FROM main.{table}")}
        expected = {row[at]: row for row in self.conn.execute(f"SELECT {select} FROM temp.{table}_expected")}
        differences = []
        for k in sorted(actual.keys() | expected.keys(), key=str):
            want, have = expected.get(k), actual.get(k)
            if want != have:
                differences.append(
                    {
                        "table": table,
                        "key": k,
                        "expected": None if want is None else dict(zip(columns, want)),
                        "actual": None if have is None else dict(zip(columns, have)),
                    }
                )
        return differences


@contextmanager
def _large_cache(conn: sqlite3.Connection) -> Iterator[None]:
    """A 64 MiB page cache while rebuilding: the default 2 MiB spills the new tables'
    pages to the WAL before the commit, which made a rebuild a third slower."""
    previous = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute("PRAGMA cache_size = -65536")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size = {int(previous)}")


def _filters(*conditions: tuple[str, object]) -> tuple[str, list[object]]:
    """A WHERE clause from (column-or-comparison, value) pairs, skipping None values."""
    parts, params = [], []
    for column, value in conditions:
        if value is None:
            continue
        parts.append(column + (" ?" if column.endswith(("<=", ">=", "<", ">")) else " = ?"))
        params.append(value)
    return (" WHERE " + " AND ".join(parts) if parts else ""), params

