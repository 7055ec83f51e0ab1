"""Reading the log on PostgreSQL: a stream, the whole log in batches, and verify."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from inventory_cli.storage.chain import GENESIS, HASHED_COLUMNS_SQL, event_hash, stored_event
from inventory_cli.storage.port import ChainReport, RecordedEvent

if TYPE_CHECKING:
    import psycopg


class LogReads:
    """The read half of EventLog (log.py)."""

    conn: psycopg.Connection
    _in_write: bool

    def _name(self, stream_id: int) -> tuple[str, str]: ...

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
            " FROM events WHERE stream_id = %s"
        )
        params: list[object] = [stream_id]
        if until_position is not None:
            sql += " AND position <= %s"
            params.append(until_position)
        if until_time is not None:
            sql += " AND occurred_at <= %s"
            params.append(until_time)
        rows = self.conn.execute(sql + " ORDER BY version", params).fetchall()
        for position, version, type_name, quantity, data, occurred_at, recorded_at, actor in rows:
            yield RecordedEvent(position, version, store, product, stored_event(type_name, quantity, data),
                                occurred_at, recorded_at, actor)

    def read_log(
        self,
        *,
        store: str | None = None,
        after_position: int = 0,
        until_time: str | None = None,
    ) -> Iterator[RecordedEvent]:
        sql = (
            "SELECT e.position, e.version, s.store, s.product, e.type, e.quantity, e.data,"
            " e.occurred_at, e.recorded_at, e.actor, e.idempotency_key, e.hash"
            " FROM events AS e JOIN streams AS s USING (stream_id) WHERE e.position > %s"
        )
        params: list[object] = [after_position or 0]
        if store is not None:
            sql += " AND s.store = %s"
            params.append(store)
        if until_time is not None:
            sql += " AND e.occurred_at <= %s"
            params.append(until_time)
        for (position, version, store_code, product, type_name, quantity, data, occurred_at,
             recorded_at, actor, key, hash_) in self._stream_rows(sql + " ORDER BY e.position", params):
            yield RecordedEvent(position, version, store_code, product, stored_event(type_name, quantity, data),
                                occurred_at, recorded_at, actor, key, hash_, data)

    def _stream_rows(self, sql: str, params: Sequence[object]) -> Iterator[tuple]:
        """Rows fetched in batches from a server-side cursor: memory stays flat over any log."""
        import psycopg

        if self._in_write:  # pipeline mode has no server-side cursors
            yield from self.conn.execute(sql, params).fetchall()
            return
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            yield from self._named_cursor(sql, params)  # inside a snapshot already
            return
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield from self._named_cursor(sql, params)

    def _named_cursor(self, sql: str, params: Sequence[object]) -> Iterator[tuple]:
        with self.conn.cursor(name="inventory_rows") as cursor:
            cursor.itersize = 5000
            cursor.execute(sql, params)
            yield from cursor

    def verify_chain(self, anchor: tuple[int, str] | None = None) -> ChainReport:
        """Recompute every event's hash from its content and the previous event's hash."""
        previous, first_bad, count, head = GENESIS, None, 0, (0, None)
        anchor_ok = None if anchor is None else False
        rows = self._stream_rows(
            f"SELECT {HASHED_COLUMNS_SQL}, e.hash FROM events AS e"
            " JOIN streams AS s USING (stream_id) ORDER BY e.position",
            (),
        )
        for row in rows:
            count += 1
            stored = row[-1]
            expected = event_hash(previous, *row[:-1])
            if first_bad is None and (expected != stored or row[0] != count):
                first_bad = row[0] if row[0] == count or expected != stored else count
            if anchor is not None and row[0] == anchor[0]:
                anchor_ok = stored == anchor[1] and expected == stored and first_bad is None
            previous = stored
            head = (row[0], stored)
        return ChainReport(count, first_bad, head[0], head[1], anchor_ok)
