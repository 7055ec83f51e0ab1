"""The projections in SQLite: filled as events are appended, read, replayed, rebuilt, checked."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

from inventory_cli.domain.events import (
    ProductDefined,
    ReservationFulfilled,
    StockReleased,
    StockReserved,
    TransferLost,
    TransferReceived,
    TransferShipped,
)
from inventory_cli.storage import snapshot_rows
from inventory_cli.storage.port import KeyRecord, RebuildReport, StockLine
from inventory_cli.storage.sqlite import schema, snapshots
from inventory_cli.storage.sqlite.log import SideEvent
from inventory_cli.storage.sqlite.where import Where


class Projections:
    """The projection tables of one connection (``location`` names the file, for a second one)."""

    __slots__ = ("conn", "location", "_cursor")

    def __init__(self, conn: sqlite3.Connection, cursor: sqlite3.Cursor, location: str) -> None:
        self.conn = conn
        self.location = location
        self._cursor = cursor  # the store's, for one-shot statements (see SqliteEventStore)

    # -- filled as events are appended ----------------------------------------------------

    def write_side_tables(self, side: Sequence[SideEvent]) -> None:
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

    def write_lines(self, lines: Sequence[tuple[int, StockLine]]) -> None:
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

    # -- reads -------------------------------------------------------------------------

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

    def find_keys(self, keys: Sequence[str]) -> dict[str, KeyRecord]:
        found: dict[str, KeyRecord] = {}
        for start in range(0, len(keys), 500):  # within SQLite's limit on parameters
            part = keys[start:start + 500]
            for row in self.conn.execute(
                "SELECT key, command_hash, stream_id, position FROM idempotency_keys"
                f" WHERE key IN ({', '.join('?' * len(part))})",
                part,
            ):
                found[row[0]] = KeyRecord(*row)
        return found

    def stock_lines(
        self, store: str | None, product: str | None, *, low: bool = False
    ) -> list[StockLine]:
        where = Where().equals("st.store", store).equals("st.product", product)
        if low:
            where.add("st.reorder_point IS NOT NULL AND st.on_hand - st.reserved <= st.reorder_point")
        rows = self.conn.execute(
            "SELECT st.store, st.product, st.on_hand, st.reserved, st.version, st.updated_at,"
            " st.incoming, st.reorder_point, p.name"
            f" FROM stock AS st LEFT JOIN products AS p USING (product){where.sql()}"
            " ORDER BY st.store, st.product",
            where.params,
        )
        return [StockLine(*row) for row in rows]

    def open_reservations(self, store: str | None, product: str | None) -> list[dict[str, object]]:
        where = Where().add("r.status = 'open'").equals("s.store", store).equals("s.product", product)
        rows = self.conn.execute(
            "SELECT r.reservation_id, s.store, s.product, r.quantity, r.customer, r.created_at,"
            f" r.expires_at FROM reservations AS r JOIN streams AS s USING (stream_id){where.sql()}"
            " ORDER BY s.store, s.product, r.created_at, r.reservation_id",
            where.params,
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
        where = Where().add("status = 'open'") if open_only else Where()
        rows = self.conn.execute(
            "SELECT transfer_id, product, from_store, to_store, quantity, received, lost, status,"
            f" shipped_at, received_at FROM transfers{where.sql()} ORDER BY shipped_at, transfer_id"
        )
        names = ("transfer_id", "product", "from", "to", "quantity", "received", "lost", "status",
                 "shipped_at", "received_at")
        return [dict(zip(names, row)) for row in rows]

    def replay_lines(
        self,
        store: str | None,
        product: str | None,
        *,
        until_position: int | None,
        until_time: str | None,
    ) -> list[StockLine]:
        """Stock lines folded in SQL from the log alone (name and reorder point are today's)."""
        where = Where().at_most("e.position", until_position).at_most("e.occurred_at", until_time)
        streams = Where().equals("store", store).equals("product", product)
        if streams:
            where.add(f"e.stream_id IN (SELECT stream_id FROM streams{streams.sql()})", *streams.params)
        self.conn.execute(schema.fold_table_ddl("temp.replay_fold"))
        try:
            self.conn.execute("DELETE FROM temp.replay_fold")
            self.conn.execute(schema.fold_streams_sql("temp.replay_fold", where.sql()), where.params)
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

    # -- rebuild and check -----------------------------------------------------------------

    def rebuild(self, head: int) -> RebuildReport:
        """Build new projection tables beside the old ones and swap them in.

        The caller holds the write transaction (``head`` is the log's last position):
        readers keep seeing the old tables until it commits, and a crash leaves them.
        """
        from concurrent.futures import ThreadPoolExecutor

        with _large_cache(self.conn):
            # The stock fold reads the whole log too, and the snapshots fold the long
            # streams in Python: a second connection does both on the other core
            # (sqlite3 releases the GIL while SQLite works on this one).
            with ThreadPoolExecutor(max_workers=1) as pool:
                folded = pool.submit(fold_beside, self.location, head)

                def stock_rows() -> list[tuple] | None:
                    beside = folded.result()
                    return None if beside is None else beside.stock

                schema.replace_projections(self.conn, schema.PROJECTION_TABLES, stock_rows)
                beside = folded.result()
            snapshots.rebuild(self.conn, None if beside is None else beside.snapshots)
            return RebuildReport(head, self._stream_count(), [])

    def check(self, head: int) -> RebuildReport:
        """Compare the projections with what the log says, changing nothing.

        The caller holds a read transaction; ``head`` is the log's last position.
        """
        with _large_cache(self.conn):
            for table in schema.PROJECTION_TABLES:
                self.conn.execute(f"DROP TABLE IF EXISTS temp.{table}_expected")
            for statement in schema.statements(schema.projection_ddl("_expected", temporary=True)):
                self.conn.execute(statement)
            for statement in schema.projection_fill_sql("_expected"):
                self.conn.execute(statement)
            differences: list[dict[str, object]] = []
            for table, key in schema.PROJECTION_TABLES.items():
                differences += self._table_differences(table, key)
            differences += snapshots.differences(self.conn)
            streams = self._stream_count()
            for table in schema.PROJECTION_TABLES:
                self.conn.execute(f"DROP TABLE temp.{table}_expected")
        return RebuildReport(head, streams, differences)

    def _stream_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM streams").fetchone()[0]

    def _table_differences(self, table: str, key: str) -> list[dict[str, object]]:
        cursor = self.conn.execute(f"SELECT * FROM temp.{table}_expected LIMIT 0")
        columns = [d[0] for d in cursor.description]
        select = ", ".join(columns)
        at = columns.index(key)
        # SQLite finds the keys whose rows differ, walking both tables by their key;
        # Python reads only those rows.
        changed = " OR ".join(f"a.{c} IS NOT b.{c}" for c in columns if c != key)
        differing = (
            f"SELECT a.{key} FROM main.{table} AS a LEFT JOIN temp.{table}_expected AS b"
            f" ON b.{key} = a.{key} WHERE b.{key} IS NULL OR {changed}"
            f" UNION ALL SELECT b.{key} FROM temp.{table}_expected AS b"
            f" WHERE NOT EXISTS (SELECT 1 FROM main.{table} AS a WHERE a.{key} = b.{key})"
        )
        keys = {row[0] for row in self.conn.execute(differing)}
        if not keys:
            return []
        rows = f"SELECT {select} FROM {{}} WHERE {key} IN ({differing})"
        actual = {row[at]: row for row in self.conn.execute(rows.format(f"main.{table}"))}
        expected = {row[at]: row for row in self.conn.execute(rows.format(f"temp.{table}_expected"))}
        differences = []
        for k in sorted(keys, key=str):
            want, have = expected.get(k), actual.get(k)
            differences.append(
                {
                    "table": table,
                    "key": k,
                    "expected": None if want is None else dict(zip(columns, want)),
                    "actual": None if have is None else dict(zip(columns, have)),
                }
            )
        return differences


class FoldedBeside(NamedTuple):
    """The stock lines (schema.STOCK_COLUMNS) and the snapshots (snapshot_rows.rebuilt) of the log."""

    stock: list[tuple]
    snapshots: list[tuple[int, int, str, str]]


def _second_connection(location: str) -> sqlite3.Connection | None:
    """Another connection to the store's file; None for a database only this one sees."""
    if location == ":memory:" or "mode=memory" in location:
        return None
    try:
        return sqlite3.connect(location, isolation_level=None, uri=location.startswith("file:"))
    except sqlite3.Error:
        return None


def fold_beside(location: str, head: int) -> FoldedBeside | None:
    """The stock lines and snapshots folded on a connection of its own; None if it
    can't see our state.

    The rebuild's write transaction keeps other writers out, so a read transaction
    begun now sees the log the rebuild sees; the head position confirms it.
    """
    conn = _second_connection(location)
    if conn is None:
        return None
    try:
        conn.execute("BEGIN")
        if conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0] != head:
            return None
        for statement in schema.STOCK_FOLD_SQL:
            conn.execute(statement)
        stock = conn.execute(schema.STOCK_FOLD_ROWS).fetchall()
        version = schema.STOCK_COLUMNS.split(", ").index("version")
        long_streams = [row[:3] for row in stock if snapshot_rows.is_long(row[version])]
        return FoldedBeside(stock, snapshot_rows.rebuilt(conn, "?", long_streams))
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def check_beside(location: str) -> tuple[tuple[int, str | None], RebuildReport] | None:
    """check() on a connection of its own, with the head (position, hash) it saw;
    None when a second connection can't see this store's state."""
    conn = _second_connection(location)
    if conn is None:
        return None
    try:
        conn.execute("BEGIN")
        row = conn.execute("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1").fetchone()
        head = (row[0], row[1]) if row else (0, None)
        return head, Projections(conn, conn.cursor(), location).check(head[0])
    except sqlite3.Error:
        return None
    finally:
        conn.close()


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
