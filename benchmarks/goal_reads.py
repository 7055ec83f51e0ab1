"""Goal 5: reading one product's past costs about what reading its current stock does.

On the 1,000,000-event log: `history SKU`, `replay SKU --position N` and
`replay SKU --until T`, each against `stock SKU` (whole process, default table
output to a pipe, interleaved, medians). SKU is an ordinary product (a few
hundred events); HOT-1, with 5% of the log, is shown for information (its
history as JSON and as the latest 20 rows, since a 50,000-row table is not a
thing people read).
"""

from __future__ import annotations

from common import HOT, interleaved, inventory_argv, log_at, log_db, median, ratio_result, run, say

SKU = "P-00042"


def bench(quick: bool) -> list:
    rows = 200_000 if quick else 1_000_000
    reps = 7 if quick else 15
    db = log_db(rows)
    tool = [*inventory_argv(), "--db", str(db)]
    middle, at = str(rows // 2), log_at(rows // 2)
    results = []
    for sku, hot in ((SKU, False), (HOT, True)):
        events = _event_count(db, sku)
        paths = {
            f"history {sku}": ["history", sku],
            f"history {sku} --json": ["history", sku, "--json"],
        } if not hot else {
            # A table of 50,000 rows is not what people ask for: the log read alone, and a page.
            f"history {sku} --json": ["history", sku, "--json"],
            f"history {sku} --limit 20": ["history", sku, "--limit", "20"],
        }
        paths |= {
            f"replay {sku} --position {middle}": ["replay", sku, "--position", middle],
            f"replay {sku} --until {at[:19]}": ["replay", sku, "--until", at[:19] + "+00:00"],
        }
        cases = {"stock": lambda sku=sku: run([*tool, "stock", sku]).seconds}
        for name, args in paths.items():
            cases[name] = lambda args=args: run([*tool, *args]).seconds
        say(f"goal 5: {sku} ({events:,} events), {reps} interleaved repetitions")
        samples = interleaved(cases, reps if not hot else max(3, reps // 3))
        base = median(samples["stock"])
        for name in paths:
            info = hot or name.endswith("--json")  # the goal is about the commands as people type them
            r = ratio_result("5" if not info else "5 (info)", f"{name} ({events:,} events)",
                             median(samples[name]) * 1000, "ms", f"stock {sku}", base * 1000, limit=1.1)
            if info:
                r.ok, r.target = None, "-"
            results.append(r)
    results += _writes_on_long_stream(db, max(3, reps // 3))
    return results


def _writes_on_long_stream(db, reps: int) -> list:
    """`add SKU 1` on an ordinary stream and on HOT-1, on a copy of the log (writes change it)."""
    import shutil

    from common import WORK, remove_db

    copy = WORK / "log-copy.db"
    remove_db(copy)
    shutil.copyfile(db, copy)
    tool = [*inventory_argv(), "--db", str(copy)]
    cases = {sku: (lambda sku=sku: run([*tool, "add", sku, "1"]).seconds) for sku in (SKU, HOT)}
    say(f"goal 5: add {SKU} 1 / add {HOT} 1 on a copy of the log, {reps} interleaved repetitions")
    samples = interleaved(cases, reps)
    remove_db(copy)
    r = ratio_result("3 (info)", f"add {HOT} 1 ({_event_count(db, HOT):,} events in the stream)",
                     median(samples[HOT]) * 1000, "ms", f"add {SKU} 1", median(samples[SKU]) * 1000, limit=1.1)
    r.ok, r.target = None, "-"
    return [r]


def _event_count(db, sku: str) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT count(*) FROM events WHERE stream_id ="
            " (SELECT stream_id FROM streams WHERE store = 'main' AND product = ?)", (sku,)
        ).fetchone()[0]
    finally:
        conn.close()
