"""Real processes: concurrent writers and a rebuild killed with SIGKILL."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from conftest import ANSI_ESCAPE, event_count, run_inventory, spawn_inventory
from inventory_cli.application.commands import (
    AddStock,
    CountStock,
    FulfillReservation,
    ReleaseReservation,
    RemoveStock,
    ReserveStock,
)
from inventory_cli.application.write_session import WriteSession
from inventory_cli.domain.errors import RuleViolation
from inventory_cli.storage.sqlite import open_store
from inventory_cli.timestamps import utc_now


def ok(completed):
    assert completed.returncode == 0, (completed.returncode, completed.stdout, completed.stderr)
    return completed


def test_the_console_script_runs_as_a_process(tmp_path):
    db = tmp_path / "inv.db"
    assert ok(run_inventory(db, "--version")).stdout.startswith("inventory ")
    line = json.loads(ok(run_inventory(db, "add", "SKU", "3", "--json")).stdout)
    assert line["on_hand"] == 3
    refused = run_inventory(db, "remove", "SKU", "9")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.strip() and "Traceback" not in refused.stderr
    table = ok(run_inventory(db, "stock")).stdout  # stdout is a pipe, not a terminal
    assert "SKU" in table and ANSI_ESCAPE not in table and table.isascii()


def test_each_process_leaves_the_database_file_whole(tmp_path):
    """Whatever a command ends with, its process closes the database on the way out:
    no -wal or -shm file is left beside it, so a copy of the file alone is complete."""
    db = tmp_path / "inv.db"
    rows = tmp_path / "rows.ndjson"
    rows.write_text('{"op": "add", "product": "SKU", "quantity": 1}\n{"op": "add", "product": "SKU"}\n')
    for args, code in [(("add", "SKU", "3"), 0), (("remove", "SKU", "9"), 1), (("stock", "SKU"), 0),
                       (("import", str(rows)), 65), (("history", "SKU", "--json"), 0)]:
        completed = run_inventory(db, *args)
        assert completed.returncode == code, (args, completed.stderr)
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("inv.db")] == ["inv.db"], args
    assert [line["on_hand"] for line in json.loads(run_inventory(db, "stock", "SKU", "--json").stdout)] == [3]


def test_concurrent_reservations_never_oversell(tmp_path):
    db = tmp_path / "inv.db"
    ok(run_inventory(db, "add", "SKU", "3"))
    workers = [spawn_inventory(db, "reserve", "SKU", "1", "--customer", f"c{n}", "--json")
               for n in range(8)]
    outcomes = [(w.wait(timeout=120), *w.communicate()) for w in workers]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 0, 0, 1, 1, 1, 1, 1], outcomes
    winners = [json.loads(out) for code, out, _ in outcomes if code == 0]
    assert len({w["reservation_id"] for w in winners}) == 3
    for code, out, err in outcomes:
        if code == 1:
            assert out == "" and err.strip()
    [line] = json.loads(ok(run_inventory(db, "stock", "--json")).stdout)
    assert (line["on_hand"], line["reserved"], line["available"], line["version"]) == (3, 3, 0, 4)
    assert event_count(db) == 4
    check = ok(run_inventory(db, "rebuild-projections", "--check", "--json"))
    assert json.loads(check.stdout)["ok"] is True


def test_the_same_reservation_id_from_several_processes_is_one_reservation(tmp_path):
    db = tmp_path / "inv.db"
    ok(run_inventory(db, "add", "SKU", "5"))
    workers = [spawn_inventory(db, "reserve", "SKU", "2", "--customer", "c", "--id", "RID", "--json")
               for _ in range(4)]
    outcomes = [(w.wait(timeout=120), *w.communicate()) for w in workers]
    assert [code for code, _, _ in outcomes] == [0] * 4, outcomes
    assert len({out for _, out, _ in outcomes}) == 1  # every process got the same answer
    [line] = json.loads(ok(run_inventory(db, "stock", "--json")).stdout)
    assert (line["reserved"], line["available"]) == (2, 3)
    assert event_count(db) == 2


def test_concurrent_writers_on_a_database_that_does_not_exist_yet(tmp_path):
    db = tmp_path / "new" / "inv.db"
    workers = [spawn_inventory(db, "add", "SKU", "1", "--store", f"s{n % 2}") for n in range(6)]
    outcomes = [(w.wait(timeout=120), *w.communicate()) for w in workers]
    assert [code for code, _, _ in outcomes] == [0] * 6, outcomes
    lines = json.loads(ok(run_inventory(db, "stock", "--all-stores", "--json")).stdout)
    assert [(l["store"], l["on_hand"], l["version"]) for l in lines] == [("s0", 3, 3), ("s1", 3, 3)]
    assert event_count(db) == 6
    ok(run_inventory(db, "rebuild-projections", "--check"))


def test_a_writer_gives_up_on_a_busy_database_with_exit_75_while_readers_answer(invoke, tmp_path):
    db = tmp_path / "inv.db"
    assert invoke("add", "SKU", "3", db=db).exit_code == 0
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        quick = {"INVENTORY_BUSY_TIMEOUT": "0.2"}
        for command in (("add", "SKU", "1"), ("reserve", "SKU", "1", "--customer", "c"),
                        ("rebuild-projections",)):
            result = invoke(*command, db=db, env=quick)
            assert result.exit_code == 75, (command, result.exit_code, result.stderr)
            assert result.stdout == "" and result.stderr.strip()
        assert [l["on_hand"] for l in json.loads(invoke("stock", db=db, env=quick).stdout)] == [3]
        assert invoke("rebuild-projections", "--check", db=db, env=quick).exit_code == 0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert event_count(db) == 1
    assert invoke("add", "SKU", "1", db=db).exit_code == 0


def build_big_log(path: Path, events: int, seed: int) -> None:
    """~``events`` events over many streams, in one WriteSession and one transaction."""
    rng = random.Random(seed)
    streams = [(store, f"P{n:03d}") for store in ("main", "north") for n in range(60)]
    open_reservations: dict[tuple[str, str], list[str]] = {s: [] for s in streams}
    store = open_store(str(path), create=True)
    try:
        with store.write():
            session = WriteSession(store, utc_now())
            written = 0
            while written < events:
                s = rng.choice(streams)
                roll = rng.random()
                if roll < 0.4:
                    command = AddStock(*s, rng.randint(1, 20), key=f"K{written}" if roll < 0.1 else None)
                elif roll < 0.55:
                    command = RemoveStock(*s, rng.randint(1, 3))
                elif roll < 0.75:
                    rid = f"R{written}"
                    command = ReserveStock(*s, rng.randint(1, 3), f"c{rng.randrange(50)}", reservation_id=rid)
                elif roll < 0.95 and open_reservations[s]:
                    rid = open_reservations[s].pop(rng.randrange(len(open_reservations[s])))
                    command = (ReleaseReservation if roll < 0.85 else FulfillReservation)(rid)
                else:
                    command = CountStock(*s, rng.randint(0, 40))
                try:
                    session.execute(command)
                except RuleViolation:
                    continue
                if isinstance(command, ReserveStock):
                    open_reservations[s].append(command.reservation_id)
                written += 1
            session.flush()
    finally:
        store.close()


def wal_size(db: Path) -> int:
    try:
        return Path(f"{db}-wal").stat().st_size
    except FileNotFoundError:
        return 0


def rebuild_and_watch_the_wal(db: Path) -> int:
    """Run one whole rebuild; the largest write-ahead log seen while it ran (0 if none seen)."""
    rebuild = spawn_inventory(db, "rebuild-projections")
    largest = 0
    while rebuild.poll() is None:
        largest = max(largest, wal_size(db))
        time.sleep(0.001)
    assert rebuild.wait() == 0, rebuild.communicate()
    return largest


def kill_rebuild(db: Path, *, after: float | None = None, wal_bytes: int | None = None) -> int:
    """Start a rebuild and SIGKILL it after a delay or once the WAL holds that many bytes."""
    rebuild = spawn_inventory(db, "rebuild-projections")
    if after is not None:
        time.sleep(after)
    else:
        while rebuild.poll() is None and wal_size(db) < wal_bytes:
            time.sleep(0.0005)
    rebuild.send_signal(signal.SIGKILL)
    rebuild.communicate(timeout=60)
    return rebuild.returncode


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_kill_9_during_rebuild_leaves_the_projections_consistent(tmp_path):
    db = tmp_path / "big.db"
    build_big_log(db, events=50_000, seed=20261127)
    assert event_count(db) == 50_000
    stock_before = ok(run_inventory(db, "stock", "--all-stores", "--json")).stdout
    assert len(json.loads(stock_before)) == 120
    ok(run_inventory(db, "rebuild-projections", "--check"))

    # Calibrate on this machine: how long a whole rebuild process takes (the rebuild is
    # its later part, after start-up) and how large its write-ahead log grows.
    started = time.perf_counter()
    largest_wal = rebuild_and_watch_the_wal(db)
    full = time.perf_counter() - started
    ok(run_inventory(db, "stock"))  # the last connection to close removes the WAL

    rng = random.Random(4242)
    kills = [{"after": rng.uniform(0.4, 1.0) * full} for _ in range(3)]
    if largest_wal:  # also kill in the middle of writing the new tables to the log
        kills += [{"wal_bytes": int(rng.uniform(0.05, 0.9) * largest_wal)} for _ in range(3)]
    killed = 0
    for kill in kills:
        killed += kill_rebuild(db, **kill) == -signal.SIGKILL
        # Whatever the moment of the kill: stock answers as before, and matches the log.
        assert ok(run_inventory(db, "stock", "--all-stores", "--json")).stdout == stock_before, kill
        check = ok(run_inventory(db, "rebuild-projections", "--check", "--json"))
        assert json.loads(check.stdout)["ok"] is True, kill
        assert event_count(db) == 50_000
    assert killed, "every rebuild finished before its kill: the test proved nothing"

    # The database keeps working after the kills.
    ok(run_inventory(db, "add", "P000", "1"))
    ok(run_inventory(db, "rebuild-projections"))
    ok(run_inventory(db, "rebuild-projections", "--check"))
