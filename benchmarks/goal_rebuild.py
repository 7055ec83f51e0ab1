"""Goal 4: rebuild-projections and replay --all-stores --position N on a 1,000,000-event log.

Each against scripts/plain_read.py, which merely fetches every row of
`events` with sqlite3 (whole process both sides, interleaved, medians).
N is the middle of the log. Issue 15, goal 4: rebuild-projections against
scripts/plain_scan.py, SQLite's own scan of every column (no row crosses into
Python).
"""

from __future__ import annotations

import sys

from common import (SCRIPTS, interleaved, inventory_argv, log_db, median, ratio_result,
                    info_result, run, say)


def bench(quick: bool) -> list:
    rows = 200_000 if quick else 1_000_000
    reps = 3 if quick else 5
    db = log_db(rows)
    tool = [*inventory_argv(), "--db", str(db)]
    middle = str(rows // 2)
    cases = {
        "read": lambda: run([sys.executable, str(SCRIPTS / "plain_read.py"), str(db)]).seconds,
        "scan": lambda: run([sys.executable, str(SCRIPTS / "plain_scan.py"), str(db)]).seconds,
        "rebuild": lambda: run([*tool, "rebuild-projections"]).seconds,
        "replay": lambda: run([*tool, "replay", "--all-stores", "--position", middle]).seconds,
        "replay-json": lambda: run([*tool, "replay", "--all-stores", "--position", middle, "--json"]).seconds,
    }
    say(f"goal 4: rebuild and replay on {rows:,} events, {reps} interleaved repetitions")
    samples = interleaved(cases, reps)
    base = median(samples["read"])
    quick_note = "; QUICK: 200,000 events, not 1,000,000" if quick else ""
    scan = median(samples["scan"])
    return [
        ratio_result("15.4", f"rebuild-projections ({rows:,} events)", median(samples["rebuild"]), "s",
                     "SQLite's scan of every column", scan, limit=2.0, aim=1.5,
                     note=f"samples rebuild {'/'.join(f'{s:.2f}' for s in samples['rebuild'])}, "
                          f"scan {'/'.join(f'{s:.2f}' for s in samples['scan'])}{quick_note}"),
        ratio_result("4", f"rebuild-projections ({rows:,} events)", median(samples["rebuild"]), "s",
                     "plain script reading every event row", base, limit=1.0, aim=0.5, note=quick_note.lstrip("; ")),
        ratio_result("4", f"replay --all-stores --position {middle}", median(samples["replay"]), "s",
                     "plain script reading every event row", base, limit=1.0, aim=0.5, note=quick_note.lstrip("; ")),
        info_result("4", "  the same, --json", median(samples["replay-json"]), "s",
                    "plain script reading every event row", base),
    ]
