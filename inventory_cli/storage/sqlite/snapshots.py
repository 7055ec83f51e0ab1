"""Aggregate snapshots in SQLite: written with the events, rebuilt and checked like a projection.

A row holds a stream's state at ``version`` (JSON, domain/snapshots.py) and a
checksum: the SHA-256 of the hash of the stream's event at that version, a line
feed, and the state text. A reader trusts a row only when the checksum matches
what it reads (log.EventLog.load_stream): an edited state, or a log whose event
at that version is not the one folded, makes the row ignorable, and the stream
is folded from its first event. A missing or ignored row only costs time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from hashlib import sha256

from inventory_cli.domain.inventory import Inventory
from inventory_cli.domain.snapshots import SNAPSHOT_EVERY, snapshot_text
from inventory_cli.storage.chain import stored_event


def checksum(event_hash: str, state: str) -> str:
    return sha256(f"{event_hash}\n{state}".encode()).hexdigest()


def write(conn: sqlite3.Connection, rows: Iterable[tuple[int, int, str]]) -> None:
    """Store (stream id, version, state) rows, replacing a stream's older snapshot.
    The events up to each version are in the open transaction already."""
    stored = []
    for stream_id, version, state in rows:
        found = conn.execute(
            "SELECT hash FROM events WHERE stream_id = ? AND version = ?", (stream_id, version)
        ).fetchone()
        if found is not None:
            stored.append((stream_id, version, state, checksum(found[0], state)))
    conn.executemany(
        "INSERT INTO snapshots (stream_id, version, state, checksum) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version,"
        " state = excluded.state, checksum = excluded.checksum WHERE excluded.version > version",
        stored,
    )


def _fold(conn: sqlite3.Connection, stream_id: int, store: str, product: str,
          version: int | None = None) -> tuple[Inventory, str | None]:
    """The stream folded up to ``version`` (all of it for None), and that event's hash."""
    inventory, last_hash = Inventory(store, product), None
    rows = conn.execute(
        "SELECT type, quantity, data, hash FROM events WHERE stream_id = ? AND version <= ?"
        " ORDER BY version",
        (stream_id, version if version is not None else 1 << 62),
    )
    for type_name, quantity, data, last_hash in rows:
        inventory.apply(stored_event(type_name, quantity, data))
    return inventory, last_hash


def rebuild(conn: sqlite3.Connection) -> None:
    """Replace every snapshot by the fold of its stream: one per stream of at least
    SNAPSHOT_EVERY events, at its last event. The caller holds the write transaction,
    and the ``stock`` projection is rebuilt (its version counts a stream's events)."""
    conn.execute("DELETE FROM snapshots")
    long_streams = conn.execute(
        "SELECT stream_id, store, product FROM stock WHERE version >= ?", (SNAPSHOT_EVERY,)
    ).fetchall()
    rows = []
    for stream_id, store, product in long_streams:
        inventory, last_hash = _fold(conn, stream_id, store, product)
        if last_hash is not None:
            state = snapshot_text(inventory)
            rows.append((stream_id, inventory.version, state, checksum(last_hash, state)))
    conn.executemany("INSERT INTO snapshots (stream_id, version, state, checksum) VALUES (?, ?, ?, ?)", rows)


def differences(conn: sqlite3.Connection) -> list[dict[str, object]]:
    """Each snapshot that is not the fold of its stream up to its version (or whose
    checksum does not match), as a projection difference keyed by stream id."""
    found: list[dict[str, object]] = []
    snapshots = conn.execute(
        "SELECT n.stream_id, s.store, s.product, n.version, n.state, n.checksum"
        " FROM snapshots AS n LEFT JOIN streams AS s USING (stream_id) ORDER BY n.stream_id"
    ).fetchall()
    for stream_id, store, product, version, state, stored_checksum in snapshots:
        expected = None
        if store is not None:
            inventory, last_hash = _fold(conn, stream_id, store, product, version)
            if last_hash is not None and inventory.version == version:
                text = snapshot_text(inventory)
                expected = {"stream_id": stream_id, "version": version, "state": text,
                            "checksum": checksum(last_hash, text)}
        actual = {"stream_id": stream_id, "version": version, "state": state, "checksum": stored_checksum}
        if expected != actual:
            found.append({"table": "snapshots", "key": stream_id, "expected": expected, "actual": actual})
    return found
