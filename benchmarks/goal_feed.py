"""The feed: how soon a follower shows a committed event, and what `metrics` costs.

- Latency: a follower (`export --follow`, its stdout read by this process) runs
  while `add` commands run one after another; for each, the time from the
  command's exit (as this process sees it) to its line arriving. Median and
  99th percentile over 200 commands. A line can arrive before the writer's exit
  is seen (the commit comes before the process ends), so a figure may be below 0.
- `metrics` against `stock` on the 1,000,000-event log (whole processes, output
  to a pipe, interleaved, medians): metrics reads projections and the
  event_counts tally, so it should cost about what a store's stock table costs.
  Its first run on a log counts every event once to start the tally: timed
  apart, on a copy, for information.
"""

from __future__ import annotations

import queue
import statistics
import subprocess
import threading
import time

from common import WORK, child_env, info_result, interleaved, inventory_argv, log_db, median, ratio_result, remove_db, run, say


def bench(quick: bool) -> list:
    return _latency(50 if quick else 200) + _metrics_against_stock(quick)


def _latency(commands: int) -> list:
    db = WORK / "feed-latency.db"
    remove_db(db)
    tool = [*inventory_argv(), "--db", str(db)]
    run([*tool, "add", "WARM-UP", "1"])
    follower = subprocess.Popen([*tool, "export", "--follow"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=child_env())
    arrivals: queue.Queue[tuple[int, float]] = queue.Queue()

    def read() -> None:
        assert follower.stdout is not None
        for position, _ in enumerate(follower.stdout, start=1):
            arrivals.put((position, time.perf_counter()))

    threading.Thread(target=read, daemon=True).start()
    arrivals.get(timeout=60)  # the backlog: the follower is up
    say(f"feed: latency from an `add`'s exit to its line at a follower, {commands} commands")
    delays = []
    try:
        for number in range(commands):
            run([*tool, "add", f"P-{number % 20}", "1"])
            exited = time.perf_counter()
            position, arrived = arrivals.get(timeout=60)
            assert position == number + 2, (position, number)
            delays.append((arrived - exited) * 1000)
    finally:
        follower.terminate()
        follower.wait(timeout=60)
        remove_db(db)
    p99 = statistics.quantiles(delays, n=100)[98] if len(delays) >= 100 else max(delays)
    note = f"min {min(delays):.1f} ms, max {max(delays):.1f} ms"
    return [
        ratio_result("feed", f"follower latency, median of {commands}", median(delays), "ms",
                     "the contract's 1 s", 1000.0, limit=1.0, note=note),
        ratio_result("feed", f"follower latency, 99th percentile of {commands}", p99, "ms",
                     "the contract's 1 s", 1000.0, limit=1.0),
    ]


def _metrics_against_stock(quick: bool) -> list:
    rows = 200_000 if quick else 1_000_000
    reps = 7 if quick else 15
    db = log_db(rows)
    first = _first_metrics(db)
    tool = [*inventory_argv(), "--db", str(db)]
    cases = {
        "stock": lambda: run([*tool, "stock"]).seconds,
        "stock --all-stores --json": lambda: run([*tool, "stock", "--all-stores", "--json"]).seconds,
        "metrics": lambda: run([*tool, "metrics"]).seconds,
    }
    say(f"feed: metrics against stock on the {rows:,}-event log, {reps} interleaved repetitions")
    samples = interleaved(cases, reps)
    base = median(samples["stock"]) * 1000
    return [
        ratio_result("feed", f"metrics ({rows:,} events)", median(samples["metrics"]) * 1000, "ms",
                     "stock (store main, table)", base, limit=1.2),
        info_result("feed (info)", f"stock --all-stores --json ({rows:,} events)",
                    median(samples["stock --all-stores --json"]) * 1000, "ms", "stock", base),
        info_result("feed (info)", f"first metrics on the log: tallies {rows:,} events",
                    first * 1000, "ms", "stock", base),
    ]


def _first_metrics(db) -> float:
    """`metrics` on a copy of the log whose tally is empty (as after an import or a rebuild)."""
    import shutil
    import sqlite3

    copy = WORK / "feed-metrics-copy.db"
    remove_db(copy)
    shutil.copyfile(db, copy)
    conn = sqlite3.connect(copy)
    conn.execute("DELETE FROM event_counts")
    conn.commit()
    conn.close()
    try:
        return run([*inventory_argv(), "--db", str(copy), "metrics"]).seconds
    finally:
        remove_db(copy)
