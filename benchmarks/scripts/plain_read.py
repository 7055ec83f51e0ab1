"""Baseline for goal 4: a Python script that merely reads every row of `events`.

    python plain_read.py DB
"""

import sqlite3
import sys

conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows = conn.execute("SELECT * FROM events").fetchall()
print(len(rows))
