"""The reports' queries on SQLite: movements per period, and sales in a window.

Both are computed by SQL over the event log, never by folding events in Python.
Periods are local time: SQLite's ``'localtime'`` modifier follows the process's
``TZ``. A PostgreSQL twin reads the same columns; see ``period_key_sql``.
"""

from __future__ import annotations

import sqlite3

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


def movements_sql(by: str, since: str | None, streams: str) -> list[str]:
    """The statements: fold every event into (stream, period) sums, then list the sums
    with the running on_hand after each period.

    An upsert per event into a small table, not GROUP BY, which makes SQLite sort
    every event first (see schema.fold_streams_sql); PostgreSQL would GROUP BY.
    Within a stream occurred_at never goes backwards, so its periods follow each
    other in version order, and a running sum of each period's on_hand change,
    ordered by the period's last version, is the on_hand after that period.
    """
    names = list(MOVEMENT_TYPES)
    sums = ", ".join(f"CASE e.type WHEN '{t}' THEN e.quantity ELSE 0 END" for t in MOVEMENT_TYPES.values())
    updates = ", ".join(f"{n} = {n} + excluded.{n}" for n in names)
    net = " + ".join(
        f"{sign} * g.{name}" for name, type_name in MOVEMENT_TYPES.items()
        if (sign := EVENT_TYPES[type_name].on_hand_sign)
    )
    return [
        _CREATE,
        f"DELETE FROM {_TABLE}",
        f"INSERT INTO {_TABLE} (stream_id, period, {', '.join(names)}, last_version)"
        f" SELECT e.stream_id, {period_key_sql(by, since)}, {sums}, e.version FROM events AS e"
        f" WHERE (:until IS NULL OR e.occurred_at <= :until){streams}"
        f" ON CONFLICT (stream_id, period) DO UPDATE SET {updates},"
        " last_version = max(last_version, excluded.last_version)",
        f"SELECT {_LABELS[by]}, s.store, s.product, {', '.join(f'g.{n}' for n in names)}, g.on_hand_end"
        f" FROM (SELECT *, sum({net}) OVER (PARTITION BY g.stream_id ORDER BY g.last_version)"
        f" AS on_hand_end FROM {_TABLE} AS g) AS g JOIN streams AS s USING (stream_id)"
        " WHERE g.period <> '' ORDER BY s.store, s.product, g.period",
    ]


SALES_SQL = (
    "SELECT s.store, s.product, sum(e.quantity) FROM events AS e JOIN streams AS s USING (stream_id)"
    " WHERE e.occurred_at > :after AND e.occurred_at <= :until"
    " AND (e.type = 'ReservationFulfilled'"
    " OR (e.type = 'StockRemoved' AND json_extract(e.data, '$.reason') = 'sold')){stores}"
    " GROUP BY e.stream_id ORDER BY s.store, s.product"
)


class SqliteReports:
    """The report methods of the storage port, mixed into the SQLite event store."""

    conn: sqlite3.Connection

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
        params = {"store": store, "product": product, "since": since, "until": until}
        *fold, select = movements_sql(by, since, streams)
        conn = self.conn
        began = not conn.in_transaction
        if began:
            conn.execute("BEGIN")  # one snapshot of the log for the fold
        try:
            for statement in fold:
                conn.execute(statement, params)
            rows = [PeriodMovement(*row) for row in conn.execute(select)]
            conn.execute(f"DELETE FROM {_TABLE}")
        finally:
            if began and conn.in_transaction:
                conn.execute("COMMIT")
        return rows

    def line_sales(self, store: str | None, *, after: str, until: str) -> list[LineSales]:
        sql = SALES_SQL.format(stores="" if store is None else " AND s.store = :store")
        rows = self.conn.execute(sql, {"after": after, "until": until, "store": store})
        return [LineSales(*row) for row in rows]
