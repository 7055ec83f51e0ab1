"""The append of many events at once (an import's flush): COPY, hashes chained here.

``inventory_append`` (schema.py) suits a command: the lock is its last step and
travels with the COMMIT. For thousands of events its array parameters and its
PL/pgSQL loop cost more than the rows themselves, so a big flush instead takes
the log lock first (an import's transaction holds it to the COMMIT anyway, from
its first flush on), reads the head in a later statement (a fresh snapshot in
READ COMMITTED), then numbers the events from there, chains their hashes with
storage/chain.py's ``event_hash`` (the very function SQLite's append uses, so
both compute the same chain) and COPYs them and their idempotency keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from inventory_cli.storage.chain import GENESIS, event_hash, payload
from inventory_cli.storage.port import NewEvent
from inventory_cli.storage.postgresql.schema import LOG_LOCK_SQL

if TYPE_CHECKING:
    import psycopg

# From this many events a flush is COPYed; fewer go through inventory_append.
BULK_EVENTS = 1000

LOCK_SQL = f"SELECT {LOG_LOCK_SQL}"
HEAD_SQL = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1"

_COPY_EVENTS = (
    "COPY events (position, stream_id, version, type, quantity, data, occurred_at, recorded_at,"
    " actor, idempotency_key, command_hash, hash) FROM STDIN"
)
_COPY_KEYS = "COPY idempotency_keys (key, command_hash, stream_id, position) FROM STDIN"


def head(row: tuple[int, str] | None) -> tuple[int, str]:
    """(position, hash) of the last event from HEAD_SQL's row; (0, GENESIS) for an empty log."""
    return (row[0], row[1]) if row else (0, GENESIS)


def copy_events(
    conn: psycopg.Connection,
    events: Sequence[NewEvent],
    name: Callable[[int], tuple[str, str]],
    after: tuple[int, str],
) -> tuple[int, str]:
    """COPY ``events`` at the positions after ``after`` (position, hash); the new head.

    ``name`` gives a stream's (store, product). The caller holds the log lock and
    is outside pipeline mode (COPY cannot run in it).
    """
    position, previous = after
    keys: dict[str, tuple[str | None, int, int]] = {}
    encode = payload
    with conn.cursor().copy(_COPY_EVENTS) as copy:
        write = copy.write_row
        # Unpacked rather than read by attribute: this loop runs once per imported row.
        for stream_id, _proposed, version, event, occurred_at, recorded_at, key, command_hash, actor in events:
            position += 1
            type_name, data, quantity = type(event).__name__, encode(event), event[0]
            store, product = name(stream_id)
            previous = event_hash(
                previous, position, store, product, version, type_name, quantity,
                data, occurred_at, recorded_at, actor, key,
            )
            write((position, stream_id, version, type_name, quantity, data, occurred_at,
                   recorded_at, actor, key, command_hash, previous))
            if key is not None:
                keys[key] = (command_hash, stream_id, position)  # a command's last event answers
    if keys:
        with conn.cursor().copy(_COPY_KEYS) as copy:
            write = copy.write_row
            for key, (command_hash, stream_id, at) in keys.items():
                write((key, command_hash, stream_id, at))
    return position, previous
