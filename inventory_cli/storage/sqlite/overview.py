"""Small reads for people and shells: totals per store, what the file holds, the codes
it knows, and the event at a position (for `revert`). All from indexed tables; the
code lists read the projections only, so completion and suggestions stay instant."""

from __future__ import annotations

import sqlite3

from inventory_cli.storage.chain import stored_event
from inventory_cli.storage.port import LogSummary, RecordedEvent, StoreTotals


def store_totals(conn: sqlite3.Connection) -> list[StoreTotals]:
    rows = conn.execute(
        "SELECT store, count(*), sum(on_hand), sum(reserved), sum(incoming)"
        " FROM stock GROUP BY store ORDER BY store"
    ).fetchall()
    return [StoreTotals(*row) for row in rows]


def summary(conn: sqlite3.Connection) -> LogSummary:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    streams = conn.execute("SELECT count(*) FROM streams").fetchone()[0]
    stores = conn.execute("SELECT count(DISTINCT store) FROM streams").fetchone()[0]
    head = conn.execute("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1").fetchone()
    return LogSummary(version, events, streams, stores, *(head or (0, None)))


def product_codes(conn: sqlite3.Connection, store: str | None) -> list[str]:
    if store is None:
        return [r[0] for r in conn.execute("SELECT DISTINCT product FROM stock ORDER BY product")]
    return [r[0] for r in conn.execute("SELECT product FROM stock WHERE store = ? ORDER BY product", (store,))]


def store_codes(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT store FROM stock ORDER BY store")]


def open_ids(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
    """The open reservation ids and the open transfer ids."""
    reservations = [r[0] for r in conn.execute(
        "SELECT reservation_id FROM reservations WHERE status = 'open' ORDER BY reservation_id")]
    transfers = [r[0] for r in conn.execute(
        "SELECT transfer_id FROM transfers WHERE status = 'open' ORDER BY transfer_id")]
    return reservations, transfers


def event_at(conn: sqlite3.Connection, position: int) -> tuple[int, RecordedEvent] | None:
    """The stream id and the event at this position, or None."""
    row = conn.execute(
        "SELECT e.stream_id, e.version, s.store, s.product, e.type, e.quantity, e.data,"
        " e.occurred_at, e.recorded_at, e.actor FROM events AS e JOIN streams AS s USING (stream_id)"
        " WHERE e.position = ?", (position,),
    ).fetchone()
    if row is None:
        return None
    stream_id, version, store, product, type_name, quantity, data, occurred_at, recorded_at, actor = row
    event = stored_event(type_name, quantity, data)
    return stream_id, RecordedEvent(position, version, store, product, event, occurred_at, recorded_at, actor)


def revert_of(conn: sqlite3.Connection, stream_id: int, position: int) -> int | None:
    """The position of the event that reverted the one at ``position``, if any."""
    row = conn.execute(
        "SELECT position FROM events WHERE stream_id = ? AND position > ?"
        " AND type IN ('StockAdded', 'StockRemoved', 'StockCounted')"
        " AND json_extract(data, '$.reverts') = ? LIMIT 1",
        (stream_id, position, position),
    ).fetchone()
    return None if row is None else row[0]
