"""The reports' queries on SQLite: movements per period, and sales in a window.

Both are computed by SQL over the event log, never by folding events in Python.
Periods are local time: SQLite's ``'localtime'`` modifier follows the process's
``TZ``.

A PostgreSQL twin keeps the columns, the window function and the sales filter,
and differs in: the period, ``to_char(occurred_at AT TIME ZONE <the client's
zone>, 'YYYY-MM-DD' | 'IYYY-"W"IW' | 'YYYY-MM')`` (the session's TimeZone is the
server's unless the client sets it); a plain GROUP BY with ``sum(…) FILTER``
instead of the upsert table and the second connection (a hash aggregate, and
parallel workers, do that there); ``data->>'reason'`` for ``json_extract``; no
``NOT INDEXED``.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from inventory_cli.domain.events import EVENT_TYPES
from inventory_cli.storage.port import LineSales, PeriodMovement

# Report column -> the event type whose quantities it sums (PeriodMovement's order).
MOVEMENT_TYPES = {
    "added": "StockAdded",
    "received": "TransferReceived",
    "removed": "StockRemoved",
    "fulfilled": "ReservationFulfilled",
    "shipped": "TransferShipped",
    "lost": "TransferLost",
    "counted": "StockCounted",
}

PERIODS = ("day", "week", "month")
PARALLEL_FROM = 100_000  # events: below that a second connection costs more than it saves

# The upsert key of an event's period, from its occurred_at (stored in UTC).
# A week is keyed by its Thursday: ISO 8601 puts a week in the year of its
# Thursday, and numbers it by that Thursday's day of the year (SQLite before
# 3.46 has no %V/%G). 'weekday 4' moves forward to a Thursday, so going back
# three days first lands on the Thursday of the Monday-to-Sunday week.
_KEYS = {
    "day": "date(e.occurred_at, 'localtime')",
    "week": "date(e.occurred_at, 'localtime', '-3 days', 'weekday 4')",
    "month": "strftime('%Y-%m', e.occurred_at, 'localtime')",
}
# The label shown for a key (computed on the few grouped rows, not per event).
_LABELS = {
    "day": "g.period",
    "week": "strftime('%Y', g.period) || '-W' || printf('%02d', (strftime('%j', g.period) + 6) / 7)",
    "month": "g.period",
}

_TABLE = "temp.report_movements"
_CREATE = (
    f"CREATE TEMP TABLE IF NOT EXISTS report_movements (stream_id INTEGER, period TEXT,"
    f" {', '.join(f'{name} INTEGER' for name in MOVEMENT_TYPES)}, last_version INTEGER,"
    " PRIMARY KEY (stream_id, period)) WITHOUT ROWID"
)


def period_key_sql(by: str, since: str | None) -> str:
    """SQL for an event's period key; events before ``since`` share the key '' (dropped
    from the rows, but their on_hand changes still count towards on_hand_end)."""
    key = _KEYS[by]
    return key if since is None else f"CASE WHEN e.occurred_at < :since THEN '' ELSE {key} END"


class MovementsSql(NamedTuple):
    create: str  # the (stream, period) table of this connection
    fold: str  # adds the events of positions (:after_position, :head] to it
    merge: str  # adds rows folded on another connection
    select: str  # the report rows, with the running on_hand


def movements_sql(by: str, since: str | None, streams: str) -> MovementsSql:
    """Fold every event into (stream, period) sums, then list the sums with the running
    on_hand after each period.

    An upsert per event into a small table, not GROUP BY, which makes SQLite sort
    every event first (see schema.fold_streams_sql); PostgreSQL would GROUP BY.
    Within a stream occurred_at never goes backwards, so its periods follow each
    other in version order, and a running sum of each period's on_hand change,
    ordered by the period's last version, is the on_hand after that period.
    """
    names = list(MOVEMENT_TYPES)
    sums = ", ".join(f"CASE e.type WHEN '{t}' THEN e.quantity ELSE 0 END" for t in MOVEMENT_TYPES.values())
    upsert = (
        f" ON CONFLICT (stream_id, period) DO UPDATE SET {', '.join(f'{n} = {n} + excluded.{n}' for n in names)},"
        " last_version = max(last_version, excluded.last_version)"
    )
    insert = f"INSERT INTO {_TABLE} (stream_id, period, {', '.join(names)}, last_version)"
    net = " + ".join(
        f"{sign} * g.{name}" for name, type_name in MOVEMENT_TYPES.items()
        if (sign := EVENT_TYPES[type_name].on_hand_sign)
    )
    return MovementsSql(
        _CREATE,
        f"{insert} SELECT e.stream_id, {period_key_sql(by, since)}, {sums}, e.version FROM events AS e"
        " WHERE e.position > :after_position AND e.position <= :head"
        f" AND (:until IS NULL OR e.occurred_at <= :until){streams}{upsert}",
        f"{insert} VALUES ({', '.join('?' * (len(names) + 3))}){upsert}",
        f"SELECT {_LABELS[by]}, s.store, s.product, {', '.join(f'g.{n}' for n in names)}, g.on_hand_end"
        f" FROM (SELECT *, sum({net}) OVER (PARTITION BY g.stream_id ORDER BY g.last_version)"
        f" AS on_hand_end FROM {_TABLE} AS g) AS g JOIN streams AS s USING (stream_id)"
        " WHERE g.period <> '' ORDER BY s.store, s.product, g.period",
    )


# NOT INDEXED: for GROUP BY stream_id SQLite would otherwise walk the (stream_id,
# version) index and look every event up in the table, 8 times slower than a scan.
SALES_SQL = (
    "SELECT s.store, s.product, sum(e.quantity)"
    " FROM events AS e NOT INDEXED JOIN streams AS s USING (stream_id)"
    " WHERE e.occurred_at > :after AND e.occurred_at <= :until"
    " AND (e.type = 'ReservationFulfilled'"
    " OR (e.type = 'StockRemoved' AND json_extract(e.data, '$.reason') = 'sold')){stores}"
    " GROUP BY e.stream_id ORDER BY s.store, s.product"
)


class Reports:
    """The reports of one connection (``location`` names the file, for a second one)."""

    __slots__ = ("conn", "location")

    def __init__(self, conn: sqlite3.Connection, location: str) -> None:
        self.conn = conn
        self.location = location

    def period_movements(
        self,
        store: str | None,
        product: str | None,
        *,
        by: str,
        since: str | None,
        until: str | None,
    ) -> list[PeriodMovement]:
        if by not in PERIODS:
            raise ValueError(f"unknown period {by!r}")
        conditions = [f"{column} = :{column}" for column, value in
                      (("store", store), ("product", product)) if value is not None]
        streams = (
            f" AND e.stream_id IN (SELECT stream_id FROM streams WHERE {' AND '.join(conditions)})"
            if conditions else ""
        )
        sql = movements_sql(by, since, streams)
        conn = self.conn
        began = not conn.in_transaction
        if began:
            conn.execute("BEGIN")  # one snapshot of the log
        try:
            conn.execute(sql.create)
            conn.execute(f"DELETE FROM {_TABLE}")
            head = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
            params = {"store": store, "product": product, "since": since, "until": until,
                      "after_position": 0, "head": head}
            location = self.location
            if product is not None or head < PARALLEL_FROM or "memory" in location:
                conn.execute(sql.fold, params)
            else:
                self._fold_in_two(sql, params, location)
            rows = [PeriodMovement(*row) for row in conn.execute(sql.select)]
            conn.execute(f"DELETE FROM {_TABLE}")
        finally:
            if began and conn.in_transaction:
                conn.execute("COMMIT")
        return rows

    def _fold_in_two(self, sql: MovementsSql, params: dict[str, object], location: str) -> None:
        """Fold the first half of the positions here and the second on a connection of its
        own, in a thread (sqlite3 lets go of the GIL while SQLite works), then merge.

        Positions up to the head never change, so the other connection folds the same
        events whatever its snapshot.
        """
        from concurrent.futures import ThreadPoolExecutor

        middle = int(params["head"]) // 2  # type: ignore[call-overload]
        with ThreadPoolExecutor(max_workers=1) as pool:
            beside = pool.submit(_fold_alone, location, sql, {**params, "after_position": middle})
            self.conn.execute(sql.fold, {**params, "head": middle})
            rows = beside.result()
        if rows is None:
            self.conn.execute(sql.fold, {**params, "after_position": middle})
        else:
            self.conn.executemany(sql.merge, rows)

    def line_sales(self, store: str | None, *, after: str, until: str) -> list[LineSales]:
        sql = SALES_SQL.format(stores="" if store is None else " AND s.store = :store")
        rows = self.conn.execute(sql, {"after": after, "until": until, "store": store})
        return [LineSales(*row) for row in rows]


def _fold_alone(location: str, sql: MovementsSql, params: dict[str, object]) -> list[tuple] | None:
    """The (stream, period) rows of the positions in ``params``; None if it can't be done here."""
    try:
        conn = sqlite3.connect(location, isolation_level=None, uri=location.startswith("file:"))
    except sqlite3.Error:
        return None
    try:
        conn.execute(sql.create)
        conn.execute(sql.fold, params)
        return conn.execute(f"SELECT * FROM {_TABLE}").fetchall()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
