"""The SQLite backend: the event log and its projections in one file.

``connection`` opens and migrates files, ``schema`` holds the DDL and the fold SQL,
``log`` appends, reads and verifies events, ``projections`` fills, replays, rebuilds
and checks the projection tables; ``store.SqliteEventStore`` puts them together.
"""

from inventory_cli.storage.sqlite.connection import open_store
from inventory_cli.storage.sqlite.store import SqliteEventStore

__all__ = ["SqliteEventStore", "open_store"]
