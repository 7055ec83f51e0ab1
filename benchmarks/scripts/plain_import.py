"""Baseline for goal 1 (and 2, 7): the least a Python import of an NDJSON file can do.

Reads the NDJSON, and executemany-inserts one event row per line (a JSON
payload) into a WAL table with UNIQUE(stream_id, version), synchronous=FULL,
in one transaction. Stream ids are integers, as in the tool's schema. A row's
`id`, when it has one, fills a UNIQUE key column (NULL without: no index entry).

    python plain_import.py FILE.ndjson DB
"""

import json
import sqlite3
import sys
from datetime import datetime, timezone


def main(source: str, database: str) -> None:
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS events (position INTEGER PRIMARY KEY,"
        " stream_id INTEGER NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL,"
        " data TEXT NOT NULL, recorded_at TEXT NOT NULL, key TEXT UNIQUE, UNIQUE (stream_id, version))"
    )
    now = datetime.now(timezone.utc).isoformat()
    stream_ids: dict[tuple[str, str], int] = {}
    versions: dict[int, int] = {}

    def rows():
        with open(source, "rb") as file:
            for line in file:
                row = json.loads(line)
                key = (row.get("store", "main"), row.get("product") or row.get("reservation_id"))
                stream = stream_ids.setdefault(key, len(stream_ids) + 1)
                version = versions[stream] = versions.get(stream, 0) + 1
                yield stream, version, row["op"], json.dumps(row), now, row.get("id")

    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO events (stream_id, version, type, data, recorded_at, key) VALUES (?, ?, ?, ?, ?, ?)",
        rows(),
    )
    conn.execute("COMMIT")
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
