"""Goal 8: `report movements --all-stores --by month` on a 1,000,000-event log costs no
more than `rebuild-projections` on the same log (both read every event once).

Whole processes, interleaved, medians; `report cover --all-stores` beside them for
information (it reads the log for the sales of the last 28 days).
"""

from __future__ import annotations

from common import info_result, interleaved, inventory_argv, log_db, median, ratio_result, run, say


def bench(quick: bool) -> list:
    rows = 200_000 if quick else 1_000_000
    reps = 3 if quick else 5
    db = log_db(rows)
    tool = [*inventory_argv(), "--db", str(db)]
    movements = [*tool, "report", "movements", "--all-stores", "--by", "month"]
    cases = {
        "rebuild": lambda: run([*tool, "rebuild-projections"]).seconds,
        "movements": lambda: run([*movements, "--json"]).seconds,
        "movements-table": lambda: run(movements).seconds,
        "movements-week": lambda: run([*tool, "report", "movements", "--all-stores", "--by", "week",
                                       "--json"]).seconds,
        "cover": lambda: run([*tool, "report", "cover", "--all-stores", "--json",
                              "--until", "2025-01-12"]).seconds,
    }
    say(f"goal 8: reports on {rows:,} events, {reps} interleaved repetitions")
    samples = interleaved(cases, reps)
    base = median(samples["rebuild"])
    note = "QUICK: 200,000 events, not 1,000,000" if quick else ""
    what = "rebuild-projections, same log"
    return [
        ratio_result("8", f"report movements --all-stores --by month --json ({rows:,} events)",
                     median(samples["movements"]), "s", what, base, limit=1.0, note=note),
        info_result("8", "  the same, as a table (in a pipe)", median(samples["movements-table"]), "s", what, base),
        info_result("8", "  the same, --by week", median(samples["movements-week"]), "s", what, base),
        info_result("8", "report cover --all-stores --until (replay + 28 days of sales)",
                    median(samples["cover"]), "s", what, base),
    ]
