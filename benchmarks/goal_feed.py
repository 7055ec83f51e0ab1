"""The feed: how soon a follower shows a committed event, and what `metrics` costs.

- Latency, on SQLite and on PostgreSQL (a fresh schema on the server at
  INVENTORY_BENCH_PG, dropped after): a follower (`export --follow`, its stdout
  read by this process) runs while `add` commands run one after another; for
  each, the time from the command's exit (as this process sees it) to its line
  arriving. Median and 99th percentile over 200 commands. A line can arrive
  before the writer's exit is seen (the commit comes before the process ends),
  so a figure may be below 0. On SQLite the follower polls the file's change
  counter; on PostgreSQL the append's NOTIFY wakes it.
- `metrics` against `stock` on the 1,000,000-event log (whole processes, output
  to a pipe, interleaved, medians): metrics reads projections and the
  event_counts tally, so it should cost about what a store's stock table costs.
  Its first run on a log counts every event once to start the tally: timed
  apart, for information. On PostgreSQL the log is the SQLite one, exported and
  restored (`export | restore -`, COPY) into a fresh schema, then analyzed as
  autovacuum would; the schema is dropped after.
"""

from __future__ import annotations

import contextlib
import queue
import random
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator

from common import (
    WORK,
    Result,
    child_env,
    info_result,
    interleaved,
    inventory_argv,
    log_db,
    median,
    ratio_result,
    remove_db,
    run,
    say,
)
from goal_postgresql import _admin, _drop, _fresh_schema, _url


def bench(quick: bool) -> list[Result]:
    commands = 50 if quick else 200
    rows = 200_000 if quick else 1_000_000
    return (_latency_sqlite(commands) + _unless_failed(_latency_postgresql, commands)
            + _metrics_against_stock(quick, rows) + _unless_failed(_metrics_against_stock_postgresql, quick, rows))


def _unless_failed(measure, *args) -> list[Result]:
    """The PostgreSQL half: a server that does not answer must not cost the SQLite figures."""
    try:
        return measure(*args)
    except Exception as error:
        say(f"feed: PostgreSQL: FAILED: {error}")
        return [Result("?", f"feed: {measure.__name__}: failed", float("nan"), "", "", None, None, "-", False,
                       note=str(error)[:300])]


def _latency_sqlite(commands: int) -> list[Result]:
    db = WORK / "feed-latency.db"
    remove_db(db)
    try:
        return _latency("SQLite", str(db), commands)
    finally:
        remove_db(db)


def _latency_postgresql(commands: int) -> list[Result]:
    schema = _fresh_schema()
    try:
        return _latency("PostgreSQL", _url(schema), commands)
    finally:
        _drop(schema)


def _latency(backend: str, location: str, commands: int) -> list[Result]:
    tool = [*inventory_argv(), "--db", location]
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
    say(f"feed: {backend}: latency from an `add`'s exit to its line at a follower, {commands} commands")
    delays = []
    try:
        for number in range(commands):
            run([*tool, "add", f"P-{number % 20}", "1"])
            exited = time.perf_counter()
            position, arrived = arrivals.get(timeout=60)
            assert position == number + 2, (position, number)
            delays.append((arrived - exited) * 1000)
        from_commit = _from_commit(location, commands, arrivals, first=commands + 2)
    finally:
        follower.terminate()
        follower.wait(timeout=60)
    return [
        ratio_result("feed", f"{backend}: follower latency, median of {commands}", median(delays), "ms",
                     "the contract's 1 s", 1000.0, limit=1.0, note=_spread(delays)),
        ratio_result("feed", f"{backend}: follower latency, 99th percentile of {commands}", _p99(delays), "ms",
                     "the contract's 1 s", 1000.0, limit=1.0),
        info_result("feed (info)", f"{backend}: commit -> line (in-process add), median of {commands}",
                    median(from_commit), "ms", note=_spread(from_commit)),
        info_result("feed (info)", f"{backend}: commit -> line, 99th percentile of {commands}",
                    _p99(from_commit), "ms"),
    ]


def _from_commit(location: str, commands: int, arrivals: queue.Queue, first: int) -> list[float]:
    """Milliseconds from an in-process append's return (its commit done) to its line.

    A whole `add` ends some milliseconds after its commit (closing, the interpreter's
    exit), which the figure from the exit leaves out; this one does not. A random pause
    before each append keeps it from falling always at the same point of a poll.
    """
    from inventory_cli.application.commands import AddStock
    from inventory_cli.application.handlers import run_command

    if location.startswith("postgresql://"):
        from inventory_cli.storage.postgresql.store import open_store
    else:
        from inventory_cli.storage.sqlite import open_store
    pause = random.Random(17)
    store = open_store(location, create=False)
    delays = []
    try:
        for number in range(commands):
            time.sleep(pause.uniform(0, 0.1))
            run_command(store, AddStock("main", f"P-{number % 20}", 1), "bench")
            committed = time.perf_counter()
            position, arrived = arrivals.get(timeout=60)
            assert position == first + number, (position, number)
            delays.append((arrived - committed) * 1000)
    finally:
        store.close()
    return delays


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


def _spread(values: list[float]) -> str:
    return f"min {min(values):.1f} ms, max {max(values):.1f} ms"


def _metrics_against_stock(quick: bool, rows: int) -> list[Result]:
    db = log_db(rows)
    first = _first_metrics(db)
    results = _compare(quick, "SQLite", str(db), rows)
    return results + [info_result("feed (info)", f"SQLite: first metrics on the log: tallies {rows:,} events",
                                  first * 1000, "ms", "stock", results[0].baseline)]


def _metrics_against_stock_postgresql(quick: bool, rows: int) -> list[Result]:
    with _restored_log(rows) as url:
        first = run([*inventory_argv(), "--db", url, "metrics"]).seconds  # the tally is empty after a restore
        results = _compare(quick, "PostgreSQL", url, rows)
    return results + [info_result("feed (info)", f"PostgreSQL: first metrics on the log: tallies {rows:,} events",
                                  first * 1000, "ms", "stock", results[0].baseline)]


def _compare(quick: bool, backend: str, location: str, rows: int) -> list[Result]:
    reps = 7 if quick else 15
    tool = [*inventory_argv(), "--db", location]
    cases = {
        "stock": lambda: run([*tool, "stock"]).seconds,
        "stock --all-stores --json": lambda: run([*tool, "stock", "--all-stores", "--json"]).seconds,
        "metrics": lambda: run([*tool, "metrics"]).seconds,
    }
    say(f"feed: {backend}: metrics against stock on the {rows:,}-event log, {reps} interleaved repetitions")
    samples = interleaved(cases, reps)
    base = median(samples["stock"]) * 1000
    return [
        ratio_result("feed", f"{backend}: metrics ({rows:,} events)", median(samples["metrics"]) * 1000, "ms",
                     "stock (store main, table)", base, limit=1.2),
        info_result("feed (info)", f"{backend}: stock --all-stores --json ({rows:,} events)",
                    median(samples["stock --all-stores --json"]) * 1000, "ms", "stock", base),
    ]


@contextlib.contextmanager
def _restored_log(rows: int) -> Iterator[str]:
    """A fresh schema holding the generated log (exported from SQLite, restored by COPY), dropped after."""
    db = log_db(rows)
    schema = _fresh_schema()
    url = _url(schema)
    try:
        say(f"  restoring the {rows:,}-event log into schema {schema} (export | restore -)…")
        started = time.perf_counter()
        env = child_env()
        export = subprocess.Popen([*inventory_argv(), "--db", str(db), "export"], stdout=subprocess.PIPE, env=env)
        restore = subprocess.run([*inventory_argv(), "--db", url, "restore", "-"], stdin=export.stdout,
                                 stdout=subprocess.DEVNULL, env=env)
        assert export.stdout is not None
        export.stdout.close()
        if export.wait() != 0 or restore.returncode != 0:
            raise RuntimeError(f"export | restore failed: {export.returncode}, {restore.returncode}")
        for table in ("events", "streams", "stock", "reservations", "transfers"):
            _admin(f'VACUUM ANALYZE "{schema}".{table}')
        say(f"  restored and analyzed in {time.perf_counter() - started:.1f} s")
        yield url
    finally:
        _drop(schema)


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
