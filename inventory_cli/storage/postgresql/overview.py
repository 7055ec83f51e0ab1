"""Small reads for people and shells on a server: totals per store, what the schema
holds, the codes it knows, and the event at a position (for `revert`); the twin of
storage/sqlite/overview.py, from the same tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inventory_cli.storage.chain import stored_event
from inventory_cli.storage.port import LogSummary, RecordedEvent, StoreTotals
from inventory_cli.storage.postgresql import schema

if TYPE_CHECKING:
    import psycopg


class Overview:
    """Mixed into PostgresEventStore, which holds ``conn``."""

    conn: psycopg.Connection

    def store_totals(self) -> list[StoreTotals]:
        rows = self.conn.execute(
            "SELECT store, count(*), sum(on_hand), sum(reserved), sum(incoming)"
            " FROM stock GROUP BY store ORDER BY store"
        ).fetchall()
        return [StoreTotals(store, lines, int(on_hand), int(reserved), int(incoming))
                for store, lines, on_hand, reserved, incoming in rows]

    def summary(self) -> LogSummary:
        version = self.conn.execute(
            "SELECT version FROM inventory_schema WHERE application = %s", (schema.APPLICATION,)
        ).fetchone()
        events = self.conn.execute("SELECT count(*) FROM events").fetchone()[0]
        streams, stores = self.conn.execute("SELECT count(*), count(DISTINCT store) FROM streams").fetchone()
        head = self.conn.execute("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1").fetchone()
        return LogSummary(version[0] if version else 0, events, streams, stores, *(head or (0, None)))

    def product_codes(self, store: str | None) -> list[str]:
        if store is None:
            return [r[0] for r in self.conn.execute("SELECT DISTINCT product FROM stock ORDER BY product")]
        return [r[0] for r in self.conn.execute(
            "SELECT product FROM stock WHERE store = %s ORDER BY product", (store,))]

    def store_codes(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT store FROM stock ORDER BY store")]

    def open_ids(self) -> tuple[list[str], list[str]]:
        reservations = [r[0] for r in self.conn.execute(
            "SELECT reservation_id FROM reservations WHERE status = 'open' ORDER BY reservation_id")]
        transfers = [r[0] for r in self.conn.execute(
            "SELECT transfer_id FROM transfers WHERE status = 'open' ORDER BY transfer_id")]
        return reservations, transfers

    def event_at(self, position: int) -> tuple[int, RecordedEvent] | None:
        row = self.conn.execute(
            "SELECT e.stream_id, e.version, s.store, s.product, e.type, e.quantity, e.data,"
            " e.occurred_at, e.recorded_at, e.actor FROM events AS e JOIN streams AS s USING (stream_id)"
            " WHERE e.position = %s", (position,),
        ).fetchone()
        if row is None:
            return None
        stream_id, version, store, product, type_name, quantity, data, occurred_at, recorded_at, actor = row
        event = stored_event(type_name, quantity, data)
        return stream_id, RecordedEvent(position, version, store, product, event, occurred_at, recorded_at, actor)

    def revert_of(self, stream_id: int, position: int) -> int | None:
        row = self.conn.execute(
            "SELECT position FROM events WHERE stream_id = %s AND position > %s"
            " AND type IN ('StockAdded', 'StockRemoved', 'StockCounted')"
            " AND (data::json ->> 'reverts') = %s LIMIT 1",
            (stream_id, position, str(position)),
        ).fetchone()
        return None if row is None else row[0]
