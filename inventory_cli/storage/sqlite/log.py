"""The event log in SQLite: streams, appending with the hash chain, reading, verifying."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from hashlib import sha256

from inventory_cli.domain import values
from inventory_cli.domain.events import Event
from inventory_cli.storage.chain import GENESIS, HASHED_COLUMNS_SQL, payload, stored_event
from inventory_cli.storage.errors import ConcurrencyConflict
from inventory_cli.storage.port import ChainReport, LoadedStream, NewEvent, RecordedEvent, StreamInfo
from inventory_cli.storage.snapshot_rows import LOAD_COLUMNS, LOAD_JOINS, loaded_stream
from inventory_cli.storage.sqlite.where import Where

# Event types that other projections than `stock` follow (see projections.write_side_tables).
SIDE_TABLE_TYPES = frozenset({
    "StockReserved", "StockReleased", "ReservationFulfilled", "TransferShipped",
    "TransferReceived", "TransferLost", "ProductDefined",
})

_EVENT_COLUMNS = "position, stream_id, version, type, quantity, data, occurred_at, recorded_at, actor, hash"
_INSERT_EVENTS = f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES ({', '.join('?' * 10)})"
_INSERT_KEYED_EVENTS = (
    f"INSERT INTO events ({_EVENT_COLUMNS}, idempotency_key, command_hash) VALUES ({', '.join('?' * 12)})"
)

def _adapt_value_objects() -> None:
    """Bind codes and quantities (str and int subclasses) as plain str and int.

    For a parameter that is not exactly an int, str, float or bytes, CPython's
    sqlite3 looks for an adapter, and without one asks the value and the protocol
    for ``__conform__``/``__adapt__``: two AttributeErrors raised and cleared per
    parameter, several per imported row. A registered adapter is found at once.
    The registry is the sqlite3 module's, so this covers every connection.
    """
    for root, base in ((values.Text, str), (values.Quantity, int)):
        kinds = [root]
        while kinds:
            kind = kinds.pop()
            sqlite3.register_adapter(kind, base)
            kinds.extend(kind.__subclasses__())


_adapt_value_objects()

# An event that a side table follows: (event, stream id, occurred_at, store, product).
SideEvent = tuple[Event, int, str, str, str]


class EventLog:
    """The ``streams`` and ``events`` tables of one connection, and what it remembers of them."""

    __slots__ = ("conn", "_cursor", "_names", "head")

    def __init__(self, conn: sqlite3.Connection, cursor: sqlite3.Cursor) -> None:
        self.conn = conn
        self._cursor = cursor  # the store's, for one-shot statements (see SqliteEventStore)
        self._names: dict[int, tuple[str, str]] = {}  # stream id -> (store, product)
        # (position, hash) of the last event appended; (-1, "") when unknown.
        self.head: tuple[int, str] = (0, GENESIS)

    # -- streams ---------------------------------------------------------------------

    def head_position(self) -> int:
        # The head's hash comes with it: the next append chains to it without asking again.
        row = self._cursor.execute("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1").fetchone()
        if self.conn.in_transaction:
            self.head = (row[0], row[1]) if row else (0, GENESIS)
        return row[0] if row else 0

    def load(self, events: Iterable[RecordedEvent]) -> int:
        """Insert exported events as they are (positions, times, keys, hashes); the number.

        A keyed event gets the command hash '' (export does not carry it): a repeated
        command with that key matches it. The caller holds the write transaction.
        """
        streams: dict[tuple[str, str], int] = {}
        rows: list[tuple] = []
        count = 0
        for r in events:
            stream_id = streams.get((r.store, r.product))
            if stream_id is None:
                stream_id = streams[r.store, r.product] = self._create_stream(r.store, r.product).stream_id
            rows.append((r.position, stream_id, r.version, type(r.event).__name__, r.event.quantity,
                         r.data, r.occurred_at, r.recorded_at, r.actor, r.hash, r.idempotency_key,
                         None if r.idempotency_key is None else ""))
            if len(rows) >= 10_000:
                self._cursor.executemany(_INSERT_KEYED_EVENTS, rows)
                count, rows = count + len(rows), []
        self._cursor.executemany(_INSERT_KEYED_EVENTS, rows)
        return count + len(rows)

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

    def load_stream(self, store: str, product: str) -> LoadedStream:
        """The stream (created if new) from its snapshot, if its checksum holds, and the
        events after it, in one query; every event when there is no snapshot to trust."""
        loaded = self._load("s.store = ? AND s.product = ?", (store, product))
        return loaded or LoadedStream(self._create_stream(store, product), None, 0, [], "")

    def load_stream_by_id(self, stream_id: int) -> LoadedStream:
        loaded = self._load("s.stream_id = ?", (stream_id,))
        if loaded is None:
            raise LookupError(f"no stream {stream_id}")
        return loaded

    def _load(self, where: str, params: tuple) -> LoadedStream | None:
        rows = self._cursor.execute(
            f"SELECT s.stream_id, s.store, s.product, {LOAD_COLUMNS} FROM streams AS s{LOAD_JOINS}"
            f" WHERE {where} ORDER BY e.version",
            params,
        ).fetchall()
        if not rows:
            return None
        stream_id, store, product = rows[0][:3]
        self._names[stream_id] = (store, product)
        return loaded_stream(StreamInfo(stream_id, store, product), [row[3:] for row in rows], self.stream_events)

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
        if self.head[0] == position - 1:
            return self.head[1]
        row = self.conn.execute(
            "SELECT hash FROM events WHERE position < ? ORDER BY position DESC LIMIT 1", (position,)
        ).fetchone()
        return GENESIS if row is None else row[0]

    # -- appending -------------------------------------------------------------------

    def append(self, events: Sequence[NewEvent]) -> list[SideEvent]:
        """Insert the events (hash-chained) and their idempotency keys; the events that
        the side tables follow. ConcurrencyConflict when another writer took a place first."""
        rows: list[tuple] = []
        keys: dict[str, tuple] = {}
        side: list[SideEvent] = []
        keyed = 0
        encode, names, side_types = payload, self._names, SIDE_TABLE_TYPES
        previous = self._hash_before(events[0].position)
        # Unpacked rather than read by attribute: this loop runs once per imported row.
        for stream_id, position, version, event, occurred_at, recorded_at, key, command_hash, actor in events:
            type_name, data, quantity = type(event).__name__, encode(event), event[0]
            store, product = names.get(stream_id) or self._name(stream_id)
            # chain.event_hash's text, inlined (as in verify_chain): once per imported row.
            previous = sha256(
                f"{previous}\n{position}\n{store}\n{product}\n{version}\n{type_name}\n{quantity}\n"
                f"{data}\n{occurred_at}\n{recorded_at}\n{actor}\n{key or ''}".encode()
            ).hexdigest()
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
        try:
            # Rows without a key leave its two columns out: CPython's sqlite3 binds a None
            # through its adapter lookup, ~0.35 µs each, a tenth of an imported row's insert.
            if keyed == 0:
                self._cursor.executemany(_INSERT_EVENTS, rows)
            else:
                if keyed < len(rows):
                    rows = [row if len(row) == 12 else (*row, None, None) for row in rows]
                self._cursor.executemany(_INSERT_KEYED_EVENTS, rows)
            self.head = (events[-1].position, previous)
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
        return side

    # -- reading ---------------------------------------------------------------------

    def stream_events(self, stream_id: int) -> tuple[list[Event], str]:
        """Every event of a stream in order, with the last one's occurred_at:
        what a writer folds to decide (lighter than read_stream, once per command)."""
        rows = self._cursor.execute(
            "SELECT type, quantity, data, occurred_at FROM events WHERE stream_id = ? ORDER BY version",
            (stream_id,),
        ).fetchall()
        if not rows:
            return [], ""
        return [stored_event(t, q, d) for t, q, d, _ in rows], rows[-1][3]

    def read_stream(
        self,
        stream_id: int,
        *,
        until_position: int | None = None,
        until_time: str | None = None,
    ) -> Iterator[RecordedEvent]:
        store, product = self._name(stream_id)
        where = (
            Where().add("stream_id = ?", stream_id)
            .at_most("position", until_position).at_most("occurred_at", until_time)
        )
        rows = self.conn.execute(
            "SELECT position, version, type, quantity, data, occurred_at, recorded_at, actor"
            f" FROM events{where.sql()} ORDER BY version",
            where.params,
        )
        for position, version, type_name, quantity, data, occurred_at, recorded_at, actor in rows:
            yield RecordedEvent(
                position,
                version,
                store,
                product,
                stored_event(type_name, quantity, data),
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
        where = (
            Where().above("e.position", after_position or None)
            .equals("s.store", store).at_most("e.occurred_at", until_time)
        )
        rows = self.conn.execute(
            "SELECT e.position, e.version, s.store, s.product, e.type, e.quantity, e.data,"
            " e.occurred_at, e.recorded_at, e.actor, e.idempotency_key, e.hash"
            f" FROM events AS e JOIN streams AS s USING (stream_id){where.sql()} ORDER BY e.position",
            where.params,
        )
        for (position, version, store_code, product, type_name, quantity, data, occurred_at,
             recorded_at, actor, key, hash_) in rows:
            yield RecordedEvent(
                position, version, store_code, product,
                stored_event(type_name, quantity, data),
                occurred_at, recorded_at, actor, key, hash_, data,
            )

    def verify_chain(self, anchor: tuple[int, str] | None = None) -> ChainReport:
        """Recompute every event's hash from its content and the previous event's hash.

        The caller holds a read transaction, so the whole log is one state of the file.
        """
        previous, first_bad, count, head = GENESIS, None, 0, (0, None)
        anchor_ok = None if anchor is None else False
        dated_ahead, first_ahead = 0, None
        anchor_position = None if anchor is None else anchor[0]
        rows = self.conn.execute(
            f"SELECT {HASHED_COLUMNS_SQL}, e.hash FROM events AS e"
            " JOIN streams AS s USING (stream_id) ORDER BY e.position"
        )
        # chain.event_hash's text, inlined: a call with twelve arguments per event
        # was a third of the loop.
        for position, store, product, version, type_name, quantity, data, occurred_at, \
                recorded_at, actor, key, stored in rows:
            count += 1
            try:
                expected = sha256(
                    f"{previous}\n{position}\n{store}\n{product}\n{version}\n{type_name}\n{quantity}\n"
                    f"{data}\n{occurred_at}\n{recorded_at}\n{actor}\n{key or ''}".encode()
                ).hexdigest()
            except UnicodeEncodeError:  # bytes that are not UTF-8: never what was hashed
                expected = None
            if first_bad is None and (expected != stored or position != count):
                # A changed row fails its own hash; a deleted row, its successor's
                # (or leaves a gap in the positions).
                first_bad = position if position == count or expected != stored else count
            if position == anchor_position:
                anchor_ok = stored == anchor[1] and expected == stored and first_bad is None  # type: ignore[index]
            try:
                if occurred_at > recorded_at and _minutes_apart(recorded_at, occurred_at) > DATED_AHEAD_MINUTES:
                    dated_ahead += 1
                    first_ahead = first_ahead or position
            except TypeError:  # a time changed into another type: the hash already says so
                pass
            previous = stored
        if count:
            head = (position, stored)
        return ChainReport(count, first_bad, head[0], head[1], anchor_ok, dated_ahead, first_ahead)


DATED_AHEAD_MINUTES = 5  # application.clock.TOLERANCE: beyond it, a write warns


def _minutes_apart(earlier: str, later: str) -> float:
    try:
        return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds() / 60
    except (ValueError, TypeError):  # a time changed behind the tool's back: the hash says so
        return 0.0
