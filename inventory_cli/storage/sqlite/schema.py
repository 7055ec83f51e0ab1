"""The SQLite schema: its DDL, versions and migrations, and the SQL that folds the log.

The file is ours when its ``application_id`` is ours; ``user_version`` counts the
migrations applied. Projection tables are defined by a function so that a rebuild
can create identical tables beside the live ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable

from inventory_cli.storage.sqlite import feed_schema

APPLICATION_ID = 0x494E5659  # "INVY"

EVENTS_DDL = """
CREATE TABLE streams (
    stream_id INTEGER PRIMARY KEY,
    store     TEXT NOT NULL,
    product   TEXT NOT NULL,
    UNIQUE (store, product)
);
CREATE TABLE events (
    position        INTEGER PRIMARY KEY,
    stream_id       INTEGER NOT NULL REFERENCES streams (stream_id),
    version         INTEGER NOT NULL,
    type            TEXT    NOT NULL,
    quantity        INTEGER NOT NULL,
    data            TEXT    NOT NULL,
    occurred_at     TEXT    NOT NULL,
    recorded_at     TEXT    NOT NULL,
    idempotency_key TEXT,
    command_hash    TEXT,
    UNIQUE (stream_id, version)
);
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: events cannot be updated'); END;
CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: events cannot be deleted'); END;
CREATE VIEW event_log AS
    SELECT e.position, s.store, s.product, e.version, e.type, e.quantity, e.data,
           e.occurred_at, e.recorded_at, e.idempotency_key
    FROM events AS e JOIN streams AS s USING (stream_id);
"""


# The projections as version 1 created them. Frozen: migrations never change.
V1_PROJECTIONS = """
CREATE TABLE stock (
    stream_id  INTEGER PRIMARY KEY,
    store      TEXT    NOT NULL,
    product    TEXT    NOT NULL,
    on_hand    INTEGER NOT NULL,
    reserved   INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
);
CREATE TABLE reservations (
    reservation_id TEXT    PRIMARY KEY,
    stream_id      INTEGER NOT NULL,
    quantity       INTEGER NOT NULL,
    customer       TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    closed_at      TEXT
);
CREATE TABLE idempotency_keys (
    key          TEXT    PRIMARY KEY,
    command_hash TEXT    NOT NULL,
    stream_id    INTEGER NOT NULL,
    position     INTEGER NOT NULL
);
CREATE UNIQUE INDEX stock_by_store_product ON stock (store, product);
"""


def projection_ddl(suffix: str = "", *, temporary: bool = False) -> str:
    """DDL of today's projection tables, optionally with a suffix for a rebuild,
    or as temporary tables (this connection's, dropped when it closes) for a check.

    ``idempotency_keys`` is WITHOUT ROWID: one b-tree ordered by key, where a rowid
    table needs a second one for its primary key (a keyed import writes a row per
    command). Files made before keep their table until the next rebuild.
    """
    create = "CREATE TEMP TABLE" if temporary else "CREATE TABLE"
    return f"""
{create} stock{suffix} (
    stream_id     INTEGER PRIMARY KEY,
    store         TEXT    NOT NULL,
    product       TEXT    NOT NULL,
    on_hand       INTEGER NOT NULL,
    reserved      INTEGER NOT NULL,
    incoming      INTEGER NOT NULL,
    reorder_point INTEGER,
    version       INTEGER NOT NULL,
    updated_at    TEXT    NOT NULL
);
{create} reservations{suffix} (
    reservation_id TEXT    PRIMARY KEY,
    stream_id      INTEGER NOT NULL,
    quantity       INTEGER NOT NULL,
    customer       TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    expires_at     TEXT,
    closed_at      TEXT
);
{create} idempotency_keys{suffix} (
    key          TEXT    PRIMARY KEY,
    command_hash TEXT    NOT NULL,
    stream_id    INTEGER NOT NULL,
    position     INTEGER NOT NULL
) WITHOUT ROWID;
{create} products{suffix} (
    product TEXT PRIMARY KEY,
    name    TEXT NOT NULL
);
{create} transfers{suffix} (
    transfer_id TEXT    PRIMARY KEY,
    product     TEXT    NOT NULL,
    from_store  TEXT    NOT NULL,
    to_store    TEXT    NOT NULL,
    quantity    INTEGER NOT NULL,
    received    INTEGER NOT NULL,
    lost        INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    shipped_at  TEXT    NOT NULL,
    received_at TEXT
);
{create} event_counts{suffix} (
    type    TEXT    PRIMARY KEY,
    events  INTEGER NOT NULL,
    through INTEGER NOT NULL
);
"""


PROJECTION_INDEXES = """
CREATE UNIQUE INDEX stock_by_store_product ON stock (store, product);
CREATE INDEX reservations_open_by_expiry ON reservations (expires_at) WHERE status = 'open';
CREATE INDEX transfers_open ON transfers (to_store, product) WHERE status = 'open';
""" + feed_schema.OPEN_RESERVATIONS_BY_STREAM + ";\n"

# Table name -> its key column, for rebuilds and comparisons.
PROJECTION_TABLES = {
    "stock": "stream_id",
    "reservations": "reservation_id",
    "idempotency_keys": "key",
    "products": "product",
    "transfers": "transfer_id",
    "event_counts": "type",
}


def _signed(sign_attribute: str) -> str:
    """SQL for one event's effect on one balance, from the domain's signs."""
    from inventory_cli.domain.events import EVENT_TYPES

    cases = " ".join(
        f"WHEN '{name}' THEN {sign} * e.quantity"
        for name, cls in EVENT_TYPES.items()
        if (sign := getattr(cls, sign_attribute))
    )
    return f"CASE e.type {cases} ELSE 0 END"


def fold_streams_sql(table: str, where: str = "") -> str:
    """Fold events into per-stream balances in ``table`` (stream_id primary key).

    An upsert per event into a small table: several times faster in SQLite than
    GROUP BY, which sorts every event by stream first. Independent of the order
    the rows come in, so SQLite may pick any index. The table's columns:
    stream_id, on_hand, reserved, incoming, version, updated_at (of the last event).
    ``where`` is a WHERE clause over ``events AS e`` (see ``where.Where``), or "".
    """
    return (
        f"INSERT INTO {table} (stream_id, on_hand, reserved, incoming, version, updated_at)"
        f" SELECT e.stream_id, {_signed('on_hand_sign')}, {_signed('reserved_sign')},"
        f" {_signed('incoming_sign')}, e.version, e.recorded_at FROM events AS e"
        f"{where or ' WHERE true'}"  # SQLite needs a WHERE before ON CONFLICT after a SELECT
        " ON CONFLICT (stream_id) DO UPDATE SET on_hand = on_hand + excluded.on_hand,"
        " reserved = reserved + excluded.reserved, incoming = incoming + excluded.incoming,"
        " version = max(version, excluded.version),"
        " updated_at = CASE WHEN excluded.version > version THEN excluded.updated_at"
        " ELSE updated_at END"
    )


def fold_table_ddl(table: str) -> str:
    """A temporary table for ``fold_streams_sql`` (``table`` is ``temp.<name>``)."""
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS {table} (stream_id INTEGER PRIMARY KEY, on_hand INTEGER,"
        " reserved INTEGER, incoming INTEGER, version INTEGER, updated_at TEXT)"
    )


# Events of the types most logs hold few of, or none: a partial index (version 5)
# spares the rebuild a scan of the whole log per type. SQLite uses it for a query
# on `type = '…'` (or an OR of such terms) of these types. The condition is an OR,
# not `type IN (…)`: SQLite evaluated that list at every insert (0.38 s more per
# 200,000 appended events).
RARE_TYPES_INDEX = """
CREATE INDEX IF NOT EXISTS events_of_rare_types ON events (type)
WHERE type = 'ProductDefined' OR type = 'TransferShipped' OR type = 'TransferReceived'
   OR type = 'TransferLost';
"""

# The stock lines of the log, per stream: the fold of every event plus the latest
# reorder point. Run on any connection: the result is a few rows per stream.
STOCK_FOLD_SQL = [
    "DROP TABLE IF EXISTS temp.stock_fold",
    "DROP TABLE IF EXISTS temp.reorder_points",
    fold_table_ddl("temp.stock_fold"),
    fold_streams_sql("temp.stock_fold"),
    # The latest reorder point per stream (an upsert, not GROUP BY: see fold_streams_sql).
    "CREATE TEMP TABLE reorder_points (stream_id INTEGER PRIMARY KEY, reorder_point INTEGER,"
    " position INTEGER)",
    "INSERT INTO temp.reorder_points SELECT stream_id, json_extract(data, '$.reorder_point'),"
    " position FROM events WHERE type = 'ProductDefined'"
    " AND json_extract(data, '$.reorder_point') IS NOT NULL"
    " ON CONFLICT (stream_id) DO UPDATE SET reorder_point = excluded.reorder_point,"
    " position = excluded.position WHERE excluded.position > position",
]
STOCK_COLUMNS = (
    "stream_id, store, product, on_hand, reserved, incoming, reorder_point, version, updated_at"
)
STOCK_FOLD_ROWS = (
    "SELECT f.stream_id, s.store, s.product, f.on_hand, f.reserved, f.incoming,"
    " p.reorder_point, f.version, f.updated_at FROM temp.stock_fold AS f"
    " JOIN streams AS s USING (stream_id) LEFT JOIN temp.reorder_points AS p USING (stream_id)"
)
STOCK_FOLD_DROP = ["DROP TABLE temp.stock_fold", "DROP TABLE temp.reorder_points"]


def stock_fill_sql(suffix: str = "") -> list[str]:
    """Statements that fold the stock lines on this connection into ``stock{suffix}``."""
    return [*STOCK_FOLD_SQL, f"INSERT INTO stock{suffix} ({STOCK_COLUMNS}) {STOCK_FOLD_ROWS}", *STOCK_FOLD_DROP]


def keyed_fill_sql(suffix: str = "") -> list[str]:
    """Statements that compute the projections other than stock into tables with ``suffix``."""
    return [
        # One pass in order of reservation id, each reservation's events in log order
        # (its b-tree then grows at its end): a reservation is inserted by its
        # StockReserved and closed by the StockReleased or ReservationFulfilled after it.
        f"INSERT INTO reservations{suffix} (reservation_id, stream_id, quantity,"
        " customer, status, created_at, expires_at, closed_at)"
        " SELECT json_extract(data, '$.reservation_id'), stream_id, quantity,"
        " coalesce(json_extract(data, '$.customer'), ''), CASE type WHEN 'StockReserved' THEN 'open'"
        " WHEN 'StockReleased' THEN 'released' ELSE 'fulfilled' END, occurred_at,"
        " json_extract(data, '$.expires_at'),"
        " CASE type WHEN 'StockReserved' THEN NULL ELSE occurred_at END FROM events"
        " WHERE type IN ('StockReserved', 'StockReleased', 'ReservationFulfilled')"
        " ORDER BY 1, position"
        " ON CONFLICT (reservation_id) DO UPDATE SET status = excluded.status,"
        " closed_at = excluded.closed_at",
        f"INSERT INTO idempotency_keys{suffix} (key, command_hash, stream_id, position)"
        " SELECT idempotency_key, command_hash, stream_id, position FROM events"
        " WHERE idempotency_key IS NOT NULL ORDER BY idempotency_key"
        " ON CONFLICT (key) DO UPDATE SET command_hash = excluded.command_hash,"
        " stream_id = excluded.stream_id, position = excluded.position"
        " WHERE excluded.position > position",
        f"INSERT INTO products{suffix} (product, name)"
        " SELECT product, name FROM (SELECT s.product, json_extract(e.data, '$.name') AS name,"
        " max(e.position) FROM events AS e JOIN streams AS s USING (stream_id)"
        " WHERE e.type = 'ProductDefined'"
        " AND json_extract(e.data, '$.name') IS NOT NULL GROUP BY s.product)",
        f"INSERT INTO transfers{suffix} (transfer_id, product, from_store, to_store, quantity,"
        " received, lost, status, shipped_at)"
        " SELECT json_extract(e.data, '$.transfer_id'), s.product, s.store,"
        " json_extract(e.data, '$.to_store'), e.quantity, 0, 0, 'open', e.occurred_at"
        " FROM events AS e JOIN streams AS s USING (stream_id)"
        " WHERE e.type = 'TransferShipped'",
        f"UPDATE transfers{suffix} AS t SET received = r.received, lost = r.lost,"
        " status = 'received', received_at = r.received_at"
        " FROM (SELECT json_extract(data, '$.transfer_id') AS transfer_id,"
        " sum(CASE type WHEN 'TransferReceived' THEN quantity ELSE 0 END) AS received,"
        " sum(CASE type WHEN 'TransferLost' THEN quantity ELSE 0 END) AS lost,"
        " max(occurred_at) AS received_at FROM events"
        " WHERE (type = 'TransferReceived' OR type = 'TransferLost') GROUP BY 1) AS r"
        " WHERE t.transfer_id = r.transfer_id",
        feed_schema.event_counts_fill_sql(suffix),
    ]


def projection_fill_sql(suffix: str = "") -> list[str]:
    """Statements that compute every projection from the log into tables with ``suffix``."""
    return stock_fill_sql(suffix) + keyed_fill_sql(suffix)


StockRows = Callable[[], "list[tuple] | None"]


def replace_projections(
    conn: sqlite3.Connection, existing: Iterable[str], stock_rows: StockRows | None = None
) -> None:
    """Build today's projections from the log beside ``existing`` ones, then swap them in.

    The caller holds a write transaction: readers see the old tables until it commits.
    ``stock_rows``, when given, delivers the stock lines folded elsewhere (on another
    connection, in parallel with the rest); None from it means fold them here.
    """
    for table in PROJECTION_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS {table}_next")
    for statement in statements(projection_ddl("_next")):
        conn.execute(statement)
    for statement in keyed_fill_sql("_next"):
        conn.execute(statement)
    rows = stock_rows() if stock_rows is not None else None
    if rows is None:
        for statement in stock_fill_sql("_next"):
            conn.execute(statement)
    else:
        conn.executemany(f"INSERT INTO stock_next ({STOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    for table in existing:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    for table in PROJECTION_TABLES:
        conn.execute(f"ALTER TABLE {table}_next RENAME TO {table}")
    for statement in statements(PROJECTION_INDEXES):
        conn.execute(statement)


REFUSE_UPDATE_TRIGGER = """
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: events cannot be updated'); END;
"""

AUDIT_VIEW = """
CREATE VIEW event_log AS
    SELECT e.position, s.store, s.product, e.version, e.type, e.quantity, e.data,
           e.occurred_at, e.recorded_at, e.actor, e.idempotency_key, e.hash
    FROM events AS e JOIN streams AS s USING (stream_id);
"""


def _run(script: str) -> Callable[[sqlite3.Connection], None]:
    def migration(conn: sqlite3.Connection) -> None:
        for statement in statements(script):
            conn.execute(statement)

    return migration


def _add_actor_and_hash_chain(conn: sqlite3.Connection) -> None:
    """Version 2: every event gets an actor ('unknown' before) and a hash chained over all."""
    from inventory_cli.storage.chain import GENESIS, HASHED_COLUMNS_SQL, event_hash

    conn.execute("ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT 'unknown'")
    conn.execute("ALTER TABLE events ADD COLUMN hash TEXT")
    conn.execute("DROP TRIGGER events_refuse_update")  # only for the time of this transaction
    previous, after = GENESIS, 0
    while True:
        rows = conn.execute(
            f"SELECT {HASHED_COLUMNS_SQL} FROM events AS e JOIN streams AS s USING (stream_id)"
            " WHERE e.position > ? ORDER BY e.position LIMIT 10000",
            (after,),
        ).fetchall()
        if not rows:
            break
        updates = []
        for row in rows:
            previous = event_hash(previous, *row)
            updates.append((previous, row[0]))
        conn.executemany("UPDATE events SET hash = ? WHERE position = ?", updates)
        after = rows[-1][0]
    _run(REFUSE_UPDATE_TRIGGER + "DROP VIEW event_log;" + AUDIT_VIEW)(conn)


STREAM_TRIGGERS = """
CREATE TRIGGER streams_refuse_update BEFORE UPDATE ON streams
BEGIN SELECT RAISE(ABORT, 'streams are part of the append-only log: they cannot be updated'); END;
CREATE TRIGGER streams_refuse_delete BEFORE DELETE ON streams
BEGIN SELECT RAISE(ABORT, 'streams are part of the append-only log: they cannot be deleted'); END;
"""


# REPLACE deletes a conflicting row without firing DELETE triggers (unless the
# connection enabled recursive_triggers): refuse any insert that would replace.
EVENTS_REFUSE_REPLACE = """
CREATE TRIGGER IF NOT EXISTS events_refuse_replace BEFORE INSERT ON events
WHEN NEW.position <= (SELECT max(position) FROM events)
  OR NEW.version <= (SELECT max(version) FROM events WHERE stream_id = NEW.stream_id)
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: an event cannot be replaced'); END;
"""
STREAMS_REFUSE_REPLACE = """
CREATE TRIGGER IF NOT EXISTS streams_refuse_replace BEFORE INSERT ON streams
WHEN EXISTS (SELECT 1 FROM streams WHERE stream_id = NEW.stream_id)
  OR EXISTS (SELECT 1 FROM streams WHERE store = NEW.store AND product = NEW.product)
BEGIN SELECT RAISE(ABORT, 'streams are part of the append-only log: a stream cannot be replaced'); END;
"""


def _store_operations(conn: sqlite3.Connection) -> None:
    """Version 3: expiry, transfers, products; stream identities become append-only too.

    Projections are derived, so they are simply rebuilt in their new shape from the log.
    """
    _run(STREAM_TRIGGERS)(conn)
    replace_projections(conn, ("stock", "reservations", "idempotency_keys"))


# The latest state of a long stream, as JSON (domain/snapshots.py), with a checksum
# over it and the hash of the event at its version (see sqlite/snapshots.py).
SNAPSHOTS_DDL = """
CREATE TABLE IF NOT EXISTS snapshots (
    stream_id INTEGER PRIMARY KEY,
    version   INTEGER NOT NULL,
    state     TEXT    NOT NULL,
    checksum  TEXT    NOT NULL
);
"""


# Each migration takes the schema from version i to i + 1 (list index i).
# Never edit a released migration: add a new one.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _run(EVENTS_DDL + V1_PROJECTIONS),
    _add_actor_and_hash_chain,
    _store_operations,
    # Version 4: events and streams refuse an INSERT that would replace a stored row.
    _run(EVENTS_REFUSE_REPLACE + STREAMS_REFUSE_REPLACE),
    # Version 5: a partial index on the event types a rebuild looks for one by one.
    _run(RARE_TYPES_INDEX),
    # Version 6: consumers (followers' positions), the event_counts projection, an index.
    feed_schema.feed_tables,
    # Version 7: aggregate snapshots, a projection the next writes and rebuilds fill.
    _run(SNAPSHOTS_DDL),
]
CURRENT_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, from_version: int, to_version: int = CURRENT_VERSION) -> None:
    """Apply the missing migrations; the caller holds a write transaction."""
    for version in range(from_version, to_version):
        MIGRATIONS[version](conn)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {to_version}")


def statements(script: str) -> list[str]:
    """Split a script into statements, keeping trigger bodies whole."""
    found, current = [], ""
    for line in script.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            found.append(current.strip())
            current = ""
    return found
