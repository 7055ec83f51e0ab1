"""Loading an exported log into an empty PostgreSQL schema, then building the projections."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import TYPE_CHECKING

from inventory_cli.storage.port import RecordedEvent
from inventory_cli.storage.postgresql import connection
from inventory_cli.storage.postgresql.projections import rebuild_tables
from inventory_cli.storage.postgresql.schema import LOG_LOCK_SQL

if TYPE_CHECKING:
    import psycopg

CHUNK = 10_000
_COPY_EVENTS = (
    "COPY events (position, stream_id, version, type, quantity, data, occurred_at, recorded_at,"
    " actor, idempotency_key, command_hash, hash) FROM STDIN"
)


class NotEmpty(Exception):
    """The target already has events."""


def restore_log(
    conn: psycopg.Connection, url: str, events: Iterable[RecordedEvent], *, create_tables: bool = False
) -> int:
    """Write ``events`` (positions, times, actors, keys and hashes as given) in one transaction.

    A keyed event gets the command hash '' ("restored": the export does not carry it),
    which a repeated command with the same key matches. Errors raised by ``events``
    (a bad line) roll everything back, the tables too when ``create_tables`` made them.
    """
    import psycopg

    try:
        with conn.transaction():
            if create_tables:
                connection.create_tables(conn, url)
            conn.execute(f"SELECT {LOG_LOCK_SQL}")
            if conn.execute("SELECT EXISTS (SELECT 1 FROM events)").fetchone()[0]:  # type: ignore[index]
                raise NotEmpty
            streams: dict[tuple[str, str], int] = {}
            count = 0
            source = iter(events)
            while chunk := list(islice(source, CHUNK)):
                new = []
                for recorded in chunk:
                    key = (recorded.store, recorded.product)
                    if key not in streams:
                        streams[key] = len(streams) + 1
                        new.append((streams[key], *key))
                if new:
                    conn.cursor().executemany(
                        "INSERT INTO streams (stream_id, store, product) VALUES (%s, %s, %s)", new
                    )
                with conn.cursor().copy(_COPY_EVENTS) as copy:
                    for r in chunk:
                        copy.write_row((
                            r.position, streams[r.store, r.product], r.version, type(r.event).__name__,
                            r.event.quantity, r.data, r.occurred_at, r.recorded_at, r.actor,
                            r.idempotency_key, None if r.idempotency_key is None else "", r.hash,
                        ))
                count += len(chunk)
            conn.execute(
                "SELECT setval(pg_get_serial_sequence('streams', 'stream_id'),"
                " coalesce(max(stream_id), 0) + 1, false) FROM streams"
            )
            rebuild_tables(conn)
    except psycopg.Error as error:
        raise connection.mapped(error, url, writing=True) from None
    return count
