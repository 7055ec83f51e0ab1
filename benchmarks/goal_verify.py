"""Issue 15, goal 5: `verify` of the 1,000,000-event log against a plain Python loop.

scripts/plain_verify.py reads the same rows (events joined to streams, in
position order) and computes the same SHA-256 chain, comparing each stored
hash; `inventory verify` does that and compares every projection with the log
too. Whole process both sides, interleaved, medians.
"""

from __future__ import annotations

import sys

from common import SCRIPTS, interleaved, inventory_argv, log_db, median, ratio_result, run, say


def bench(quick: bool) -> list:
    rows = 200_000 if quick else 1_000_000
    reps = 3 if quick else 5
    db = log_db(rows)
    cases = {
        "plain": lambda: run([sys.executable, str(SCRIPTS / "plain_verify.py"), str(db)]).seconds,
        "verify": lambda: run([*inventory_argv(), "--db", str(db), "verify"]).seconds,
    }
    say(f"issue 15 goal 5: verify on {rows:,} events, {reps} interleaved repetitions")
    samples = interleaved(cases, reps)
    return [ratio_result(
        "15.5", f"verify ({rows:,} events)", median(samples["verify"]), "s",
        "plain Python loop recomputing the chain", median(samples["plain"]), limit=1.5,
        note=f"samples verify {'/'.join(f'{s:.2f}' for s in samples['verify'])}, "
             f"plain {'/'.join(f'{s:.2f}' for s in samples['plain'])}"
             + ("; QUICK: 200,000 events" if quick else ""),
    )]
