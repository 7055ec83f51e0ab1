"""The reports' queries on PostgreSQL: movements per period, and sales in a window.

The same rows as storage/sqlite/reports.py, by a plain GROUP BY with ``sum(…)
FILTER`` (a hash aggregate, parallel workers on a long log) and the same window
function for the running on_hand. Periods are local time as this process sees it:
the report's transaction sets the session's TimeZone to the client's zone
(``local_zone``), since the server's own zone is not the user's.
``occurred_at`` is stored as text (the exact bytes hashed), always with its UTC
offset, so ``::timestamptz`` reads it as the instant it names.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from inventory_cli.domain.events import EVENT_TYPES
from inventory_cli.storage.port import LineSales, PeriodMovement
from inventory_cli.storage.postgresql import connection

if TYPE_CHECKING:
    import psycopg

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
# ISO weeks: IYYY and IW are the ISO year and week (Monday first), as SQLite's labels.
_FORMATS = {"day": "YYYY-MM-DD", "week": 'IYYY-"W"IW', "month": "YYYY-MM"}
PERIODS = tuple(_FORMATS)


def local_zone() -> str:
    """The process's time zone as the C library sees it (what SQLite's 'localtime' uses):
    TZ when set ('' is UTC), else the zone /etc/localtime links to, else this moment's offset."""
    zone = os.environ.get("TZ")
    if zone is not None:
        zone = zone.lstrip(":")
        if "zoneinfo/" in zone:  # TZ=/usr/share/zoneinfo/Europe/Paris
            zone = zone.split("zoneinfo/", 1)[1]
        return zone or "UTC"
    try:
        target = os.path.realpath("/etc/localtime")
    except OSError:
        target = ""
    if "zoneinfo/" in target:
        return target.split("zoneinfo/", 1)[1]
    try:
        with open("/etc/timezone", encoding="utf-8") as file:  # Debian, where localtime is a copy
            named = file.read().strip()
        if named:
            return named
    except OSError:
        pass
    return _fixed_offset()


def _fixed_offset() -> str:
    """This moment's UTC offset as a POSIX zone (west of Greenwich is positive there)."""
    import time

    east = time.localtime().tm_gmtoff or 0
    sign = "-" if east > 0 else "+"
    hours, rest = divmod(abs(east), 3600)
    return f"<{'+' if east >= 0 else '-'}{hours:02d}{rest // 60:02d}>{sign}{hours}:{rest // 60:02d}"


def movements_sql(by: str, *, since: bool, until: bool, store: bool, product: bool) -> str:
    """Every event folded into (stream, period) sums, listed with the running on_hand after
    each period. Events before ``since`` share the period '' (left out of the rows, but
    their on_hand changes count towards on_hand_end).

    Within a stream occurred_at never goes backwards, so its periods follow each other
    in version order, and a running sum of each period's on_hand change, ordered by the
    period's last version, is the on_hand after that period.
    """
    period = f"to_char(e.occurred_at::timestamptz, '{_FORMATS[by]}')"
    if since:
        period = f"CASE WHEN e.occurred_at < %(since)s THEN '' ELSE {period} END"
    sums = ", ".join(
        f"coalesce(sum(e.quantity) FILTER (WHERE e.type = '{t}'), 0)::bigint AS {name}"
        for name, t in MOVEMENT_TYPES.items()
    )
    net = " + ".join(
        f"{sign} * g.{name}" for name, type_name in MOVEMENT_TYPES.items()
        if (sign := EVENT_TYPES[type_name].on_hand_sign)
    )
    conditions = ["TRUE"]
    if until:
        conditions.append("e.occurred_at <= %(until)s")
    streams = [f"{column} = %({column})s" for column, wanted in (("store", store), ("product", product)) if wanted]
    if streams:
        conditions.append(f"e.stream_id IN (SELECT stream_id FROM streams WHERE {' AND '.join(streams)})")
    names = ", ".join(f"g.{name}" for name in MOVEMENT_TYPES)
    return (
        f"SELECT g.period, s.store, s.product, {names}, g.on_hand_end FROM ("
        f" SELECT g.*, (sum({net}) OVER (PARTITION BY g.stream_id ORDER BY g.last_version))::bigint"
        " AS on_hand_end FROM ("
        f"  SELECT e.stream_id, ({period}) COLLATE \"C\" AS period, {sums}, max(e.version) AS last_version"
        f"  FROM events AS e WHERE {' AND '.join(conditions)} GROUP BY 1, 2) AS g"
        ") AS g JOIN streams AS s USING (stream_id)"
        " WHERE g.period <> '' ORDER BY s.store, s.product, g.period"
    )


_SALES_SQL = (
    "SELECT s.store, s.product, sum(e.quantity)::bigint"
    " FROM events AS e JOIN streams AS s USING (stream_id)"
    " WHERE e.occurred_at > %(after)s AND e.occurred_at <= %(until)s"
    " AND (e.type = 'ReservationFulfilled'"
    " OR (e.type = 'StockRemoved' AND (e.data::json ->> 'reason') = 'sold')){stores}"
    " GROUP BY s.store, s.product ORDER BY s.store, s.product"
)


class Reports:
    """The reports, as a part of PostgresEventStore (on its ``conn``)."""

    conn: psycopg.Connection
    url: str

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
        sql = movements_sql(by, since=since is not None, until=until is not None,
                            store=store is not None, product=product is not None)
        params = {"store": store, "product": product, "since": since, "until": until}
        return [PeriodMovement(*row) for row in self._in_local_time(sql, params)]

    def line_sales(self, store: str | None, *, after: str, until: str) -> list[LineSales]:
        import psycopg

        sql = _SALES_SQL.format(stores="" if store is None else " AND s.store = %(store)s")
        try:
            rows = self.conn.execute(sql, {"after": after, "until": until, "store": store}).fetchall()
        except psycopg.Error as error:
            raise connection.mapped(error, self.url) from None
        return [LineSales(*row) for row in rows]

    def _in_local_time(self, sql: str, params: dict[str, object]) -> list[tuple]:
        """The rows of ``sql`` with the session's TimeZone set to the client's, for this
        transaction only. A zone the server does not know is read as UTC, as the C library
        (and so SQLite) reads it."""
        import psycopg

        zone = local_zone()
        nested = self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        for attempt in (zone, "UTC"):
            try:
                with self.conn.transaction():
                    if not nested:  # else the caller's snapshot holds
                        self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    self.conn.execute("SELECT set_config('TimeZone', %s, true)", (attempt,))
                    return self.conn.execute(sql, params).fetchall()
            except psycopg.errors.InvalidParameterValue:
                if attempt == "UTC":
                    raise
            except psycopg.Error as error:
                raise connection.mapped(error, self.url) from None
        return []
