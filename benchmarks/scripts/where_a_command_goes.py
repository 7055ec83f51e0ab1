"""Where a goal-6 command's time goes: waiting for the disk, the kernel, and the process's own CPU.

    python benchmarks/scripts/where_a_command_goes.py [REPS]

1. Goal 6's three writers (the tool, eventsourcing, plain sqlite3), 5,000
   commands each with ``synchronous=FULL``, REPS interleaved rounds (default 3):
   per command, the wall time split into user CPU, system CPU and the rest
   (off the CPU: waiting for the fsync).
2. The tool alone with ``synchronous=OFF`` (no fsync), its CPU per command
   when nothing runs between commands, when the process sleeps 150 µs
   between them (as it does in each fsync), and when it spins 150 µs instead.
   The difference between the last two is what waking up costs the next
   command.

Takes about 25 s. Needs the ``bench`` extra (eventsourcing).
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCHMARKS))

from common import WORK, remove_db
from goal_commands import plan, run_eventsourcing, run_plain, run_tool

COMMANDS = 5_000
PAUSE = 150e-6  # seconds, about one fsync on this disk


def split(writer, commands, db: Path) -> tuple[float, float, float]:
    """(wall, user, system) microseconds per command of one run of ``writer``."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    writer(commands, db)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    per = 1e6 / len(commands)
    return wall * per, (after.ru_utime - before.ru_utime) * per, (after.ru_stime - before.ru_stime) * per


def tool_cpu(commands, pause: str) -> float:
    """The tool's thread CPU per command (µs) with synchronous=OFF, with ``pause`` between commands."""
    from inventory_cli.application.commands import AddStock, RemoveStock
    from inventory_cli.application.handlers import run_command
    from inventory_cli.storage.sqlite import open_store

    db = WORK / "where-off.db"
    remove_db(db)
    store = open_store(str(db), create=True)
    store.conn.execute("PRAGMA synchronous = OFF")
    kinds = {"add": AddStock, "remove": RemoveStock}
    inside = 0.0
    for op, product, quantity in commands:
        if pause == "sleep":
            time.sleep(PAUSE)
        elif pause == "spin":
            until = time.perf_counter() + PAUSE
            while time.perf_counter() < until:
                pass
        started = time.thread_time()
        run_command(store, kinds[op]("main", product, quantity))
        inside += time.thread_time() - started
    store.close()
    remove_db(db)
    return inside / len(commands) * 1e6


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    WORK.mkdir(exist_ok=True)
    commands = plan(COMMANDS)
    writers = {"tool": run_tool, "eventsourcing": run_eventsourcing, "plain sqlite3": run_plain}
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in writers}
    for _ in range(reps):
        for name, writer in writers.items():
            db = WORK / "where-full.db"
            figures[name].append(split(writer, commands, db))
            remove_db(db)
    print(f"synchronous=FULL, {COMMANDS:,} commands, medians of {reps} interleaved runs, µs per command:")
    print(f"{'':15} {'wall':>6} {'user':>6} {'system':>7} {'off CPU':>8}")
    for name, runs in figures.items():
        wall, user, system = (statistics.median(run[i] for run in runs) for i in range(3))
        print(f"{name:15} {wall:6.0f} {user:6.0f} {system:7.0f} {wall - user - system:8.0f}")
    print(f"\nthe tool with synchronous=OFF, CPU per command (µs), {reps} runs each:")
    for pause in ("none", "sleep", "spin"):
        runs = [tool_cpu(commands, pause) for _ in range(reps)]
        label = {"none": "back to back", "sleep": "150 µs sleep between", "spin": "150 µs spin between"}[pause]
        print(f"  {label:22} " + " ".join(f"{x:5.0f}" for x in runs))


if __name__ == "__main__":
    main()
