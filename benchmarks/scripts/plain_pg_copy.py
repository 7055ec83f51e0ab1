"""The baseline of the PostgreSQL import benchmark: COPY the rows as event rows, one transaction.

    python plain_pg_copy.py FILE URL

Reads the NDJSON with json.loads and COPYs one event row per line (stream id,
version, type, the row as JSON, a timestamp, its id as a unique key) into a table
with UNIQUE(stream_id, version) and a unique key column.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import psycopg


def main() -> None:
    source, url = sys.argv[1], sys.argv[2]
    now = datetime.now(timezone.utc).isoformat()
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS plain_events")
        conn.execute(
            "CREATE TABLE plain_events (position bigserial PRIMARY KEY, stream_id integer NOT NULL,"
            " version integer NOT NULL, type text NOT NULL, data text NOT NULL, recorded_at text NOT NULL,"
            " key text UNIQUE, UNIQUE (stream_id, version))"
        )
        streams: dict[tuple[str, str], int] = {}
        versions: dict[int, int] = {}
        with conn.cursor().copy(
            "COPY plain_events (stream_id, version, type, data, recorded_at, key) FROM STDIN"
        ) as copy, open(source, "rb") as lines:
            for line in lines:
                row = json.loads(line)
                stream = streams.setdefault((row.get("store", "main"), row["product"]), len(streams) + 1)
                version = versions[stream] = versions.get(stream, 0) + 1
                copy.write_row((stream, version, row["op"], line.decode().strip(), now, row.get("id")))


if __name__ == "__main__":
    main()
