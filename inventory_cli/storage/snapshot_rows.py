"""Aggregate snapshots as both backends store and check them.

A snapshot row holds a stream's state at ``version`` (JSON, domain/snapshots.py)
and a checksum: the SHA-256 of the hash of the stream's event at that version, a
line feed, and the state text. A writer trusts a row only when the checksum matches
what it reads: an edited state, or a log whose event at that version is not the one
folded, makes the row ignorable, and the stream is folded from its first event.
A missing or ignored row only costs time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import sha256

from inventory_cli.domain.events import Event
from inventory_cli.domain.inventory import Inventory
from inventory_cli.domain.snapshots import SNAPSHOT_EVERY, snapshot_text
from inventory_cli.storage.chain import stored_event
from inventory_cli.storage.port import LoadedStream, StreamInfo

# The columns a backend's load query gives, per row, in version order of the events
# after the snapshot: the snapshot's version, its state (on the first row), its
# checksum, the hash and time of the event at its version, then one event (or NULLs).
LOAD_COLUMNS = (
    "n.version, CASE WHEN e.version IS NULL OR e.version = n.version + 1 THEN n.state END,"
    " n.checksum, h.hash, h.occurred_at, e.type, e.quantity, e.data, e.occurred_at"
)
# Joined to ``streams AS s``: the snapshot, the event it folded last, the events after it.
LOAD_JOINS = (
    " LEFT JOIN snapshots AS n ON n.stream_id = s.stream_id"
    " LEFT JOIN events AS h ON h.stream_id = s.stream_id AND h.version = n.version"
    " LEFT JOIN events AS e ON e.stream_id = s.stream_id AND e.version > coalesce(n.version, 0)"
)


def is_long(version: int) -> bool:
    """Whether a stream of ``version`` events gets a snapshot when projections are rebuilt."""
    return version >= SNAPSHOT_EVERY


def checksum(event_hash: str, state: str) -> str:
    return sha256(f"{event_hash}\n{state}".encode()).hexdigest()


def loaded_stream(
    info: StreamInfo, rows: Sequence[Sequence], every_event: Callable[[int], tuple[list[Event], str]]
) -> LoadedStream:
    """The stream from its LOAD_COLUMNS rows; from ``every_event`` when its snapshot fails its check."""
    version, state, stored_checksum, event_hash, at = rows[0][:5]
    if version is not None and (state is None or event_hash is None or checksum(event_hash, state) != stored_checksum):
        return LoadedStream(info, None, 0, *every_event(info.stream_id))
    if rows[0][5] is None:  # no event after the snapshot (or none at all)
        return LoadedStream(info, state, version or 0, [], at or "")
    return LoadedStream(info, state, version or 0,
                        [stored_event(row[5], row[6], row[7]) for row in rows], rows[-1][8])


# Both backends' connections have ``execute(sql, params)`` returning rows; only the
# parameter marker differs ("?" for sqlite3, "%s" for psycopg).


def fold(conn, mark: str, stream_id: int, store: str, product: str,
         version: int | None = None) -> tuple[Inventory, str | None]:
    """The stream folded up to ``version`` (all of it for None), and that event's hash."""
    inventory, last_hash = Inventory(store, product), None
    rows = conn.execute(
        "SELECT type, quantity, data, hash FROM events"
        f" WHERE stream_id = {mark} AND version <= {mark} ORDER BY version",
        (stream_id, version if version is not None else 1 << 62),
    )
    for type_name, quantity, data, last_hash in rows:
        inventory.apply(stored_event(type_name, quantity, data))
    return inventory, last_hash


def rebuilt(conn, mark: str, long_streams: Sequence[tuple[int, str, str]] | None = None
            ) -> list[tuple[int, int, str, str]]:
    """(stream id, version, state, checksum) of every stream of at least SNAPSHOT_EVERY
    events, at its last event. ``long_streams`` are those streams' (id, store, product);
    by default they are read from the ``stock`` projection, already rebuilt (its
    version counts a stream's events)."""
    if long_streams is None:
        long_streams = list(conn.execute(
            f"SELECT stream_id, store, product FROM stock WHERE version >= {mark}", (SNAPSHOT_EVERY,)
        ))
    rows = []
    for stream_id, store, product in long_streams:
        inventory, last_hash = fold(conn, mark, stream_id, store, product)
        if last_hash is not None:
            state = snapshot_text(inventory)
            rows.append((stream_id, inventory.version, state, checksum(last_hash, state)))
    return rows


def differences(conn, mark: str) -> list[dict[str, object]]:
    """Each snapshot that is not the fold of its stream up to its version (or whose
    checksum does not match), as a projection difference keyed by stream id."""
    found: list[dict[str, object]] = []
    snapshots = list(conn.execute(
        "SELECT n.stream_id, s.store, s.product, n.version, n.state, n.checksum"
        " FROM snapshots AS n LEFT JOIN streams AS s ON s.stream_id = n.stream_id ORDER BY n.stream_id"
    ))
    for stream_id, store, product, version, state, stored_checksum in snapshots:
        expected = None
        if store is not None:
            inventory, last_hash = fold(conn, mark, stream_id, store, product, version)
            if last_hash is not None and inventory.version == version:
                text = snapshot_text(inventory)
                expected = {"stream_id": stream_id, "version": version, "state": text,
                            "checksum": checksum(last_hash, text)}
        actual = {"stream_id": stream_id, "version": version, "state": state, "checksum": stored_checksum}
        if expected != actual:
            found.append({"table": "snapshots", "key": stream_id, "expected": expected, "actual": actual})
    return found
