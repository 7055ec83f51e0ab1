"""Goal 1: importing 200,000 add rows over 2,000 products, whole process.

Candidate: `inventory --db X import FILE -q`. Baseline: scripts/plain_import.py
(read the NDJSON, executemany one event row per line into a WAL table with
UNIQUE(stream_id, version) and a UNIQUE key column filled from each row's id,
synchronous=FULL, one transaction). Each sample starts from a fresh database.
Issue 15, goal 3: the same rows each with an `id` (≤ 2×, aim 1.5×); the rows
without one beside it.
"""

from __future__ import annotations

from common import WORK, adds_file, import_cases, interleaved, median, ratio_result, remove_db, say


def bench(quick: bool) -> list:
    rows = 200_000
    reps = 3 if quick else 7
    db_tool, db_plain = WORK / "import-tool.db", WORK / "import-plain.db"
    cases = {}
    for name, source in (("", adds_file(rows)), ("ids ", adds_file(rows, ids=True))):
        for side, case in import_cases(source, db_tool, db_plain).items():
            cases[name + side] = case
    say(f"goal 1: import {rows:,} add rows, with and without ids, {reps} interleaved repetitions")
    samples = interleaved(cases, reps)
    remove_db(db_tool)
    remove_db(db_plain)
    results = []
    for name, goal, what in (("ids ", "15.3", "adds with an id each"), ("", "1", "adds")):
        t, p = median(samples[name + "tool"]), median(samples[name + "plain"])
        results.append(ratio_result(
            goal, f"import {rows:,} {what} (NDJSON, whole process)", t, "s",
            "plain executemany script", p, limit=2.0, aim=1.5,
            note=f"{rows / t:,.0f} rows/s vs {rows / p:,.0f}; "
                 f"samples tool {_fmt(samples[name + 'tool'])}, plain {_fmt(samples[name + 'plain'])}"))
    return results


def _fmt(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)
