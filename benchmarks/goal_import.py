"""Goal 1: importing 200,000 add rows over 2,000 products, whole process.

Candidate: `inventory --db X import FILE -q`. Baseline: scripts/plain_import.py
(read the NDJSON, executemany one event row per line into a WAL table with
UNIQUE(stream_id, version), synchronous=FULL, one transaction). Each sample
starts from a fresh database.
"""

from __future__ import annotations

from common import WORK, adds_file, import_cases, interleaved, median, ratio_result, remove_db, say


def bench(quick: bool) -> list:
    rows = 200_000
    reps = 3 if quick else 7
    source = adds_file(rows)
    db_tool, db_plain = WORK / "import-tool.db", WORK / "import-plain.db"

    say(f"goal 1: import {rows:,} add rows, {reps} interleaved repetitions")
    samples = interleaved(import_cases(source, db_tool, db_plain), reps)
    t, p = median(samples["tool"]), median(samples["plain"])
    remove_db(db_tool)
    remove_db(db_plain)
    return [
        ratio_result("1", f"import {rows:,} adds (NDJSON, whole process)", t, "s",
                     "plain executemany script", p, limit=2.0, aim=1.5,
                     note=f"{rows / t:,.0f} rows/s vs {rows / p:,.0f}; "
                          f"samples tool {_fmt(samples['tool'])}, plain {_fmt(samples['plain'])}"),
    ]


def _fmt(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)
