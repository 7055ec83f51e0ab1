"""Issue 15, goal 2: reading the whole log into a pipe takes flat memory.

On the 1,000,000-event log: `history --store main --json` and `history --store
main` (a table; 750,000 events), `export` and `replay --all-stores --json`, each
written into a pipe (`| cat > /dev/null`); the peak resident memory of the
tool's process (wait4 of the shell, which waits for it). At most 100 MiB (aim 64).
Then `history --store main --json` against the length of the log read
(`--until` cutting it at 1K, 10K, 100K and 1M events), so that flatness is seen.
"""

from __future__ import annotations

import shlex

from common import MIB, inventory_argv, log_at, log_db, median, ratio_result, info_result, run, say


def _peak(argv: list[str]) -> float:
    line = " ".join(shlex.quote(a) for a in argv) + " | cat > /dev/null"
    return run(["sh", "-c", line]).max_rss / MIB


def bench(quick: bool) -> list:
    rows = 200_000 if quick else 1_000_000
    db = log_db(rows)
    tool = [*inventory_argv(), "--db", str(db)]
    paths = {
        "history --store main --json": ["history", "--store", "main", "--json"],
        "history --store main (table)": ["history", "--store", "main"],
        "export": ["export"],
        "replay --all-stores --json": ["replay", "--all-stores", "--json"],
    }
    say(f"issue 15 goal 2: peak memory of whole-log reads into a pipe, {rows:,} events")
    results = []
    for name, args in paths.items():
        peaks = [_peak([*tool, *args]) for _ in range(1 if quick else 2)]
        results.append(ratio_result("15.2", f"{name} ({rows:,} events), peak RSS in a pipe",
                                    max(peaks), "MiB", "the limit", 100.0, limit=1.0, aim=0.64,
                                    note="samples " + "/".join(f"{p:.1f}" for p in peaks)))
    for length in (1_000, 10_000, 100_000, rows):
        peak = _peak([*tool, "history", "--store", "main", "--json", "--until", log_at(length - 1)])
        results.append(info_result("15.2 (info)", f"history --store main --json --until (the log's first {length:,} events)",
                                   peak, "MiB"))
    return results
