"""Goal 6: single commands in-process, one transaction each, against `eventsourcing`.

5,000 commands over 500 products (rounds of adds over every product, every
fourth round a remove of one unit), each in its own transaction, on a fresh database in .work (the same
disk for all):

- the tool: `run_command(open_store(...), AddStock/RemoveStock(...))`;
- the `eventsourcing` library with its SQLite persistence: a plain aggregate
  class with one event per command; load the aggregate, trigger the event,
  save (the first command of a product creates the aggregate with its first
  quantity, which is one event too);
- for reference, plain sqlite3: one INSERT per BEGIN IMMEDIATE … COMMIT.

All three use WAL with synchronous=FULL (SQLite's default, which eventsourcing
keeps), so each commit waits for one fsync.
"""

from __future__ import annotations

import time

from common import SCRIPTS, WORK, Result, info_result, interleaved, median, ratio_result, remove_db, say

PRODUCTS = 500
CPU: dict[str, list[float]] = {}  # CPU seconds per run: what is left once fsync waits are taken out


def plan(n: int) -> list[tuple[str, str, int]]:
    """(op, product, quantity) for n commands: rounds over the products, every fourth round removes one."""
    commands = []
    for i in range(n):
        removing = (i // PRODUCTS) % 4 == 3
        commands.append(("remove" if removing else "add", f"P-{i % PRODUCTS:04d}", 1 if removing else 5))
    return commands


def run_tool(commands, db) -> float:
    from inventory_cli.application.commands import AddStock, RemoveStock
    from inventory_cli.application.handlers import run_command
    from inventory_cli.storage.sqlite import open_store

    remove_db(db)
    store = open_store(str(db), create=True)
    kinds = {"add": AddStock, "remove": RemoveStock}
    started, cpu = time.perf_counter(), time.process_time()
    for op, product, quantity in commands:
        run_command(store, kinds[op]("main", product, quantity))
    seconds = time.perf_counter() - started
    CPU.setdefault("tool", []).append(time.process_time() - cpu)
    store.close()
    return seconds


def _stock_aggregate():
    """The eventsourcing aggregate that the PostgreSQL benchmark's writers use too."""
    import sys

    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    from es_stock import Stock

    return Stock


def run_eventsourcing(commands, db) -> float:
    from eventsourcing.application import Application

    Stock = _stock_aggregate()
    remove_db(db)
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)})
    seen: set[str] = set()
    started, cpu = time.perf_counter(), time.process_time()
    for op, product, quantity in commands:
        if product not in seen:
            seen.add(product)
            aggregate = Stock(product, quantity)
        else:
            aggregate = app.repository.get(Stock.create_id(product))
            getattr(aggregate, op)(quantity)
        app.save(aggregate)
    seconds = time.perf_counter() - started
    CPU.setdefault("eventsourcing", []).append(time.process_time() - cpu)
    app.close()
    return seconds


def run_plain(commands, db) -> float:
    import sqlite3

    remove_db(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE events (position INTEGER PRIMARY KEY, stream TEXT, version INTEGER,"
                 " data TEXT, UNIQUE (stream, version))")
    versions: dict[str, int] = {}
    started = time.perf_counter()
    for op, product, quantity in commands:
        version = versions[product] = versions.get(product, 0) + 1
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO events (stream, version, data) VALUES (?, ?, ?)",
                     (product, version, f'{{"op":"{op}","quantity":{quantity}}}'))
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def bench(quick: bool) -> list[Result]:
    n = 1_000 if quick else 5_000
    # Single repetitions of one pair scatter by ±10 % with the shared disk (1.79-2.37 within one
    # run of five), more than the goal's margin: eleven give a median that noise moves less.
    reps = 3 if quick else 11
    commands = plan(n)
    try:
        import eventsourcing  # noqa: F401
    except ImportError:
        say("goal 6: eventsourcing is not installed: pip install -e '.[bench]'")
        have_es = False
    else:
        have_es = True
    cases = {
        "tool": lambda: run_tool(commands, WORK / "cmd-tool.db"),
        "plain": lambda: run_plain(commands, WORK / "cmd-plain.db"),
    }
    if have_es:
        cases["eventsourcing"] = lambda: run_eventsourcing(commands, WORK / "cmd-es.db")
    say(f"goal 6: {n:,} single-command transactions, {reps} interleaved repetitions")
    samples = interleaved(cases, reps)
    rate = {name: n / median(values) for name, values in samples.items()}
    for name in ("tool", "plain", "eventsourcing"):
        remove_db(WORK / f"cmd-{name.replace('eventsourcing', 'es')}.db")
    what = f"{n:,} commands over {PRODUCTS} products, in-process"
    results = []
    cpu = {name: median(values) / n * 1000 for name, values in CPU.items()}  # ms per command
    CPU.clear()
    if have_es:
        results.append(ratio_result("6", what, rate["tool"], "cmd/s", "eventsourcing (SQLite)",
                                    rate["eventsourcing"], limit=2.0, higher_is_better=True,
                                    note=f"CPU per command (no fsync wait): tool {cpu['tool']:.3f} ms, "
                                         f"eventsourcing {cpu['eventsourcing']:.3f} ms; rates per repetition: "
                                         + "; ".join(f"{k} " + "/".join(f"{n / x:,.0f}" for x in v)
                                                     for k, v in samples.items())
                                         + "; tool/eventsourcing per repetition (neighbours in time): "
                                         + "/".join(f"{es / tool:.2f}" for tool, es
                                                    in zip(samples["tool"], samples["eventsourcing"]))))
    else:
        results.append(info_result("6", what, rate["tool"], "cmd/s", note="eventsourcing not installed"))
    results.append(info_result("6", "  reference: plain sqlite3 one-row commits", rate["plain"], "commit/s",
                               note=f"the tool reaches {rate['tool'] / rate['plain']:.0%} of it"))
    return results
