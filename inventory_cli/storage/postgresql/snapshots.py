"""Aggregate snapshots on PostgreSQL (see storage/snapshot_rows.py; the table is
migration 3 in schema.py): the write that travels with the append, rebuild and check.

The checksum is computed by the server from the hash it gave the event at the
snapshot's version, in the same transaction, so a snapshot is written in the
pipeline after the append, with no round trip of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from inventory_cli.storage import snapshot_rows

if TYPE_CHECKING:
    import psycopg

_WRITE = (
    "INSERT INTO snapshots (stream_id, version, state, checksum)"
    " SELECT x.stream_id, x.version, x.state,"
    " encode(sha256(convert_to(e.hash || E'\\n' || x.state, 'UTF8')), 'hex')"
    " FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS x(stream_id, version, state)"
    " JOIN events AS e ON e.stream_id = x.stream_id AND e.version = x.version"
    " ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, state = excluded.state,"
    " checksum = excluded.checksum WHERE excluded.version > snapshots.version"
)


def write(conn: psycopg.Connection, rows: Sequence[tuple[int, int, str]]) -> None:
    """Queue the (stream id, version, state) snapshots after the append that holds their events."""
    conn.execute(_WRITE, ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]))


def rebuild(conn: psycopg.Connection) -> None:
    """Replace every snapshot by the fold of its stream (in the caller's transaction, the
    ``stock`` projection rebuilt)."""
    conn.execute("DELETE FROM snapshots")
    rows = snapshot_rows.rebuilt(conn, "%s")
    if rows:
        conn.cursor().executemany(
            "INSERT INTO snapshots (stream_id, version, state, checksum) VALUES (%s, %s, %s, %s)", rows
        )


def differences(conn: psycopg.Connection) -> list[dict[str, object]]:
    return snapshot_rows.differences(conn, "%s")
