"""The projections on PostgreSQL: queries, and fill, rebuild, check and replay in SQL.

Each projection has one SELECT that computes it from the log alone; a rebuild
replaces the rows with it inside one transaction (readers keep seeing the old
rows until the commit), a check compares it with the rows, changing nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inventory_cli.domain.events import (
    ProductDefined,
    ReservationFulfilled,
    StockReleased,
    StockReserved,
    TransferLost,
    TransferReceived,
    TransferShipped,
)
from inventory_cli.storage.port import NewEvent, RebuildReport, StockLine
from inventory_cli.storage.postgresql import connection, snapshots
from inventory_cli.storage.postgresql.schema import LOG_LOCK_SQL

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg

_SIDE_TYPES = (StockReserved, StockReleased, ReservationFulfilled, TransferShipped, TransferReceived,
               TransferLost, ProductDefined)


def _signed(sign_attribute: str) -> str:
    """SQL for one event's effect on one balance, from the domain's signs."""
    from inventory_cli.domain.events import EVENT_TYPES

    cases = " ".join(
        f"WHEN '{name}' THEN {sign} * e.quantity"
        for name, cls in EVENT_TYPES.items()
        if (sign := getattr(cls, sign_attribute))
    )
    return f"CASE e.type {cases} ELSE 0 END"


def _fold(where: str = "") -> str:
    """Per stream: the balances folded from its events (optionally filtered) and its last event."""
    return (
        f"SELECT e.stream_id, sum({_signed('on_hand_sign')})::bigint AS on_hand,"
        f" sum({_signed('reserved_sign')})::bigint AS reserved,"
        f" sum({_signed('incoming_sign')})::bigint AS incoming, max(e.version) AS version,"
        " (array_agg(e.recorded_at ORDER BY e.version DESC))[1] AS updated_at"
        f" FROM events AS e WHERE true{where} GROUP BY e.stream_id"
    )


_REORDER_POINTS = (
    "SELECT DISTINCT ON (stream_id) stream_id, (data::json->>'reorder_point')::bigint AS reorder_point"
    " FROM events WHERE type = 'ProductDefined' AND data::json->>'reorder_point' IS NOT NULL"
    " ORDER BY stream_id, position DESC"
)

# Table -> (its key column, its columns, the SELECT computing its rows from the log).
EXPECTED: dict[str, tuple[str, str, str]] = {
    "stock": (
        "stream_id",
        "stream_id, store, product, on_hand, reserved, incoming, reorder_point, version, updated_at",
        f"WITH fold AS ({_fold()}), points AS ({_REORDER_POINTS})"
        " SELECT f.stream_id, s.store, s.product, f.on_hand, f.reserved, f.incoming, p.reorder_point,"
        " f.version, f.updated_at FROM fold AS f JOIN streams AS s USING (stream_id)"
        " LEFT JOIN points AS p USING (stream_id)",
    ),
    "reservations": (
        "reservation_id",
        "reservation_id, stream_id, quantity, customer, status, created_at, expires_at, closed_at",
        "WITH closing AS (SELECT DISTINCT ON (data::json->>'reservation_id')"
        " data::json->>'reservation_id' AS id,"
        " CASE type WHEN 'StockReleased' THEN 'released' ELSE 'fulfilled' END AS status, occurred_at"
        " FROM events WHERE type IN ('StockReleased', 'ReservationFulfilled')"
        " ORDER BY data::json->>'reservation_id', position DESC)"
        " SELECT r.data::json->>'reservation_id', r.stream_id, r.quantity,"
        " coalesce(r.data::json->>'customer', ''), coalesce(c.status, 'open'), r.occurred_at,"
        " r.data::json->>'expires_at', c.occurred_at"
        " FROM events AS r LEFT JOIN closing AS c ON c.id = r.data::json->>'reservation_id'"
        " WHERE r.type = 'StockReserved'",
    ),
    "idempotency_keys": (
        "key",
        "key, command_hash, stream_id, position",
        "SELECT DISTINCT ON (idempotency_key) idempotency_key, command_hash, stream_id, position"
        " FROM events WHERE idempotency_key IS NOT NULL ORDER BY idempotency_key, position DESC",
    ),
    "products": (
        "product",
        "product, name",
        "SELECT DISTINCT ON (s.product) s.product, e.data::json->>'name'"
        " FROM events AS e JOIN streams AS s USING (stream_id)"
        " WHERE e.type = 'ProductDefined' AND e.data::json->>'name' IS NOT NULL"
        " ORDER BY s.product, e.position DESC",
    ),
    "transfers": (
        "transfer_id",
        "transfer_id, product, from_store, to_store, quantity, received, lost, status, shipped_at,"
        " received_at",
        "WITH settled AS (SELECT data::json->>'transfer_id' AS id,"
        " sum(CASE type WHEN 'TransferReceived' THEN quantity ELSE 0 END)::bigint AS received,"
        " sum(CASE type WHEN 'TransferLost' THEN quantity ELSE 0 END)::bigint AS lost,"
        " max(occurred_at) AS received_at FROM events"
        " WHERE type IN ('TransferReceived', 'TransferLost') GROUP BY 1)"
        " SELECT e.data::json->>'transfer_id', s.product, s.store, e.data::json->>'to_store',"
        " e.quantity, coalesce(t.received, 0), coalesce(t.lost, 0),"
        " CASE WHEN t.id IS NULL THEN 'open' ELSE 'received' END, e.occurred_at, t.received_at"
        " FROM events AS e JOIN streams AS s USING (stream_id)"
        " LEFT JOIN settled AS t ON t.id = e.data::json->>'transfer_id'"
        " WHERE e.type = 'TransferShipped'",
    ),
}


class ProjectionWrites:
    """The projection updates that go with an append (the session computes stock lines)."""

    conn: psycopg.Connection

    _names_now: dict[str, str | None]

    def _name(self, stream_id: int) -> tuple[str, str]: ...

    def _write_side_tables(self, events: Sequence[NewEvent]) -> None:
        """Open and close reservations, ship and settle transfers, name products."""
        opened, closed, shipped, settled, named = [], [], [], [], {}
        for new in events:
            event = new.event
            if not isinstance(event, _SIDE_TYPES):
                continue
            at = new.occurred_at
            if isinstance(event, StockReserved):
                opened.append((event.reservation_id, new.stream_id, event.quantity, event.customer,
                               at, event.expires_at))
            elif isinstance(event, StockReleased):
                closed.append(("released", at, event.reservation_id))
            elif isinstance(event, ReservationFulfilled):
                closed.append(("fulfilled", at, event.reservation_id))
            elif isinstance(event, TransferShipped):
                store, product = self._name(new.stream_id)
                shipped.append((event.transfer_id, product, store, event.to_store, event.quantity, at))
            elif isinstance(event, TransferReceived):
                settled.append((event.quantity, 0, at, event.transfer_id))
            elif isinstance(event, TransferLost):
                settled.append((0, event.quantity, at, event.transfer_id))
            elif isinstance(event, ProductDefined) and event.name is not None:
                named[self._name(new.stream_id)[1]] = event.name
        cursor = self.conn.cursor()
        if opened:
            cursor.executemany(
                "INSERT INTO reservations (reservation_id, stream_id, quantity, customer, status,"
                " created_at, expires_at) VALUES (%s, %s, %s, %s, 'open', %s, %s)",
                opened,
            )
        if closed:
            cursor.executemany(
                "UPDATE reservations SET status = %s, closed_at = %s WHERE reservation_id = %s", closed
            )
        if shipped:
            cursor.executemany(
                "INSERT INTO transfers (transfer_id, product, from_store, to_store, quantity,"
                " received, lost, status, shipped_at) VALUES (%s, %s, %s, %s, %s, 0, 0, 'open', %s)",
                shipped,
            )
        if settled:
            cursor.executemany(
                "UPDATE transfers SET received = received + %s, lost = lost + %s,"
                " status = 'received', received_at = %s WHERE transfer_id = %s",
                settled,
            )
        if named:
            self._names_now.update(named)
            cursor.executemany(
                "INSERT INTO products (product, name) VALUES (%s, %s)"
                " ON CONFLICT (product) DO UPDATE SET name = excluded.name",
                list(named.items()),
            )

    def _write_lines(self, lines: Sequence[tuple[int, StockLine]]) -> None:
        if not lines:
            return
        self.conn.cursor().executemany(
            "INSERT INTO stock (stream_id, store, product, on_hand, reserved, version, updated_at,"
            " incoming, reorder_point) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (stream_id) DO UPDATE SET on_hand = excluded.on_hand,"
            " reserved = excluded.reserved, incoming = excluded.incoming,"
            " reorder_point = excluded.reorder_point, version = excluded.version,"
            " updated_at = excluded.updated_at",
            [(stream_id, *line[:8]) for stream_id, line in lines],
        )



class ProjectionQueries:
    """The projections half of PostgresEventStore."""

    conn: psycopg.Connection
    url: str

    def stock_lines(self, store: str | None, product: str | None, *, low: bool = False) -> list[StockLine]:
        where, params = _filters(("st.store", store), ("st.product", product))
        if low:
            where += " AND st.reorder_point IS NOT NULL AND st.on_hand - st.reserved <= st.reorder_point"
        rows = self.conn.execute(
            "SELECT st.store, st.product, st.on_hand, st.reserved, st.version, st.updated_at,"
            " st.incoming, st.reorder_point, p.name"
            f" FROM stock AS st LEFT JOIN products AS p USING (product) WHERE true{where}"
            " ORDER BY st.store, st.product",
            params,
        ).fetchall()
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
        where, params = _filters(("e.position <=", until_position), ("e.occurred_at <=", until_time))
        streams, stream_params = _filters(("store", store), ("product", product))
        if streams:
            where += f" AND e.stream_id IN (SELECT stream_id FROM streams WHERE true{streams})"
            params += stream_params
        rows = self.conn.execute(
            f"WITH fold AS ({_fold(where)})"
            " SELECT s.store, s.product, f.on_hand, f.reserved, f.version, f.updated_at,"
            " f.incoming, st.reorder_point, p.name"
            " FROM fold AS f JOIN streams AS s USING (stream_id)"
            " LEFT JOIN stock AS st USING (stream_id) LEFT JOIN products AS p ON p.product = s.product"
            " ORDER BY s.store, s.product",
            params,
        ).fetchall()
        return [StockLine(*row) for row in rows]

    def open_reservations(self, store: str | None, product: str | None) -> list[dict[str, object]]:
        where, params = _filters(("s.store", store), ("s.product", product))
        rows = self.conn.execute(
            "SELECT r.reservation_id, s.store, s.product, r.quantity, r.customer, r.created_at,"
            " r.expires_at FROM reservations AS r JOIN streams AS s USING (stream_id)"
            f" WHERE r.status = 'open'{where}"
            " ORDER BY s.store, s.product, r.created_at, r.reservation_id",
            params,
        ).fetchall()
        names = ("reservation_id", "store", "product", "quantity", "customer", "created_at", "expires_at")
        return [dict(zip(names, row)) for row in rows]

    def overdue_streams(self, now: str) -> list[int]:
        # In the order writers lock streams (store, product): expiry and transfers cannot deadlock.
        rows = self.conn.execute(
            "SELECT s.stream_id FROM streams AS s WHERE s.stream_id IN (SELECT stream_id FROM reservations"
            " WHERE status = 'open' AND expires_at IS NOT NULL AND expires_at <= %s)"
            " ORDER BY s.store, s.product",
            (now,),
        ).fetchall()
        return [row[0] for row in rows]

    def transfers(self, *, open_only: bool) -> list[dict[str, object]]:
        rows = self.conn.execute(
            "SELECT transfer_id, product, from_store, to_store, quantity, received, lost, status,"
            " shipped_at, received_at FROM transfers"
            + (" WHERE status = 'open'" if open_only else "")
            + " ORDER BY shipped_at, transfer_id"
        ).fetchall()
        names = ("transfer_id", "product", "from", "to", "quantity", "received", "lost", "status",
                 "shipped_at", "received_at")
        return [dict(zip(names, row)) for row in rows]

    # -- rebuild and check ----------------------------------------------------------------

    def _counts(self) -> tuple[int, int]:
        events, streams = self.conn.execute(
            "SELECT coalesce((SELECT max(position) FROM events), 0), (SELECT count(*) FROM streams)"
        ).fetchone()  # type: ignore[misc]
        return events, streams

    def rebuild_projections(self) -> RebuildReport:
        """Replace every projection's rows with what the log says, in one transaction.

        Writers are held off (the projection tables locked against changes, then the
        log lock); readers keep seeing the old rows until the commit.
        """
        import psycopg

        try:
            with self.conn.transaction():
                self.conn.execute(
                    f"LOCK TABLE {', '.join(EXPECTED)} IN SHARE ROW EXCLUSIVE MODE"
                )
                self.conn.execute(f"SELECT {LOG_LOCK_SQL}")
                rebuild_tables(self.conn)
                events, streams = self._counts()
        except psycopg.Error as error:
            raise connection.mapped(error, self.url, writing=True) from None
        return RebuildReport(events, streams, [])

    def check_projections(self) -> RebuildReport:
        """Compare the projections with what the log says, changing nothing."""
        differences: list[dict[str, object]] = []
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            for table, (key, columns, select) in EXPECTED.items():
                names = [c.strip() for c in columns.split(",")]
                at = names.index(key)
                actual = {row[at]: row for row in self.conn.execute(f"SELECT {columns} FROM {table}")}
                expected = {row[at]: row for row in self.conn.execute(select)}
                for k in sorted(actual.keys() | expected.keys(), key=str):
                    want, have = expected.get(k), actual.get(k)
                    if want != have:
                        differences.append({
                            "table": table,
                            "key": k,
                            "expected": None if want is None else dict(zip(names, want)),
                            "actual": None if have is None else dict(zip(names, have)),
                        })
            differences += snapshots.differences(self.conn)
            events, streams = self._counts()
        return RebuildReport(events, streams, differences)


def rebuild_tables(conn: psycopg.Connection) -> None:
    """Replace every projection's rows, then the snapshots, with what the log says
    (in the caller's transaction, writers held off)."""
    for table, (_key, columns, select) in EXPECTED.items():
        conn.execute(f"DELETE FROM {table}")
        conn.execute(f"INSERT INTO {table} ({columns}) {select}")
    snapshots.rebuild(conn)


def _filters(*conditions: tuple[str, object]) -> tuple[str, list[object]]:
    """`` AND …`` conditions from (column-or-comparison, value) pairs, skipping None values."""
    parts, params = "", []
    for column, value in conditions:
        if value is None:
            continue
        parts += " AND " + column + (" %s" if column.endswith(("<=", ">=", "<", ">")) else " = %s")
        params.append(value)
    return parts, params
