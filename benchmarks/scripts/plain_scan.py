"""Baseline for rebuild-projections (issue 15, goal 4): SQLite's own scan of every column of `events`.

    SELECT count(*), sum(length(c1)) + sum(length(c2)) + … FROM events

in one statement, no row crossing into Python: the least a reading of the whole log costs.

    python plain_scan.py DB
"""

import sqlite3
import sys

conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
columns = [row[1] for row in conn.execute("PRAGMA table_info(events)")]
print(conn.execute(
    f"SELECT count(*), {' + '.join(f'coalesce(sum(length({c})), 0)' for c in columns)} FROM events"
).fetchone())
