"""CPU instructions per goal-6 command, counted by valgrind: a figure the machine's noise leaves alone.

    python benchmarks/scripts/instructions_per_command.py [N]

Runs the first N and the first 2N commands of goal 6's plan in process, with
``synchronous=OFF`` (the fsync is the same for every writer and is not
counted), each under ``valgrind --tool=callgrind``, and prints the difference
divided by N: start-up and imports cancel out. Takes about 20 s for N = 1,000.
Use it to compare two revisions of the write path; use `run.py --only
commands` for the goal itself. Needs valgrind.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent


def run_commands(count: int, db: str) -> None:
    """The child: ``count`` commands of goal 6's plan on a new database."""
    sys.path.insert(0, str(BENCHMARKS))
    from goal_commands import plan

    from inventory_cli.application.commands import AddStock, RemoveStock
    from inventory_cli.application.handlers import run_command
    from inventory_cli.storage.sqlite import open_store

    kinds = {"add": AddStock, "remove": RemoveStock}
    store = open_store(db, create=True)
    store.conn.execute("PRAGMA synchronous = OFF")
    for op, product, quantity in plan(count):
        run_command(store, kinds[op]("main", product, quantity))
    store.close()


def instructions(count: int, folder: str) -> int:
    db = os.path.join(folder, f"commands-{count}.db")
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, __file__, "--child", str(count), db],
        capture_output=True, text=True, check=True,
    )
    return int(re.search(r"Collected : (\d+)", result.stderr).group(1))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        run_commands(int(sys.argv[2]), sys.argv[3])
        return
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    with tempfile.TemporaryDirectory() as folder:
        once, twice = instructions(count, folder), instructions(2 * count, folder)
    print(f"{(twice - once) / count:,.0f} instructions per command (commands {count + 1:,}-{2 * count:,})")


if __name__ == "__main__":
    main()
