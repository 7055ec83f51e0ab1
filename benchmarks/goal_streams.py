"""Issue 15, goal 1: a command's cost does not grow with its stream.

One file holding four long streams, of 1,000, 10,000, 100,000 and 1,000,000
events (adds, removes, reservations later fulfilled or released: about 300
reservations open at any time), imported once by the tool and cached like the
mixed log. On a copy of it (commands write), `add LONG-N 1` for each length
and `add NEW-i 1` on a new stream of the same file (a new product each time),
whole process, interleaved, medians. The 1,000,000 figure is the goal
(≤ 1.2×, aim 1.05×); the others show the curve. Then the peak memory of
`history LONG-N --json` in a pipe against the stream's length (information:
streaming `history` is issue 14's).
"""

from __future__ import annotations

import itertools
import json
import random
import shutil

from common import (WORK, interleaved, inventory_argv, median, ratio_result, info_result,
                    remove_db, run, say, MIB, code_tag, imported_db)

LENGTHS = (1_000, 10_000, 100_000, 1_000_000)


def long_streams_file(lengths: tuple[int, ...]) -> "Path":  # noqa: F821
    path = WORK / f"long-{'-'.join(map(str, lengths))}.ndjson"
    if path.exists():
        return path
    rng = random.Random(15)
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as out:
        for length in lengths:
            product, available, open_, serial = f"LONG-{length}", 0, [], 0
            for i in range(length):
                r = rng.random()
                if open_ and (r < 0.2 or len(open_) > 400):
                    rid, qty = open_.pop(rng.randrange(len(open_)))
                    row = {"op": "fulfill" if rng.random() < 0.8 else "release", "reservation_id": rid}
                    if row["op"] == "release":
                        available += qty
                elif r < 0.6 or available < 5:
                    qty = rng.randint(1, 20)
                    row = {"op": "add", "product": product, "quantity": qty}
                    available += qty
                elif r < 0.7:
                    qty = rng.randint(1, 3)
                    row = {"op": "remove", "product": product, "quantity": qty}
                    available -= qty
                else:
                    qty, serial = rng.randint(1, 3), serial + 1
                    rid = f"{product}-R{serial}"
                    row = {"op": "reserve", "product": product, "quantity": qty, "reservation_id": rid,
                           "customer": f"C{rng.randint(1, 500)}"}
                    available -= qty
                    open_.append((rid, qty))
                out.write(dumps(row) + "\n")
    tmp.rename(path)
    return path


def long_streams_db(lengths: tuple[int, ...]) -> "Path":  # noqa: F821
    path = WORK / f"long-{'-'.join(map(str, lengths))}-{code_tag()}.db"
    return imported_db(path, lambda: long_streams_file(lengths), sum(lengths))


def bench(quick: bool) -> list:
    lengths = LENGTHS[:3] if quick else LENGTHS
    reps = 5 if quick else 11
    db = long_streams_db(lengths)
    copy = WORK / "long-copy.db"
    remove_db(copy)
    shutil.copyfile(db, copy)
    tool = [*inventory_argv(), "--db", str(copy)]
    fresh = itertools.count(1)
    cases = {"new": lambda: run([*tool, "add", f"NEW-{next(fresh)}", "1"]).seconds}
    for length in lengths:
        cases[length] = lambda length=length: run([*tool, "add", f"LONG-{length}", "1"]).seconds
    say(f"issue 15 goal 1: add on streams of {', '.join(f'{n:,}' for n in lengths)} events"
        f" against a new stream, {reps} interleaved repetitions")
    samples = interleaved(cases, reps)
    base = median(samples["new"])
    results = []
    for length in lengths:
        r = ratio_result("15.1", f"add LONG-{length} 1 ({length:,} events in the stream)",
                         median(samples[length]) * 1000, "ms", "add NEW-i 1 (a new stream)", base * 1000,
                         limit=1.2, aim=1.05,
                         note=f"samples {'/'.join(f'{s * 1000:.0f}' for s in samples[length])} ms; "
                              f"new {'/'.join(f'{s * 1000:.0f}' for s in samples['new'])} ms")
        if length != lengths[-1]:
            r.ok, r.target = None, "-"
        results.append(r)
    memory_reps = 1 if quick else 3
    for length in lengths:
        peaks = [run([*inventory_argv(), "--db", str(copy), "history", f"LONG-{length}", "--json"]).max_rss
                 for _ in range(memory_reps)]
        results.append(info_result("15.2 (info)", f"history LONG-{length} --json, peak RSS in a pipe",
                                   median(peaks) / MIB, "MiB"))
    remove_db(copy)
    return results
