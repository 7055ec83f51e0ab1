"""Goal 3: the everyday commands against a hello-world typer app, whole process.

`stock SKU --json`, `stock SKU` (a table) and `add SKU 1` on a small database,
each compared with scripts/hello_typer.py run by the same interpreter (which
freezes the garbage collector at exit, as the tool does); many interleaved
repetitions, medians. Issue 15, goal 6: at most 1.0×. Then `python -X importtime` for each path:
the biggest top-level imports (cumulative), median of three runs.
"""

from __future__ import annotations

import sys

from common import (SCRIPTS, WORK, Result, interleaved, inventory_argv, median,
                    ratio_result, remove_db, run, say)

SKU = "SKU-1"


def bench(quick: bool) -> list:
    reps = 9 if quick else 31
    db = WORK / "startup.db"
    remove_db(db)
    tool = inventory_argv()
    run([*tool, "--db", str(db), "add", SKU, "100"])
    hello = [sys.executable, str(SCRIPTS / "hello_typer.py")]
    paths = {
        "stock SKU --json": [*tool, "--db", str(db), "stock", SKU, "--json"],
        "stock SKU": [*tool, "--db", str(db), "stock", SKU],
        "add SKU 1": [*tool, "--db", str(db), "add", SKU, "1"],
    }
    say(f"goal 3: start-up, {reps} interleaved repetitions of 4 commands")
    cases = {"hello": lambda: run(hello).seconds}
    for name, argv in paths.items():
        cases[name] = lambda argv=argv: run(argv).seconds
    samples = interleaved(cases, reps)
    base = median(samples["hello"])
    results: list[Result] = []
    for name, argv in paths.items():
        imports = biggest_imports(argv)
        results.append(ratio_result(
            "3", f"`inventory {name}` (whole process)", median(samples[name]) * 1000, "ms",
            "hello-world typer app (gc frozen at exit)", base * 1000, limit=1.0,
            note="biggest imports: " + ", ".join(f"{m} {ms:.0f} ms" for m, ms in imports),
        ))
    hello_imports = biggest_imports(hello)
    results.append(Result("3", "hello-world typer app", base * 1000, "ms", "", None, None, "-", None,
                          note="biggest imports: " + ", ".join(f"{m} {ms:.0f} ms" for m, ms in hello_imports)))
    remove_db(db)
    return results


def biggest_imports(argv: list[str], top: int = 5, runs: int = 3) -> list[tuple[str, float]]:
    """The top-level imports with the largest cumulative time (ms), from the median run."""
    if argv[0].endswith("inventory") and not argv[0].endswith(".py"):
        argv = [sys.executable, "-X", "importtime", *argv]  # the console script is Python
    else:
        argv = [argv[0], "-X", "importtime", *argv[1:]]
    tables = []
    for _ in range(runs):
        stderr = run(argv).stderr
        table: dict[str, float] = {}
        for line in stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            _, cumulative, name = line[len("import time:"):].split("|")
            if not name.startswith("  "):  # top level: imported by the program itself
                table[name.strip()] = int(cumulative) / 1000
        tables.append(table)
    tables.sort(key=lambda t: sum(t.values()))
    chosen = tables[len(tables) // 2]
    return sorted(chosen.items(), key=lambda item: -item[1])[:top]
