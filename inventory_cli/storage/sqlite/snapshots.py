"""Aggregate snapshots in SQLite (see storage/snapshot_rows.py): written with the events,
rebuilt and checked like a projection."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from inventory_cli.storage import snapshot_rows
from inventory_cli.storage.snapshot_rows import checksum


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


def rebuild(conn: sqlite3.Connection, rows: Iterable[tuple[int, int, str, str]] | None = None) -> None:
    """Replace every snapshot by the fold of its stream (the caller holds the write
    transaction, and the ``stock`` projection is rebuilt); ``rows``: the snapshots
    folded already (``snapshot_rows.rebuilt``), on another connection of the same state."""
    conn.execute("DELETE FROM snapshots")
    conn.executemany(
        "INSERT INTO snapshots (stream_id, version, state, checksum) VALUES (?, ?, ?, ?)",
        snapshot_rows.rebuilt(conn, "?") if rows is None else rows,
    )


def differences(conn: sqlite3.Connection) -> list[dict[str, object]]:
    return snapshot_rows.differences(conn, "?")
