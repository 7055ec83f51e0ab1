"""The shared log on PostgreSQL (issue 16), against the server at INVENTORY_BENCH_PG.

1. `import` of 200,000 add rows with ids, whole process, into a fresh schema,
   against scripts/plain_pg_copy.py (json.loads and COPY of one event row per
   line into a table with UNIQUE(stream_id, version) and a unique key, one
   transaction). Goal: at most 2x. The same import into SQLite is printed
   beside it: the client's share, which no server work can undercut.
2. 8 writer processes, 500 in-process commands each over 200 shared products
   (scripts/pg_writers.py): total commands per second, against the
   `eventsourcing` library's PostgreSQL persistence doing the same work (goal:
   at least 2x), with the ceilings beside them (one-row INSERT transactions from
   8 clients; the same taking one advisory lock last, held to COMMIT).
3. `inventory stock SKU` on PostgreSQL against the same command on SQLite, whole
   processes. Goal: at most 1.5x.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

from common import (
    SCRIPTS,
    WORK,
    Result,
    child_env,
    info_result,
    interleaved,
    inventory_argv,
    median,
    ratio_result,
    remove_db,
    run,
    say,
)

SERVER = os.environ.get("INVENTORY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(sql)


def _fresh_schema() -> str:
    name = "bench_" + uuid.uuid4().hex[:10]
    _admin(f'CREATE SCHEMA "{name}"')
    return name


def _drop(name: str) -> None:
    _admin(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _url(schema: str) -> str:
    return f"{SERVER}?options=-csearch_path%3D{schema}"


def _adds_with_ids(rows: int, products: int = 2000):
    path = WORK / f"adds-ids-{rows}-{products}.ndjson"
    if not path.exists():
        with path.open("w") as out:
            for i in range(rows):
                out.write(f'{{"op":"add","product":"P-{i % products:05d}","quantity":{1 + i % 50},"id":"a{i}"}}\n')
    return path


def _import(quick: bool) -> list[Result]:
    rows = 20_000 if quick else 200_000
    reps = 2 if quick else 5
    source = _adds_with_ids(rows)

    def tool() -> float:
        schema = _fresh_schema()
        try:
            return run([*inventory_argv(), "--db", _url(schema), "import", str(source), "-q"]).seconds
        finally:
            _drop(schema)

    def plain() -> float:
        schema = _fresh_schema()
        try:
            return run([sys.executable, str(SCRIPTS / "plain_pg_copy.py"), str(source), _url(schema)]).seconds
        finally:
            _drop(schema)

    db = WORK / "pg-import.db"

    def sqlite() -> float:  # the same import into a file: the decisions without a server
        remove_db(db)
        try:
            return run([*inventory_argv(), "--db", str(db), "import", str(source), "-q"]).seconds
        finally:
            remove_db(db)

    say(f"postgresql 1: import {rows:,} add rows with ids, {reps} interleaved repetitions")
    samples = interleaved({"tool": tool, "plain": plain, "sqlite": sqlite}, reps)
    t, p, s = (median(samples[name]) for name in ("tool", "plain", "sqlite"))
    return [ratio_result("PG1", f"import {rows:,} adds with ids into PostgreSQL", t, "s",
                         "plain psycopg COPY script", p, limit=2.0,
                         note=f"{rows / t:,.0f} rows/s vs {rows / p:,.0f}; samples tool "
                              + ", ".join(f"{x:.2f}" for x in samples["tool"]) + "; COPY "
                              + ", ".join(f"{x:.2f}" for x in samples["plain"])),
            info_result("PG1", "  the same import into SQLite (no server)", s, "s",
                        "plain psycopg COPY script", p,
                        note=f"PostgreSQL / SQLite {t / s:.2f}")]


def _writers(mode: str, target: str, processes: int, n: int, products: int) -> float:
    """Start the writers, let them connect, then time them from 'go' to the last one done."""
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SCRIPTS), env.get("PYTHONPATH")]))
    children = [
        subprocess.Popen([sys.executable, str(SCRIPTS / "pg_writers.py"), mode, target, str(me), str(n),
                          str(products)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        for me in range(processes)
    ]
    for child in children:
        assert child.stdout.readline().strip() == "ready", f"{mode} writer failed to start"
    started = time.perf_counter()
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"a {mode} writer exited {child.returncode}")
    return time.perf_counter() - started


def _seed(mode: str, schema: str, products: int) -> None:
    """Every product exists with stock before the timed commands, for both contenders."""
    if mode == "tool":
        from inventory_cli.application.commands import AddStock
        from inventory_cli.application.handlers import run_command
        from inventory_cli.storage.postgresql.store import open_store

        store = open_store(_url(schema), create=True)
        for p in range(products):
            run_command(store, AddStock("main", f"P-{p:04d}", 100))
        store.close()
    elif mode == "eventsourcing":
        sys.path[:0] = [str(SCRIPTS)]
        from es_stock import Stock
        from eventsourcing.application import Application
        from pg_writers import es_env

        app = Application(env=es_env(schema, create_table=True))
        app.save(*[Stock(f"P-{p:04d}", 100) for p in range(products)])
        app.close()
    else:  # the ceilings
        _admin(f'CREATE TABLE "{schema}".ceiling_events (position bigserial PRIMARY KEY, stream text, data text)')


def _commands(quick: bool) -> list[Result]:
    processes, n, products = (4, 100, 200) if quick else (8, 500, 200)
    reps = 1 if quick else 3
    try:
        import eventsourcing.postgres  # noqa: F401  (its extra `postgres` brings psycopg-pool)
        have_es = True
    except ImportError as error:
        say(f"postgresql 2: eventsourcing's PostgreSQL persistence is not importable ({error}); "
            "pip install -e '.[bench]'")
        have_es = False

    def case(mode: str):
        def measure() -> float:
            schema = _fresh_schema()
            try:
                _seed(mode, schema, products)
                target = schema if mode == "eventsourcing" else _url(schema)
                return _writers(mode, target, processes, n, products)
            finally:
                _drop(schema)
        return measure

    modes = ["tool", "ceiling", "locked"] + (["eventsourcing"] if have_es else [])
    say(f"postgresql 2: {processes} writers x {n} commands over {products} products, {reps} repetitions")
    samples = interleaved({mode: case(mode) for mode in modes}, reps, warmup=False)
    total = processes * n
    rate = {mode: total / median(values) for mode, values in samples.items()}
    what = f"{processes} writers x {n} commands, {products} shared products"
    results = []
    if have_es:
        per_rep = "; ".join(f"{total / t:.0f}/{total / e:.0f}"
                            for t, e in zip(samples["tool"], samples["eventsourcing"]))
        results.append(ratio_result("PG2", what, rate["tool"], "cmd/s", "eventsourcing (PostgreSQL)",
                                    rate["eventsourcing"], limit=2.0, higher_is_better=True,
                                    note=f"tool/eventsourcing per repetition: {per_rep}"))
    else:
        results.append(info_result("PG2", what, rate["tool"], "cmd/s", note="eventsourcing.postgres missing"))
    results.append(info_result("PG2", "  ceiling: one-row INSERT transactions, same clients", rate["ceiling"],
                               "commit/s", note=f"the tool reaches {rate['tool'] / rate['ceiling']:.0%} of it"))
    results.append(info_result("PG2", "  the same, each taking one advisory lock last (held to COMMIT)",
                               rate["locked"], "commit/s",
                               note=f"the tool reaches {rate['tool'] / rate['locked']:.0%} of it"))
    return results


def _stock(quick: bool) -> list[Result]:
    reps = 5 if quick else 15
    schema = _fresh_schema()
    db = WORK / "pg-stock.db"
    remove_db(db)
    try:
        for location in (str(db), _url(schema)):
            run([*inventory_argv(), "--db", location, "add", "P-00042", "5"])
        samples = interleaved({
            "postgresql": lambda: run([*inventory_argv(), "--db", _url(schema), "stock", "P-00042"]).seconds,
            "sqlite": lambda: run([*inventory_argv(), "--db", str(db), "stock", "P-00042"]).seconds,
        }, reps)
    finally:
        _drop(schema)
        remove_db(db)
    return [ratio_result("PG3", "stock P-00042 on PostgreSQL (whole process)", median(samples["postgresql"]),
                         "s", "the same on SQLite", median(samples["sqlite"]), limit=1.5,
                         note="PostgreSQL/SQLite per repetition: "
                              + ", ".join(f"{p / q:.2f}" for p, q in zip(samples["postgresql"], samples["sqlite"])))]


def bench(quick: bool) -> list[Result]:
    results: list[Result] = []
    for figure in (_import, _commands, _stock):  # one failing figure must not hide the others
        try:
            results += figure(quick)
        except Exception as error:  # noqa: BLE001
            say(f"postgresql {figure.__name__}: FAILED: {error}")
            results.append(Result("?", f"postgresql{figure.__name__}: failed", float("nan"), "", "", None,
                                  None, "-", False, note=str(error)[:300]))
    return results
