"""A connection lost mid-command (the backend terminated, the network cut): a query runs
again once on a new connection and answers as if nothing happened, an export goes on
after its last line, a write is retried with its idempotency key and applied once; a
server that stays away exits 75 saying so."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from conftest import run_inventory, spawn_inventory
from pg_fixtures import PgSchema, admin_connection, pg_schema  # noqa: F401  (fixtures)
from pg_proxy import Proxy


def _fill(schema: PgSchema) -> None:
    for argv in (("add", "A", "5"), ("add", "B", "2", "--store", "north"), ("remove", "A", "1"),
                 ("reserve", "A", "1", "--customer", "ann", "--id", "R1")):
        assert run_inventory(schema.url, *argv).returncode == 0


@contextmanager
def _tables_locked(schema: PgSchema, *tables: str) -> Iterator[int]:
    """Another session holds the tables (as a migration would): readers wait. Yields its pid."""
    with admin_connection() as holder:
        holder.execute(f'SET search_path TO "{schema.name}"')
        holder.execute("BEGIN")
        holder.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
        try:
            yield holder.info.backend_pid
        finally:
            holder.execute("COMMIT")


@contextmanager
def _stream_locked(schema: PgSchema, store: str, product: str) -> Iterator[int]:
    """Another counter, mid-command on that stream: writers of it wait. Yields its pid."""
    from inventory_cli.storage.postgresql.schema import STREAM_LOCK_SQL

    with admin_connection() as holder:
        holder.execute(f'SET search_path TO "{schema.name}"')
        holder.execute("BEGIN")
        holder.execute(STREAM_LOCK_SQL, (store, product))
        try:
            yield holder.info.backend_pid
        finally:
            holder.execute("COMMIT")


def _waiting_behind(holder: int, *, besides: tuple[int, ...] = ()) -> int:
    """The pid of a session waiting for one of ``holder``'s locks (not one of ``besides``)."""
    deadline = time.monotonic() + 30
    with admin_connection() as conn:
        while time.monotonic() < deadline:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (holder,)
            ).fetchall()
            waiting = [pid for pid, in rows if pid not in besides]
            if waiting:
                return waiting[0]
            time.sleep(0.02)
    pytest.fail("nobody came to wait for the lock")


def _terminate(pid: int) -> None:
    with admin_connection() as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


@pytest.mark.parametrize("argv", [
    ("stock", "--all-stores", "--json"),
    ("reservations", "--all-stores", "--json"),
    ("verify", "--json"),
    ("info", "--json"),
    ("export",),
    ("history", "A", "--json"),
])
def test_a_query_whose_backend_is_terminated_runs_again_on_a_new_connection(pg_schema: PgSchema, argv) -> None:
    _fill(pg_schema)
    expected = run_inventory(pg_schema.url, *argv)
    assert expected.returncode == 0 and expected.stdout
    with _tables_locked(pg_schema, "streams", "events", "stock", "reservations") as holder:
        reader = spawn_inventory(pg_schema.url, *argv)
        first = _waiting_behind(holder)
        _terminate(first)
        _waiting_behind(holder, besides=(first,))  # it came back, on a connection of its own
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert out == expected.stdout and err == ""


def test_an_export_cut_off_mid_stream_goes_on_after_its_last_line(pg_schema: PgSchema, tmp_path) -> None:
    source = tmp_path / "rows.ndjson"
    source.write_text("".join(
        json.dumps({"op": "add", "product": f"P{i % 40}", "quantity": 1 + i % 3, "id": f"r{i}"}) + "\n"
        for i in range(12_000)
    ))
    assert run_inventory(pg_schema.url, "import", str(source)).returncode == 0
    expected = run_inventory(pg_schema.url, "export").stdout
    measuring = Proxy()
    assert run_inventory(measuring.url(pg_schema.name), "export").stdout == expected
    measuring.stop()
    # Cut once well past the first batch of rows the export fetches, well before the last.
    proxy = Proxy(cut_first_after=measuring.from_server[0] * 6 // 10)
    done = run_inventory(proxy.url(pg_schema.name), "export")
    proxy.stop()
    assert proxy.cut and proxy.connections == 2
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected  # every line once, in order: no gap, no repeat


def test_a_write_whose_backend_is_terminated_while_it_waits_is_applied_once(pg_schema: PgSchema) -> None:
    _fill(pg_schema)
    with _stream_locked(pg_schema, "main", "A") as holder:
        writer = spawn_inventory(pg_schema.url, "add", "A", "3", "--json")
        first = _waiting_behind(holder)
        _terminate(first)
        _waiting_behind(holder, besides=(first,))
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert json.loads(out)["on_hand"] == 7
    assert pg_schema.sql("SELECT count(*) FROM events WHERE type = 'StockAdded'") == [(3,)]


def test_a_query_whose_server_goes_away_and_stays_away_exits_75_saying_so(pg_schema: PgSchema) -> None:
    _fill(pg_schema)
    proxy = Proxy()
    with _tables_locked(pg_schema, "stock") as holder:
        reader = spawn_inventory(proxy.url(pg_schema.name), "stock", "--json",
                                 env={"INVENTORY_BUSY_TIMEOUT": "2"})
        _waiting_behind(holder)
        proxy.stop()
        out, err = reader.communicate(timeout=60)
    assert reader.returncode == 75, err
    assert out == ""
    assert "connection" in err and "lost" in err and "could not be reached" in err
    assert "Traceback" not in err and "unexpected error" not in err


def test_a_command_that_stops_mid_way_loses_its_locks_to_the_idle_timeout(pg_schema: PgSchema) -> None:
    """A counter whose process stops after its first round trip (suspended, say) does not
    hold the stream and the writers' lock for ever: the server ends its session."""
    from inventory_cli.application.commands import AddStock
    from inventory_cli.application.handlers import run_command
    from inventory_cli.storage.postgresql.store import open_store

    _fill(pg_schema)
    stalled = open_store(pg_schema.url, create=True)
    stalled.conn.execute("SET idle_in_transaction_session_timeout = 500")  # 60 s in the tool
    other = open_store(pg_schema.url, create=True, busy_timeout=5)
    try:
        with pytest.raises(Exception):
            with stalled.write([("main", "A")]):
                stalled.load_stream("main", "A")  # the stream is locked and loaded
                time.sleep(1.5)  # the process stops here
                stalled.head_position()
        # Held for ever, the locks would make this wait out its busy timeout and fail.
        assert run_command(other, AddStock("main", "A", 1)).line.on_hand == 5
    finally:
        stalled.close()
        other.close()
