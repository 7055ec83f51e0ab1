"""Imports over many streams on PostgreSQL: the locks an import holds do not grow with the
number of streams it touches (the server's lock table is finite: max_locks_per_transaction
× max_connections), and counters writing alongside still never oversell or lose an add."""

from __future__ import annotations

import json
import subprocess
import time

from conftest import inventory_argv, process_env, run_inventory, spawn_inventory
from inventory_cli.application.importer import SourceRow, run_import
from inventory_cli.storage.postgresql.store import open_store
from pg_fixtures import PgSchema, admin_connection, pg_schema  # noqa: F401  (fixtures)
from test_postgresql_processes import FOLLOWER, SEQUENCE, _python


def _lock_table_slots() -> int:
    """How many locks the server's shared lock table is sized for."""
    with admin_connection() as conn:
        per, clients, prepared = (
            int(conn.execute(f"SHOW {name}").fetchone()[0])
            for name in ("max_locks_per_transaction", "max_connections", "max_prepared_transactions")
        )
    return per * (clients + prepared)


def _rows(prefix: str, count: int, *, shared_every: int = 0) -> str:
    lines = []
    for i in range(count):
        lines.append({"op": "add", "product": f"{prefix}{i}", "quantity": 1, "id": f"{prefix}-{i}"})
        if shared_every and i % shared_every == 0:
            lines.append({"op": "add", "product": "shared", "quantity": 1, "id": f"{prefix}-shared-{i}"})
    return "".join(json.dumps(line) + "\n" for line in lines)


def test_an_import_over_more_streams_than_the_lock_table_holds_is_written_whole(pg_schema: PgSchema, tmp_path) -> None:
    streams = max(20_000, 3 * _lock_table_slots())
    source = tmp_path / "many.ndjson"
    source.write_text(_rows("P", streams))
    done = run_inventory(pg_schema.url, "import", str(source), "--json", timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["applied"] == streams
    assert pg_schema.sql("SELECT count(*), min(position), max(position) FROM events") == [(streams, 1, streams)]
    assert pg_schema.sql("SELECT count(*), sum(on_hand) FROM stock") == [(streams, streams)]


def test_the_advisory_locks_an_import_holds_stay_few_however_many_streams(pg_schema: PgSchema) -> None:
    store = open_store(pg_schema.url, create=True)
    backend = store.conn.info.backend_pid
    held: list[int] = []

    def count_locks(_rows: int) -> None:  # called every 1,000 rows, inside the import's transaction
        with admin_connection() as conn:
            held.append(conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s", (backend,)
            ).fetchone()[0])

    rows = [SourceRow(i + 1, json.dumps({"op": "add", "product": f"P{i}", "quantity": 1})) for i in range(5000)]
    assert run_import(store, rows, default_store="main", on_rows=count_locks).applied == 5000
    store.close()
    assert len(held) == 5 and max(held) <= 2, held


def test_imports_and_counters_at_once_never_oversell_lose_an_add_or_skip_a_position(
    pg_schema: PgSchema, tmp_path
) -> None:
    assert run_inventory(pg_schema.url, "add", "scarce", "10").returncode == 0
    whole, batched = tmp_path / "whole.ndjson", tmp_path / "batched.ndjson"
    whole.write_text(_rows("W", 3000, shared_every=10))
    batched.write_text(_rows("B", 3000, shared_every=10))
    stop = tmp_path / "stop"
    follower = _python(FOLLOWER, pg_schema.url, str(stop))
    counters = []
    for _ in range(3):
        argv = []
        for _ in range(6):
            argv.append(["--db", pg_schema.url, "remove", "scarce", "1"])
            argv.append(["--db", pg_schema.url, "add", "shared", "1"])
        counters.append(_python(SEQUENCE, json.dumps(argv)))
    imports = [
        spawn_inventory(pg_schema.url, "import", str(whole), "--json"),
        spawn_inventory(pg_schema.url, "import", str(batched), "--batch-size", "500", "--json"),
    ]
    for importer in imports:
        out, err = importer.communicate(timeout=600)
        assert importer.returncode == 0, err
        assert json.loads(out)["applied"] == 3300
    results = [c.communicate(timeout=600) for c in counters]
    stop.write_text("stop")
    seen, follower_err = follower.communicate(timeout=300)
    assert follower.returncode == 0, follower_err

    codes = [code for out, _ in results for code in json.loads(out)]
    removals, adds = codes[0::2], codes[1::2]
    assert adds == [0] * 18
    assert removals.count(0) == 10 and removals.count(1) == 8  # each unit sold once, the rest refused
    stock = {line["product"]: line["on_hand"]
             for line in json.loads(run_inventory(pg_schema.url, "stock", "--json").stdout)}
    assert stock["scarce"] == 0 and stock["shared"] == 300 + 300 + 18
    total = 1 + 3300 + 3300 + 10 + 18
    assert pg_schema.sql("SELECT count(*), max(position) FROM events") == [(total, total)]
    assert json.loads(seen) == list(range(1, total + 1))
    assert run_inventory(pg_schema.url, "verify").returncode == 0


def test_a_counter_waiting_behind_an_import_batch_longer_than_the_busy_timeout_exits_75(pg_schema) -> None:
    from inventory_cli.storage.postgresql.schema import IMPORT_LOCK_SQL

    assert run_inventory(pg_schema.url, "add", "A", "1").returncode == 0
    with admin_connection() as holder:
        holder.execute(f'SET search_path TO "{pg_schema.name}"')
        with holder.transaction():
            holder.execute(f"SELECT {IMPORT_LOCK_SQL}")  # an import batch, mid-way
            done = run_inventory(pg_schema.url, "add", "B", "1", env={"INVENTORY_BUSY_TIMEOUT": "1"})
    assert done.returncode == 75 and "busy" in done.stderr
    assert pg_schema.sql("SELECT count(*) FROM events") == [(1,)]
    assert run_inventory(pg_schema.url, "add", "B", "1").returncode == 0


def _wait_reading_its_input(pid: int) -> None:
    """Until the process sleeps in read(0, …): connected to the server, waiting for its rows."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/syscall") as status:
            if status.read().startswith("0 0x0 "):
                return
        time.sleep(0.02)
    raise AssertionError("the import never came to read its input")


def test_an_import_waiting_for_its_first_row_holds_off_no_counter(pg_schema: PgSchema) -> None:
    assert run_inventory(pg_schema.url, "add", "A", "1").returncode == 0
    importer = subprocess.Popen(inventory_argv(pg_schema.url, "import", "-", "--json"), env=process_env(),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_reading_its_input(importer.pid)
        done = run_inventory(pg_schema.url, "add", "A", "1", env={"INVENTORY_BUSY_TIMEOUT": "2"})
        assert done.returncode == 0, done.stderr
        out, err = importer.communicate(_rows("P", 10), timeout=120)
    finally:
        importer.kill()
    assert importer.returncode == 0, err
    assert json.loads(out)["applied"] == 10
