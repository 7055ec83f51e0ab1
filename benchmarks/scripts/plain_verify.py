"""Baseline for verify: a plain Python loop that reads every event and recomputes the SHA-256 chain.

The same rows and the same text per event as the tool's chain (docs/audit.md),
compared with the stored hashes; prints the count and the head.

    python plain_verify.py DB
"""

import sqlite3
import sys
from hashlib import sha256

conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
previous, count, bad = "0" * 64, 0, None
rows = conn.execute(
    "SELECT e.position, s.store, s.product, e.version, e.type, e.quantity, e.data, e.occurred_at,"
    " e.recorded_at, e.actor, e.idempotency_key, e.hash FROM events AS e JOIN streams AS s USING (stream_id)"
    " ORDER BY e.position"
)
for position, store, product, version, type_, quantity, data, occurred, recorded, actor, key, stored in rows:
    count += 1
    text = (f"{previous}\n{position}\n{store}\n{product}\n{version}\n{type_}\n{quantity}\n"
            f"{data}\n{occurred}\n{recorded}\n{actor}\n{key or ''}")
    if sha256(text.encode()).hexdigest() != stored and bad is None:
        bad = position
    previous = stored
print(count, bad, previous)
