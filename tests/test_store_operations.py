"""Store operations (docs/store-operations.md): expiring reservations,
transfers between stores, product definitions, and their import ops.

Self-contained: the fixtures here do not rely on conftest.py. Everything a test
asserts is something a user of the command line would notice: exit codes, the
JSON documents, stderr, and what stock, history, reservations, transfers and
replay show afterwards.
"""

from __future__ import annotations

import json as jsonlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from inventory_cli.application.commands import AddStock, ReceiveTransfer, ReserveStock, TransferStock
from inventory_cli.application.handlers import run_command
from inventory_cli.cli.main import app
from inventory_cli.domain.errors import RuleViolation
from inventory_cli.storage.sqlite import open_store

# Variables that change what the tool does: unset in every run unless a test sets them.
TOOL_ENV = (
    "INVENTORY_DB", "INVENTORY_STORE", "INVENTORY_USER", "INVENTORY_DEBUG",
    "INVENTORY_BUSY_TIMEOUT", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
)
STOCK_LINE_KEYS = {
    "store", "product", "name", "on_hand", "reserved", "available", "incoming",
    "reorder_point", "version", "updated_at",
}
RESERVATION_KEYS = {"reservation_id", "store", "product", "quantity", "customer", "created_at", "expires_at"}
TRANSFER_KEYS = {
    "transfer_id", "product", "from", "to", "quantity", "received", "lost", "status",
    "shipped_at", "received_at",
}


# -- fixtures and helpers ---------------------------------------------------------------


class Cli:
    """The CLI in-process against one database file; ``--json`` appended by default."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.runner = CliRunner()

    def run(self, *args: object, json: bool = True, env: dict[str, str | None] | None = None,
            input: str | None = None):
        environment: dict[str, str | None] = {name: None for name in TOOL_ENV}
        environment["INVENTORY_USER"] = "tester"
        environment.update(env or {})
        argv = ["--db", str(self.db), *map(str, args)] + (["--json"] if json else [])
        return self.runner.invoke(app, argv, env=environment, input=input, catch_exceptions=False)

    def ok(self, *args: object, **kwargs):
        """Run, require exit 0, and return the JSON document (or the text without --json)."""
        result = self.run(*args, **kwargs)
        assert result.exit_code == 0, (args, result.exit_code, result.stdout, result.stderr)
        return jsonlib.loads(result.stdout) if kwargs.get("json", True) else result.stdout

    def refused(self, code: int, *args: object, **kwargs):
        """Run, require exit ``code``, nothing on stdout, a plain message on stderr, nothing written."""
        before = event_count(self.db)
        result = self.run(*args, **kwargs)
        assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
        assert result.stdout == ""
        assert result.stderr.strip() and "Traceback" not in result.stderr
        assert event_count(self.db) == before
        return result

    # Shorthands for reads.
    def line(self, product: str, store: str = "main") -> dict | None:
        lines = self.ok("stock", product, "--store", store)
        assert len(lines) <= 1
        return lines[0] if lines else None

    def history(self, product: str, store: str = "main") -> list[dict]:
        return self.ok("history", product, "--store", store)

    def transfers(self, *options: str) -> list[dict]:
        return self.ok("transfers", *options)


def event_count(db: Path) -> int:
    if not Path(db).exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()


def log_rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Read the documented schema directly (read-only), as sqlite3 or Datasette would."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def expired_releases(db: Path) -> list[str]:
    """The reservation id of every StockReleased event whose reason is `expired`, in log order."""
    return [
        rid for (rid,) in log_rows(
            db,
            "SELECT json_extract(data, '$.reservation_id') FROM events"
            " WHERE type = 'StockReleased' AND json_extract(data, '$.reason') = 'expired'"
            " ORDER BY position",
        )
    ]


def process_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TOOL_ENV}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env["INVENTORY_USER"] = "cron"
    env.update(extra or {})
    return env


def check_ok(cli: Cli) -> None:
    """The projections equal what the log says."""
    report = cli.ok("rebuild-projections", "--check")
    assert report["ok"] is True and report["differences"] == []


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() is not None, f"{text} has no UTC offset"
    return moment


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "inv.db")


def copy_db(source: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")


@pytest.fixture(scope="module")
def overdue_template(tmp_path_factory) -> Path:
    """A database with overdue reservations, made once with `reserve --ttl 1s` and a short wait.

    main  MUG: 10 on hand; R-A (2, 1s), R-B (3, 1s), R-LONG (1, 1h)
    main  CUP: 10 on hand; R-C (1, 1s)
    paris MUG: 10 on hand; R-D (4, 1s)
    """
    cli = Cli(tmp_path_factory.mktemp("overdue") / "template.db")
    cli.ok("add", "MUG", "10")
    cli.ok("add", "CUP", "10")
    cli.ok("add", "MUG", "10", "--store", "paris")
    for rid, product, quantity, store in (("R-A", "MUG", 2, "main"), ("R-B", "MUG", 3, "main"),
                                          ("R-C", "CUP", 1, "main"), ("R-D", "MUG", 4, "paris")):
        answer = cli.ok("reserve", product, quantity, "--customer", "walk-in", "--ttl", "1s",
                        "--id", rid, "--store", store)
        assert answer["expires_at"] is not None
    cli.ok("reserve", "MUG", "1", "--customer", "keeper", "--ttl", "1h", "--id", "R-LONG")
    time.sleep(1.1)  # every 1s reservation is now past its expiry
    return cli.db


@pytest.fixture
def overdue(overdue_template: Path, tmp_path: Path) -> Cli:
    target = tmp_path / "overdue.db"
    copy_db(overdue_template, target)
    return Cli(target)


# -- expiry: reserve --ttl, reservations, expire -------------------------------------------


@pytest.mark.parametrize("duration, seconds", [("90s", 90), ("30m", 1800), ("2h", 7200), ("3d", 259200)])
def test_reserve_ttl_sets_expires_at_that_far_after_the_reservation(cli, duration, seconds):
    cli.ok("add", "MUG", "5")
    answer = cli.ok("reserve", "MUG", "2", "--customer", "ann", "--ttl", duration)
    assert answer["reserved"] == 2 and answer["available"] == 3
    [listed] = cli.ok("reservations")
    assert listed["reservation_id"] == answer["reservation_id"]
    assert listed["expires_at"] == answer["expires_at"]
    elapsed = parse_time(listed["expires_at"]) - parse_time(listed["created_at"])
    assert elapsed == timedelta(seconds=seconds)
    # The reservation is not overdue: expire leaves it alone.
    assert cli.ok("expire") == {"released": 0}
    assert [r["reservation_id"] for r in cli.ok("reservations")] == [answer["reservation_id"]]


def test_reserve_ttl_prints_the_expiry_for_people(cli):
    cli.ok("add", "MUG", "5")
    text = cli.ok("reserve", "MUG", "1", "--customer", "ann", "--ttl", "2h", "--id", "R-1", json=False)
    [listed] = cli.ok("reservations")
    assert "R-1" in text and listed["expires_at"] in text


def test_a_repeated_reserve_with_a_ttl_answers_the_same_document_expiry_included(cli):
    cli.ok("add", "MUG", "5")
    first = cli.ok("reserve", "MUG", "2", "--customer", "ann", "--ttl", "30m", "--id", "R-1")
    cli.ok("add", "MUG", "1")  # the line moves on; the answer must still be the first one
    again = cli.ok("reserve", "MUG", "2", "--customer", "ann", "--ttl", "30m", "--id", "R-1")
    assert again == first and first["expires_at"] is not None
    text = cli.ok("reserve", "MUG", "2", "--customer", "ann", "--ttl", "30m", "--id", "R-1", json=False)
    assert "Already done" in text and first["expires_at"] in text


@pytest.mark.parametrize("duration", ["0s", "5x", "-1m", "400d", "1.5h", "", "h", "2 hours"])
def test_reserve_with_a_bad_duration_is_a_usage_error(cli, duration):
    cli.ok("add", "MUG", "5")
    cli.refused(2, "reserve", "MUG", "1", "--customer", "ann", "--ttl", duration)
    assert cli.ok("reservations") == []
    assert cli.line("MUG")["reserved"] == 0


def test_reservation_without_ttl_never_expires(cli):
    cli.ok("add", "MUG", "5")
    cli.ok("reserve", "MUG", "1", "--customer", "ann", "--id", "R-1")
    [listed] = cli.ok("reservations")
    assert listed["expires_at"] is None
    assert cli.ok("expire") == {"released": 0}
    assert len(cli.ok("reservations")) == 1


def test_reservations_lists_open_ones_with_their_fields_and_filters(cli):
    cli.ok("add", "MUG", "10")
    cli.ok("add", "CUP", "10")
    cli.ok("add", "MUG", "10", "--store", "paris")
    cli.ok("reserve", "MUG", "1", "--customer", "ann", "--id", "R-1", "--ttl", "2h")
    cli.ok("reserve", "CUP", "2", "--customer", "bob", "--id", "R-2")
    cli.ok("reserve", "MUG", "3", "--customer", "cy", "--id", "R-3", "--store", "paris", "--ttl", "30m")
    cli.ok("reserve", "MUG", "1", "--customer", "dee", "--id", "R-4")
    cli.ok("reserve", "MUG", "1", "--customer", "eve", "--id", "R-5")
    cli.ok("release", "R-4")
    cli.ok("fulfill", "R-5")

    main = cli.ok("reservations")
    for row in main:
        assert set(row) == RESERVATION_KEYS
        parse_time(row["created_at"])
    assert {r["reservation_id"] for r in main} == {"R-1", "R-2"}  # released and fulfilled ones are gone
    r1 = next(r for r in main if r["reservation_id"] == "R-1")
    assert (r1["store"], r1["product"], r1["quantity"], r1["customer"]) == ("main", "MUG", 1, "ann")
    parse_time(r1["expires_at"])

    everywhere = cli.ok("reservations", "--all-stores")
    assert {(r["reservation_id"], r["store"]) for r in everywhere} == {
        ("R-1", "main"), ("R-2", "main"), ("R-3", "paris")}
    assert {r["reservation_id"] for r in cli.ok("reservations", "MUG", "--all-stores")} == {"R-1", "R-3"}
    assert [r["reservation_id"] for r in cli.ok("reservations", "CUP")] == ["R-2"]
    assert [r["reservation_id"] for r in cli.ok("reservations", "--store", "paris")] == ["R-3"]
    assert cli.ok("reservations", "NOPE") == []
    table = cli.ok("reservations", "--all-stores", json=False)
    assert "R-3" in table and "paris" in table and "\x1b" not in table


def test_reservations_and_expire_on_a_missing_database_create_nothing(cli):
    assert cli.ok("reservations") == []
    assert cli.ok("expire") == {"released": 0}
    assert cli.ok("transfers") == []
    assert cli.ok("product", "list") == []
    assert not cli.db.exists()


def test_expire_releases_each_overdue_reservation_once(overdue):
    assert overdue.ok("expire") == {"released": 4}
    # Only the reservation that has not run out is left.
    assert [r["reservation_id"] for r in overdue.ok("reservations", "--all-stores")] == ["R-LONG"]
    assert sorted(expired_releases(overdue.db)) == ["R-A", "R-B", "R-C", "R-D"]
    releases = [e for e in overdue.history("MUG") if e["type"] == "StockReleased"]
    assert {(e["reservation_id"], e["reason"], e["quantity"]) for e in releases} == {
        ("R-A", "expired", 2), ("R-B", "expired", 3)}
    [paris_release] = [e for e in overdue.history("MUG", "paris") if e["type"] == "StockReleased"]
    assert (paris_release["reservation_id"], paris_release["reason"]) == ("R-D", "expired")
    assert overdue.line("MUG")["reserved"] == 1 and overdue.line("MUG")["available"] == 9
    assert overdue.line("CUP")["reserved"] == 0
    assert overdue.line("MUG", "paris")["available"] == 10

    events = event_count(overdue.db)
    assert overdue.ok("expire") == {"released": 0}  # a second run finds nothing left to do
    assert event_count(overdue.db) == events
    check_ok(overdue)


def test_expiry_still_works_after_a_rebuild_of_the_projections(overdue):
    overdue.ok("rebuild-projections")
    listed = {r["reservation_id"]: r["expires_at"] for r in overdue.ok("reservations", "--all-stores")}
    assert set(listed) == {"R-A", "R-B", "R-C", "R-D", "R-LONG"} and all(listed.values())
    assert overdue.ok("expire") == {"released": 4}
    check_ok(overdue)


def test_expire_for_people_and_quiet(overdue):
    assert "4" in overdue.ok("expire", json=False)
    assert overdue.ok("expire", "--quiet", json=False) == ""


def test_a_write_releases_its_own_overdue_reservations_first_in_the_same_transaction(overdue):
    head = event_count(overdue.db)
    answer = overdue.ok("add", "MUG", "1")
    # The answer already reflects the releases: only R-LONG is still reserved.
    assert (answer["on_hand"], answer["reserved"], answer["available"]) == (11, 1, 10)
    assert answer["position"] == head + 3
    *_, first, second, added = overdue.history("MUG")
    assert [e["type"] for e in (first, second, added)] == ["StockReleased", "StockReleased", "StockAdded"]
    assert {first["reservation_id"], second["reservation_id"]} == {"R-A", "R-B"}
    assert first["reason"] == second["reason"] == "expired"
    assert [e["position"] for e in (first, second, added)] == [head + 1, head + 2, head + 3]
    assert first["recorded_at"] == second["recorded_at"] == added["recorded_at"]
    # Only this product's stream: CUP in main and MUG in paris keep theirs until `expire`.
    assert {r["reservation_id"] for r in overdue.ok("reservations", "--all-stores")} == {
        "R-LONG", "R-C", "R-D"}
    assert overdue.ok("expire") == {"released": 2}
    assert sorted(expired_releases(overdue.db)) == ["R-A", "R-B", "R-C", "R-D"]
    check_ok(overdue)


def test_a_transfer_can_use_units_freed_by_expiry(overdue):
    # 10 on hand, 6 reserved (2 + 3 overdue, 1 not): only 4 available until the expiry.
    shipped = overdue.ok("transfer", "MUG", "9", "--from", "main", "--to", "lyon")
    assert (shipped["on_hand"], shipped["reserved"], shipped["available"]) == (1, 1, 0)
    types = [e["type"] for e in overdue.history("MUG")[-3:]]
    assert types == ["StockReleased", "StockReleased", "TransferShipped"]
    assert overdue.line("MUG", "lyon")["incoming"] == 9


def test_release_or_fulfill_of_an_expired_reservation_is_refused(overdue):
    overdue.ok("expire")
    result = overdue.refused(1, "release", "R-A")
    assert "already released" in result.stderr
    overdue.refused(1, "fulfill", "R-B")
    assert overdue.line("MUG")["reserved"] == 1


def test_release_of_an_overdue_reservation_before_expire_ran_is_refused(overdue):
    # Overdue means released: the write expires it first, so the release finds it closed.
    result = overdue.refused(1, "release", "R-C")
    assert "already released" in result.stderr
    assert overdue.ok("expire") == {"released": 4}


def test_rerunning_an_expired_reservation_with_its_id_does_not_reopen_it(overdue):
    overdue.ok("expire")
    events = event_count(overdue.db)
    again = overdue.ok("reserve", "MUG", "2", "--customer", "walk-in", "--ttl", "1s", "--id", "R-A")
    assert again["reservation_id"] == "R-A" and again["quantity"] == 2
    assert event_count(overdue.db) == events
    assert "R-A" not in {r["reservation_id"] for r in overdue.ok("reservations")}
    overdue.refused(1, "reserve", "MUG", "2", "--customer", "walk-in", "--ttl", "2h", "--id", "R-A")


def test_a_count_may_go_below_overdue_reservations(overdue):
    # 10 on hand, 6 reserved of which 5 are overdue: a count of 1 is allowed once they expire.
    counted = overdue.ok("count", "MUG", "1")
    assert (counted["on_hand"], counted["reserved"], counted["available"]) == (1, 1, 0)
    assert overdue.ok("count", "CUP", "0")["reserved"] == 0  # R-C expired by the count itself


def test_a_back_dated_import_row_on_a_product_with_overdue_reservations(overdue, tmp_path):
    latest = overdue.history("MUG")[-1]  # R-LONG, the stream's latest event
    at = (parse_time(latest["occurred_at"]) + timedelta(milliseconds=10)).isoformat()
    source = write_file(tmp_path / "late.ndjson", [{"op": "add", "product": "MUG", "quantity": 1, "at": at}])
    result = overdue.run("import", source)
    assert result.exit_code == 0, result.stdout
    added = [e for e in overdue.history("MUG") if e["type"] == "StockAdded"][-1]
    assert parse_time(added["occurred_at"]) == parse_time(at)
    overdue.ok("expire")
    assert sorted(expired_releases(overdue.db)) == ["R-A", "R-B", "R-C", "R-D"]
    check_ok(overdue)


def test_expire_gives_up_with_75_while_the_database_stays_busy(overdue):
    blocker = sqlite3.connect(overdue.db, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        overdue.refused(75, "expire", env={"INVENTORY_BUSY_TIMEOUT": "0"})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert len(overdue.ok("reservations", "--all-stores")) == 5  # nothing was released
    assert overdue.ok("expire") == {"released": 4}  # and the next run does it


def test_two_expire_processes_at_once_release_each_reservation_once(tmp_path):
    db = tmp_path / "inv.db"
    two_hours_ago = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat(timespec="microseconds")
    store = open_store(str(db), create=True)
    expected = set()
    try:
        for s in ("main", "paris", "lyon"):
            for p in range(10):
                run_command(store, AddStock(s, f"SKU-{p}", 10), "setup", clock=lambda: two_hours_ago)
                for n in range(3):
                    rid = f"R-{s}-{p}-{n}"
                    run_command(store, ReserveStock(s, f"SKU-{p}", 1, "c", rid, ttl_seconds=60),
                                "setup", clock=lambda: two_hours_ago)
                    expected.add(rid)
    finally:
        store.close()
    cli = Cli(db)
    assert len(cli.ok("reservations", "--all-stores")) == 90

    argv = [sys.executable, "-m", "inventory_cli", "--db", str(db), "expire", "--json"]
    workers = [subprocess.Popen(argv, env=process_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outcomes = [(w.wait(timeout=120), *w.communicate()) for w in workers]
    assert [code for code, _, _ in outcomes] == [0, 0, 0], outcomes
    released = [jsonlib.loads(out)["released"] for _, out, _ in outcomes]
    assert sum(released) == 90, released

    releases = expired_releases(db)
    assert len(releases) == 90 and set(releases) == expected  # each exactly once
    assert cli.ok("reservations", "--all-stores") == []
    assert all(line["reserved"] == 0 for line in cli.ok("stock", "--all-stores"))
    check_ok(cli)


# -- transfers ---------------------------------------------------------------------------


def test_transfer_ships_and_the_units_show_as_incoming_at_the_other_store(cli):
    cli.ok("add", "MUG", "10")
    shipped = cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris")
    assert set(shipped) == STOCK_LINE_KEYS | {"position", "transfer_id", "quantity", "from", "to"}
    assert (shipped["store"], shipped["on_hand"], shipped["available"]) == ("main", 6, 6)
    assert (shipped["quantity"], shipped["from"], shipped["to"]) == (4, "main", "paris")
    tid = shipped["transfer_id"]
    assert isinstance(tid, str) and tid

    main, paris = cli.ok("stock", "--all-stores")
    assert (main["store"], main["on_hand"], main["available"], main["incoming"]) == ("main", 6, 6, 0)
    assert (paris["store"], paris["on_hand"], paris["available"], paris["incoming"]) == ("paris", 0, 0, 4)
    assert cli.history("MUG")[-1]["type"] == "TransferShipped"
    assert cli.history("MUG")[-1]["quantity"] == 4
    [announced] = cli.history("MUG", "paris")
    assert (announced["type"], announced["quantity"], announced["on_hand"]) == ("TransferAnnounced", 4, 0)

    [row] = cli.transfers()
    assert set(row) == TRANSFER_KEYS
    assert row["transfer_id"] == tid
    assert (row["product"], row["from"], row["to"], row["quantity"]) == ("MUG", "main", "paris", 4)
    assert (row["received"], row["lost"], row["status"], row["received_at"]) == (0, 0, "open", None)
    parse_time(row["shipped_at"])


def test_transfer_prints_the_transfer_id_for_people(cli):
    cli.ok("add", "MUG", "10")
    text = cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", json=False)
    [row] = cli.transfers()
    assert row["transfer_id"] in text


def test_transfer_id_is_the_idempotency_key(cli):
    cli.ok("add", "MUG", "10")
    first = cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", "--id", "T-1")
    assert first["transfer_id"] == "T-1"
    events = event_count(cli.db)
    again = cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", "--id", "T-1")
    assert again == first
    assert event_count(cli.db) == events
    assert [e["type"] for e in cli.history("MUG")].count("TransferShipped") == 1
    assert cli.line("MUG")["on_hand"] == 6 and cli.line("MUG", "paris")["incoming"] == 4
    for different in (("5", "--from", "main", "--to", "paris"), ("4", "--from", "main", "--to", "lyon")):
        result = cli.refused(1, "transfer", "MUG", *different, "--id", "T-1")
        assert "T-1" in result.stderr
    assert len(cli.transfers()) == 1
    # One namespace: a reservation cannot take the transfer's id either.
    cli.refused(1, "reserve", "MUG", "1", "--customer", "ann", "--id", "T-1")


def test_a_repeated_transfer_tells_people_which_id_it_was(cli):
    cli.ok("add", "MUG", "10")
    first = cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", "--id", "T-1", json=False)
    again = cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", "--id", "T-1", json=False)
    assert "Already done" in again and again.endswith(first)
    prefix = again[: len(again) - len(first)]
    assert "T-1" in prefix, again


def test_receive_books_the_transfer_in_at_the_receiving_store(cli):
    cli.ok("add", "MUG", "10")
    tid = cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris")["transfer_id"]
    received = cli.ok("receive", tid)
    assert (received["store"], received["on_hand"], received["incoming"]) == ("paris", 4, 0)
    assert (received["transfer_id"], received["quantity"], received["lost"]) == (tid, 4, 0)
    assert cli.history("MUG", "paris")[-1]["type"] == "TransferReceived"
    assert not any(e["type"] == "TransferLost" for e in cli.history("MUG", "paris"))
    assert cli.line("MUG")["on_hand"] == 6  # the sending store is not touched again
    [row] = cli.transfers()
    assert (row["received"], row["lost"], row["status"]) == (4, 0, "received")
    parse_time(row["received_at"])
    assert cli.transfers("--open") == []
    check_ok(cli)


def test_a_short_receipt_records_the_rest_as_lost_in_transit(cli):
    cli.ok("add", "MUG", "10")
    cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", "--id", "T-1")
    received = cli.ok("receive", "T-1", "--quantity", "3")
    assert (received["quantity"], received["lost"]) == (3, 1)
    assert (received["on_hand"], received["incoming"]) == (3, 0)
    *_, got, lost = cli.history("MUG", "paris")
    assert (got["type"], got["quantity"]) == ("TransferReceived", 3)
    assert (lost["type"], lost["quantity"], lost["reason"]) == ("TransferLost", 1, "lost in transit")
    [row] = cli.transfers()
    assert (row["quantity"], row["received"], row["lost"], row["status"]) == (4, 3, 1, "received")
    assert row["quantity"] == row["received"] + row["lost"]
    # Nothing vanished: 10 added = 6 at main + 3 at paris + 1 lost.
    assert cli.line("MUG")["on_hand"] + cli.line("MUG", "paris")["on_hand"] + row["lost"] == 10
    text = cli.run("receive", "T-1", json=False)
    assert text.exit_code == 1  # already received, short or not
    check_ok(cli)


def test_receive_with_id_is_idempotent(cli):
    cli.ok("add", "MUG", "10")
    cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", "--id", "T-1")
    first = cli.ok("receive", "T-1", "--quantity", "3", "--id", "K-1")
    events = event_count(cli.db)
    assert cli.ok("receive", "T-1", "--quantity", "3", "--id", "K-1") == first
    assert event_count(cli.db) == events
    cli.refused(1, "receive", "T-1", "--quantity", "2", "--id", "K-1")


def test_receive_of_nothing_arrived_records_no_zero_quantity_event(cli):
    """`receive --quantity 0`: the contract says an event's quantity is always positive
    (StockCounted aside) and that QUANTITY 0 is a usage error except for count. Either
    answer is acceptable: refuse it with exit 2, or record the whole shipment as lost
    without a TransferReceived of 0 units."""
    cli.ok("add", "MUG", "10")
    cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", "--id", "T-1")
    result = cli.run("receive", "T-1", "--quantity", "0")
    if result.exit_code == 2:
        assert cli.transfers("--open")[0]["transfer_id"] == "T-1"
    else:
        assert result.exit_code == 0, result.stderr
        assert cli.line("MUG", "paris")["incoming"] == 0
        [row] = cli.transfers()
        assert (row["received"], row["lost"]) == (0, 4)
        events = [(e["type"], e["quantity"]) for e in cli.history("MUG", "paris")]
        assert all(quantity > 0 for _, quantity in events), events


def test_transfer_beyond_available_is_refused_and_writes_nothing_anywhere(cli):
    cli.ok("add", "MUG", "10")
    cli.ok("reserve", "MUG", "8", "--customer", "ann")
    result = cli.refused(1, "transfer", "MUG", "3", "--from", "main", "--to", "paris")
    assert "available" in result.stderr
    assert cli.line("MUG", "paris") is None  # no incoming announced at the other store
    assert cli.transfers() == []
    assert cli.line("MUG")["on_hand"] == 10
    cli.ok("transfer", "MUG", "2", "--from", "main", "--to", "paris")  # exactly what is available


def test_transfer_to_the_same_store_is_refused(cli):
    cli.ok("add", "MUG", "10", "--store", "café")
    cli.refused(1, "transfer", "MUG", "1", "--from", "main", "--to", "main")
    # The same store typed in another Unicode normal form is still the same store.
    cli.refused(1, "transfer", "MUG", "1", "--from", "café", "--to", "cafe\u0301")
    assert cli.transfers() == []


def test_a_transfer_to_a_store_spelt_in_nfd_arrives_at_the_nfc_store(cli):
    cli.ok("add", "MUG", "10")
    cli.ok("transfer", "MUG", "2", "--from", "main", "--to", "cafe\u0301", "--id", "T-1")
    assert cli.line("MUG", "café")["incoming"] == 2
    assert cli.ok("receive", "T-1")["store"] == "café"


def test_receive_refusals(cli):
    cli.ok("add", "MUG", "10")
    cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", "--id", "T-1")
    cli.refused(1, "receive", "T-NOPE")
    more = cli.refused(1, "receive", "T-1", "--quantity", "5")
    assert "4" in more.stderr
    assert cli.transfers("--open")[0]["transfer_id"] == "T-1"  # still open after the refusals
    cli.ok("receive", "T-1")
    again = cli.refused(1, "receive", "T-1")
    assert "already received" in again.stderr
    cli.refused(1, "receive", "T-1", "--quantity", "1")
    assert cli.line("MUG", "paris")["on_hand"] == 4


@pytest.mark.parametrize("args", [
    ("transfer", "MUG", "0", "--from", "main", "--to", "paris"),
    ("transfer", "MUG", "-1", "--from", "main", "--to", "paris"),
    ("transfer", "MUG", "1.5", "--from", "main", "--to", "paris"),
    ("transfer", "MUG", "1", "--from", " main", "--to", "paris"),
    ("transfer", "MUG", "1", "--from", "main", "--to", ""),
    ("transfer", "MUG", "1", "--from", "main"),
    ("receive", "T-1", "--quantity", "-1"),
    ("receive", "T-1", "--quantity", "1.5"),
    ("receive", "T-1", "--quantity", "lots"),
    ("receive", "T-1", "--quantity", "1000000001"),
])
def test_transfer_and_receive_usage_errors(cli, args):
    cli.ok("add", "MUG", "10")
    cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", "--id", "T-1")
    cli.refused(2, *args)
    assert cli.transfers("--open")[0]["received"] == 0


def test_transfers_open_lists_a_transfer_until_it_is_received(cli):
    cli.ok("add", "MUG", "10")
    cli.ok("add", "CUP", "10", "--store", "paris")
    cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", "--id", "T-1")
    cli.ok("transfer", "CUP", "2", "--from", "paris", "--to", "lyon", "--id", "T-2")
    assert [t["transfer_id"] for t in cli.transfers("--open")] == ["T-1", "T-2"]
    cli.ok("receive", "T-1")
    assert [t["transfer_id"] for t in cli.transfers("--open")] == ["T-2"]
    assert {(t["transfer_id"], t["status"]) for t in cli.transfers()} == {("T-1", "received"), ("T-2", "open")}
    table = cli.ok("transfers", "--open", json=False)
    assert "T-2" in table and "T-1" not in table
    cli.ok("receive", "T-2")
    assert cli.transfers("--open") == []
    assert "No transfers" in cli.ok("transfers", "--open", json=False)


def test_an_open_transfer_survives_between_the_steps_and_a_rebuild(cli):
    cli.ok("add", "MUG", "10")
    cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", "--id", "T-1")
    # Between the two steps the log is consistent and the transfer stays open.
    check_ok(cli)
    cli.ok("rebuild-projections")
    check_ok(cli)
    assert [t["transfer_id"] for t in cli.transfers("--open")] == ["T-1"]
    assert cli.line("MUG", "paris")["incoming"] == 4
    assert cli.line("MUG")["on_hand"] == 6
    received = cli.ok("receive", "T-1", "--quantity", "3")  # still receivable after the rebuild
    assert (received["on_hand"], received["lost"]) == (3, 1)
    cli.ok("rebuild-projections")
    [row] = cli.transfers()
    assert (row["received"], row["lost"], row["status"]) == (3, 1, "received")
    assert cli.line("MUG", "paris")["incoming"] == 0
    verified = cli.run("verify", "--json")
    assert verified.exit_code == 0 and jsonlib.loads(verified.stdout)["ok"] is True


def test_a_crashed_transfer_process_leaves_all_or_nothing(tmp_path):
    """A transfer is one transaction: killed at any moment, it is either whole or absent."""
    cli = Cli(tmp_path / "inv.db")
    cli.ok("add", "MUG", "1000")
    argv = [sys.executable, "-m", "inventory_cli", "--db", str(cli.db), "transfer", "MUG", "1",
            "--from", "main", "--to", "paris"]
    for delay in (0.05, 0.2, 0.35):
        worker = subprocess.Popen(argv, env=process_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        worker.kill()
        worker.wait(timeout=60)
    shipped = len(cli.transfers())
    assert cli.line("MUG")["on_hand"] == 1000 - shipped
    if shipped:
        assert cli.line("MUG", "paris")["incoming"] == shipped
    check_ok(cli)


def test_concurrent_transfers_never_overship_and_a_transfer_is_received_once(tmp_path):
    cli = Cli(tmp_path / "inv.db")
    cli.ok("add", "MUG", "3")
    cli.ok("add", "CUP", "5")
    cli.ok("transfer", "CUP", "5", "--from", "main", "--to", "paris", "--id", "T-CUP")

    def spawn(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "inventory_cli", "--db", str(cli.db), *args, "--json"],
                                env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    workers = [spawn("transfer", "MUG", "1", "--from", "main", "--to", "paris") for _ in range(6)]
    workers += [spawn("receive", "T-CUP") for _ in range(3)]
    outcomes = [(w.wait(timeout=120), *w.communicate()) for w in workers]
    transfers, receipts = outcomes[:6], outcomes[6:]
    assert sorted(code for code, _, _ in transfers) == [0, 0, 0, 1, 1, 1], transfers
    assert sorted(code for code, _, _ in receipts) == [0, 1, 1], receipts
    for code, out, err in outcomes:
        assert (out == "") == (code != 0) and "Traceback" not in err
    shipped_ids = {jsonlib.loads(out)["transfer_id"] for code, out, _ in transfers if code == 0}
    assert len(shipped_ids) == 3
    assert {t["transfer_id"] for t in cli.transfers("--open")} == shipped_ids
    mug = {l["store"]: (l["on_hand"], l["incoming"]) for l in cli.ok("stock", "MUG", "--all-stores")}
    assert mug == {"main": (0, 0), "paris": (0, 3)}
    assert cli.line("CUP", "paris")["on_hand"] == 5
    assert [e["type"] for e in cli.history("CUP", "paris")].count("TransferReceived") == 1
    check_ok(cli)


def test_the_export_feed_carries_transfer_expiry_and_product_fields(cli):
    cli.ok("add", "MUG", "10")
    cli.ok("reserve", "MUG", "1", "--customer", "ann", "--ttl", "2h", "--id", "R-1")
    cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", "--id", "T-1")
    cli.ok("receive", "T-1", "--quantity", "3")
    cli.ok("product", "set", "MUG", "--name", "Blue mug", "--reorder-point", "2")
    feed = [jsonlib.loads(line) for line in cli.ok("export", json=False).splitlines()]
    by_type = {e["type"]: e for e in feed}
    assert by_type["StockReserved"]["expires_at"] is not None
    assert (by_type["TransferShipped"]["transfer_id"], by_type["TransferShipped"]["to_store"]) == ("T-1", "paris")
    assert (by_type["TransferAnnounced"]["store"], by_type["TransferAnnounced"]["from_store"]) == ("paris", "main")
    assert (by_type["TransferLost"]["quantity"], by_type["TransferLost"]["reason"]) == (1, "lost in transit")
    assert (by_type["ProductDefined"]["name"], by_type["ProductDefined"]["reorder_point"]) == ("Blue mug", 2)
    assert [e["position"] for e in feed] == list(range(1, len(feed) + 1))


def test_replay_between_shipment_and_receipt_shows_units_incoming(cli):
    before = cli.ok("add", "MUG", "10")["position"]
    shipped = cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", "--id", "T-1")["position"]
    received = cli.ok("receive", "T-1")["position"]

    def figures(position: int) -> dict[str, tuple[int, int]]:
        lines = cli.ok("replay", "--all-stores", "--position", position)
        return {l["store"]: (l["on_hand"], l["incoming"]) for l in lines}

    assert figures(before) == {"main": (10, 0)}
    assert figures(shipped) == {"main": (6, 0), "paris": (0, 4)}
    assert figures(received) == {"main": (6, 0), "paris": (4, 0)}
    assert cli.ok("replay", "--all-stores") == cli.ok("stock", "--all-stores")


# -- conservation, property-based -----------------------------------------------------------

STORES = ("main", "paris", "lyon")
PRODUCTS = ("MUG", "CUP")
add_op = st.tuples(st.just("add"), st.sampled_from(STORES), st.sampled_from(PRODUCTS), st.integers(1, 20))
# transfer: from a store to the next but one (0: to itself, refused), a quantity that fits
# what is on hand there or exceeds it (refused), and a number for the quantity.
transfer_op = st.tuples(st.just("transfer"), st.sampled_from(STORES), st.sampled_from((1, 2, 1, 2, 0)),
                        st.sampled_from(PRODUCTS), st.sampled_from(("fits", "fits", "fits", "excess")),
                        st.integers(0, 100))
# receive: which transfer (an index into those made so far), how much arrives (all of it,
# a short part, or more than was shipped, which is refused), and a number for the part.
receive_op = st.tuples(st.just("receive"), st.integers(0, 50),
                       st.sampled_from(("all", "short", "short", "over")), st.integers(0, 100))
# Stock to start from (1 to 20 units of each product in each store), then the moves.
opening_stock = st.lists(st.integers(1, 20), min_size=len(STORES) * len(PRODUCTS),
                         max_size=len(STORES) * len(PRODUCTS)).map(
    lambda units: [("add", s, p, q) for (s, p), q in zip([(s, p) for s in STORES for p in PRODUCTS], units) if q])
operations_strategy = st.tuples(
    opening_stock,
    st.lists(st.one_of(add_op, transfer_op, transfer_op, transfer_op, receive_op, receive_op, receive_op),
             min_size=6, max_size=30),
).map(lambda parts: parts[0] + parts[1])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=operations_strategy)
def test_transfers_conserve_units(tmp_path, operations):
    db = tmp_path / f"{uuid.uuid4().hex}.db"  # a fresh database for every example
    store = open_store(str(db), create=True)
    try:
        added = {p: 0 for p in PRODUCTS}
        on_hand = {(s, p): 0 for s in STORES for p in PRODUCTS}
        transfers: list[dict] = []  # the model: id, product, to, quantity, received, lost, open
        for op in operations:
            head = store.head_position()
            if op[0] == "add":
                _, s, p, q = op
                run_command(store, AddStock(s, p, q), "hypothesis")
                added[p] += q
                on_hand[s, p] += q
            elif op[0] == "transfer":
                _, a, offset, p, kind, k = op
                b = STORES[(STORES.index(a) + offset) % len(STORES)]
                have = on_hand[a, p]
                q = 1 + k % have if kind == "fits" and have else have + 1 + k % 5
                if a == b or q > on_hand[a, p]:
                    with pytest.raises(RuleViolation):
                        run_command(store, TransferStock(p, q, a, b), "hypothesis")
                    assert store.head_position() == head  # a refusal writes nothing
                    continue
                result = run_command(store, TransferStock(p, q, a, b), "hypothesis")
                on_hand[a, p] -= q
                transfers.append({"id": result.details.transfer_id, "product": p, "to": b,
                                  "quantity": q, "received": 0, "lost": 0, "open": True})
            else:
                _, index, kind, k = op
                if not transfers:
                    continue
                t = transfers[index % len(transfers)]
                if kind == "short" and t["quantity"] > 1:
                    q = 1 + k % (t["quantity"] - 1)  # 1 to quantity - 1 units arrive
                else:
                    q = t["quantity"] + 1 + k if kind == "over" else None
                if not t["open"] or (q is not None and q > t["quantity"]):
                    with pytest.raises(RuleViolation):
                        run_command(store, ReceiveTransfer(t["id"], q), "hypothesis")
                    assert store.head_position() == head
                    continue
                result = run_command(store, ReceiveTransfer(t["id"], q), "hypothesis")
                got = t["quantity"] if q is None else q
                t.update(received=got, lost=t["quantity"] - got, open=False)
                on_hand[t["to"], t["product"]] += got
                assert (result.details.quantity, result.details.lost) == (got, t["lost"])
                event("short receipt" if t["lost"] else "full receipt")

        lines = {(l.store, l.product): l for l in store.stock_lines(None, None)}
        rows = {r["transfer_id"]: r for r in store.transfers(open_only=False)}
        assert set(rows) == {t["id"] for t in transfers}
        for t in transfers:
            row = rows[t["id"]]
            assert row["quantity"] == t["quantity"]
            if not t["open"]:
                assert row["quantity"] == row["received"] + row["lost"]  # shipped = received + lost
            assert (row["received"], row["lost"], row["status"]) == (
                t["received"], t["lost"], "open" if t["open"] else "received")
        assert {r["transfer_id"] for r in store.transfers(open_only=True)} == {
            t["id"] for t in transfers if t["open"]}
        for p in PRODUCTS:
            held = sum(l.on_hand + l.incoming for (s, q), l in lines.items() if q == p)
            lost = sum(t["lost"] for t in transfers if t["product"] == p)
            assert held + lost == added[p], (p, held, lost, added[p])
        for (s, p), line in lines.items():
            assert line.on_hand == on_hand[s, p]
            assert line.incoming == sum(
                t["quantity"] for t in transfers if t["open"] and (t["to"], t["product"]) == (s, p))
            assert line.reserved == 0 and line.on_hand >= 0
        event(f"{len(transfers)} transfers, {sum(not t['open'] for t in transfers)} received")
        # The log alone says the same: the projections equal a rebuild, and replay equals stock.
        assert store.check_projections().differences == []
        replayed = store.replay_lines(None, None, until_position=None, until_time=None)
        assert [(l.store, l.product, l.on_hand, l.reserved, l.incoming, l.version) for l in replayed] == [
            (l.store, l.product, l.on_hand, l.reserved, l.incoming, l.version) for l in lines.values()]
    finally:
        store.close()


# -- products -------------------------------------------------------------------------------


def test_a_product_name_shows_on_its_lines_in_every_store(cli):
    cli.ok("add", "MUG", "10")
    cli.ok("add", "MUG", "3", "--store", "paris")
    cli.ok("add", "CUP", "3", "--store", "paris")
    answer = cli.ok("product", "set", "MUG", "--name", "Blue mug")
    assert set(answer) == STOCK_LINE_KEYS | {"position"}
    assert (answer["store"], answer["name"], answer["on_hand"]) == ("main", "Blue mug", 10)
    names = {(l["store"], l["product"]): l["name"] for l in cli.ok("stock", "--all-stores")}
    assert names == {("main", "MUG"): "Blue mug", ("paris", "MUG"): "Blue mug", ("paris", "CUP"): None}
    assert {l["name"] for l in cli.ok("replay", "MUG", "--all-stores")} == {"Blue mug"}
    defined = [e for e in cli.history("MUG") if e["type"] == "ProductDefined"]
    assert len(defined) == 1 and defined[0]["on_hand"] == 10
    assert not any(e["type"] == "ProductDefined" for e in cli.history("MUG", "paris"))
    # Renaming from another store renames it everywhere.
    cli.ok("product", "set", "MUG", "--name", "Mug, blue", "--store", "paris")
    assert {l["name"] for l in cli.ok("stock", "MUG", "--all-stores")} == {"Mug, blue"}
    assert "Mug, blue" in cli.ok("stock", "--all-stores", json=False)
    cli.ok("rebuild-projections")
    assert {l["name"] for l in cli.ok("stock", "MUG", "--all-stores")} == {"Mug, blue"}
    check_ok(cli)


def test_reorder_point_belongs_to_the_store_in_force_and_drives_stock_low(cli):
    cli.ok("add", "MUG", "10")
    cli.ok("add", "MUG", "3", "--store", "paris")
    cli.ok("add", "CUP", "1", "--store", "paris")
    cli.ok("remove", "CUP", "1", "--store", "paris")  # 0 available, but no reorder point
    answer = cli.ok("product", "set", "MUG", "--reorder-point", "5", "--store", "paris")
    assert (answer["store"], answer["reorder_point"]) == ("paris", 5)
    assert cli.line("MUG", "paris")["reorder_point"] == 5
    assert cli.line("MUG")["reorder_point"] is None

    low = cli.ok("stock", "--low", "--all-stores")
    assert [(l["store"], l["product"]) for l in low] == [("paris", "MUG")]
    assert set(low[0]) == STOCK_LINE_KEYS
    assert cli.ok("stock", "--low") == []  # store main: no line at or below its reorder point
    cli.ok("add", "MUG", "2", "--store", "paris")  # available 5 == reorder point: still low
    assert [l["store"] for l in cli.ok("stock", "--low", "--store", "paris")] == ["paris"]
    cli.ok("add", "MUG", "1", "--store", "paris")  # 6 > 5
    assert cli.ok("stock", "--low", "--all-stores") == []
    cli.ok("reserve", "MUG", "1", "--customer", "ann", "--store", "paris")  # available back to 5
    assert [l["product"] for l in cli.ok("stock", "--low", "--all-stores")] == ["MUG"]
    # Reorder point 0 flags a line that is sold out.
    cli.ok("product", "set", "CUP", "--reorder-point", "0", "--store", "paris")
    assert {l["product"] for l in cli.ok("stock", "--low", "--store", "paris")} == {"MUG", "CUP"}
    defined = [e for e in cli.history("MUG", "paris") if e["type"] == "ProductDefined"]
    assert len(defined) == 1
    cli.ok("rebuild-projections")
    assert {l["product"] for l in cli.ok("stock", "--low", "--store", "paris")} == {"MUG", "CUP"}
    check_ok(cli)


def test_stock_low_with_nothing_low_does_not_claim_there_is_no_stock(cli):
    cli.ok("add", "MUG", "10")
    cli.ok("product", "set", "MUG", "--reorder-point", "2")
    text = cli.ok("stock", "--low", json=False)
    assert "No stock recorded" not in text, text


def test_product_list_shows_names_and_reorder_points(cli):
    cli.ok("add", "MUG", "10")
    cli.ok("add", "CUP", "2", "--store", "paris")
    cli.ok("product", "set", "MUG", "--name", "Blue mug", "--reorder-point", "4")
    cli.ok("product", "set", "CUP", "--name", "Espresso cup", "--reorder-point", "1", "--store", "paris")
    assert cli.ok("product", "list") == [
        {"store": "main", "product": "MUG", "name": "Blue mug", "reorder_point": 4}]
    assert cli.ok("product", "list", "--all-stores") == [
        {"store": "main", "product": "MUG", "name": "Blue mug", "reorder_point": 4},
        {"store": "paris", "product": "CUP", "name": "Espresso cup", "reorder_point": 1},
    ]
    assert cli.ok("product", "list", "--store", "lyon") == []
    table = cli.ok("product", "list", "--all-stores", json=False)
    assert "Espresso cup" in table and "Blue mug" in table and "\x1b" not in table


@pytest.mark.parametrize("options", [
    (),
    ("--name", ""),
    ("--name", "x" * 201),
    ("--reorder-point", "-1"),
    ("--reorder-point", "1.5"),
    ("--reorder-point", "some"),
    ("--name", "Blue mug", "--reorder-point", "-1"),
])
def test_product_set_usage_errors(cli, options):
    cli.ok("add", "MUG", "10")
    cli.refused(2, "product", "set", "MUG", *options)
    assert cli.ok("product", "list") == [{"store": "main", "product": "MUG", "name": None, "reorder_point": None}]


def test_product_name_at_the_length_limit_is_accepted(cli):
    name = "n" * 200
    assert cli.ok("product", "set", "MUG", "--name", name)["name"] == name


def test_product_set_with_id_is_idempotent(cli):
    cli.ok("product", "set", "MUG", "--name", "Blue mug", "--id", "P-1")
    events = event_count(cli.db)
    cli.ok("product", "set", "MUG", "--name", "Blue mug", "--id", "P-1")
    assert event_count(cli.db) == events
    cli.refused(1, "product", "set", "MUG", "--name", "Red mug", "--id", "P-1")
    assert cli.line("MUG")["name"] == "Blue mug"


# -- import ------------------------------------------------------------------------------------


def write_file(path: Path, rows: list[dict] | str) -> Path:
    text = rows if isinstance(rows, str) else "".join(jsonlib.dumps(r) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
    return path


def test_import_ndjson_transfer_and_a_receive_of_it_in_the_same_file(cli, tmp_path):
    source = write_file(tmp_path / "moves.ndjson", [
        {"op": "add", "product": "MUG", "quantity": 10},
        {"op": "transfer", "product": "MUG", "quantity": 4, "from": "main", "to": "paris",
         "transfer_id": "T-A"},
        {"op": "receive", "transfer_id": "T-A", "quantity": 3},
        {"op": "transfer", "product": "MUG", "quantity": "2", "from": "main", "to": "lyon",
         "transfer_id": "T-B"},
    ])
    report = cli.ok("import", source)
    assert report == {"applied": 4, "duplicates": 0, "rejected": 0, "errors": []}
    rows = {r["transfer_id"]: r for r in cli.transfers()}
    assert (rows["T-A"]["received"], rows["T-A"]["lost"], rows["T-A"]["status"]) == (3, 1, "received")
    assert (rows["T-B"]["to"], rows["T-B"]["status"]) == ("lyon", "open")
    figures = {l["store"]: (l["on_hand"], l["incoming"]) for l in cli.ok("stock", "MUG", "--all-stores")}
    assert figures == {"main": (4, 0), "paris": (3, 0), "lyon": (0, 2)}
    assert [e["type"] for e in cli.history("MUG", "paris")] == [
        "TransferAnnounced", "TransferReceived", "TransferLost"]
    # Re-running the file: the transfers are duplicates by their ids; the rest is refused
    # (T-A is already received) and nothing is written.
    events = event_count(cli.db)
    again = cli.run("import", source)
    assert again.exit_code == 65 and event_count(cli.db) == events
    check_ok(cli)


def test_import_csv_transfer_and_receive(cli, tmp_path):
    cli.ok("add", "MUG", "10")
    source = write_file(tmp_path / "moves.csv", (
        "op,product,quantity,from,to,transfer_id,id\n"
        "transfer,MUG,4,main,paris,T-A,\n"
        "receive,,,,,T-A,K-1\n"
        "transfer,MUG,1,main,lyon,,K-2\n"
    ))
    assert cli.ok("import", source)["applied"] == 3
    rows = {r["transfer_id"]: r for r in cli.transfers()}
    assert set(rows) == {"T-A", "K-2"}  # an id alone names the transfer, as with --id
    assert (rows["T-A"]["received"], rows["T-A"]["lost"]) == (4, 0)
    assert rows["K-2"]["status"] == "open"
    assert cli.line("MUG", "paris")["on_hand"] == 4 and cli.line("MUG")["on_hand"] == 5


def test_import_csv_rerun_with_ids_is_all_duplicates(cli, tmp_path):
    cli.ok("add", "MUG", "10")
    source = write_file(tmp_path / "moves.csv", (
        "op,product,quantity,from,to,transfer_id,id\n"
        "transfer,MUG,4,main,paris,T-A,\n"
        "receive,,2,,,T-A,K-1\n"
    ))
    assert cli.ok("import", source)["applied"] == 2
    events = event_count(cli.db)
    assert cli.ok("import", source) == {"applied": 0, "duplicates": 2, "rejected": 0, "errors": []}
    assert event_count(cli.db) == events


def test_import_in_batches_receives_a_transfer_shipped_in_an_earlier_batch(cli, tmp_path):
    source = write_file(tmp_path / "moves.ndjson", [
        {"op": "add", "product": "MUG", "quantity": 10, "id": "A-1"},
        {"op": "transfer", "product": "MUG", "quantity": 4, "from": "main", "to": "paris", "id": "T-A"},
        {"op": "add", "product": "MUG", "quantity": 1, "id": "A-2"},
        {"op": "receive", "transfer_id": "T-A", "quantity": 4, "id": "K-1"},
    ])
    assert cli.ok("import", source, "--batch-size", "2")["applied"] == 4
    [row] = cli.transfers()
    assert (row["transfer_id"], row["received"], row["status"]) == ("T-A", 4, "received")
    assert cli.line("MUG", "paris")["on_hand"] == 4


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
def test_import_bad_transfer_rows_refuse_the_whole_file(cli, tmp_path, fmt):
    cli.ok("add", "MUG", "10")
    rows = [
        {"op": "add", "product": "MUG", "quantity": "5"},
        {"op": "transfer", "product": "MUG", "quantity": "1", "from": "main", "to": "main"},
        {"op": "transfer", "product": "MUG", "quantity": "2", "from": "main", "to": "paris", "transfer_id": "T-OK"},
        {"op": "receive", "transfer_id": "T-NOPE"},
        {"op": "transfer", "product": "MUG", "quantity": "99", "from": "main", "to": "paris"},
    ]
    if fmt == "ndjson":
        source = write_file(tmp_path / "bad.ndjson", rows)
        lines = [2, 4, 5]
    else:
        header = ["op", "product", "quantity", "from", "to", "transfer_id"]
        text = ",".join(header) + "\n" + "".join(
            ",".join(str(r.get(h, "")) for h in header) + "\n" for r in rows)
        source = write_file(tmp_path / "bad.csv", text)
        lines = [3, 5, 6]  # the header is line 1
    events = event_count(cli.db)
    result = cli.run("import", source)
    assert result.exit_code == 65, result.stderr
    report = jsonlib.loads(result.stdout)
    assert (report["applied"], report["rejected"]) == (0, 3)
    assert [e["line"] for e in report["errors"]] == lines
    assert "T-NOPE" in report["errors"][1]["error"]
    assert event_count(cli.db) == events
    assert cli.transfers() == [] and cli.line("MUG")["on_hand"] == 10
    people = cli.run("import", source, json=False)
    assert people.exit_code == 65
    for line in lines:
        assert f"line {line}" in people.stderr


def test_import_receive_of_a_transfer_already_received_is_a_bad_row(cli, tmp_path):
    cli.ok("add", "MUG", "10")
    cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris", "--id", "T-1")
    source = write_file(tmp_path / "r.ndjson", [
        {"op": "receive", "transfer_id": "T-1"},
        {"op": "receive", "transfer_id": "T-1", "quantity": 1},
    ])
    result = cli.run("import", source)
    assert result.exit_code == 65
    assert [e["line"] for e in jsonlib.loads(result.stdout)["errors"]] == [2]
    assert cli.transfers("--open")[0]["transfer_id"] == "T-1"


def test_import_transfer_row_with_an_unknown_field_is_bad(cli, tmp_path):
    cli.ok("add", "MUG", "10")
    source = write_file(tmp_path / "r.ndjson", [
        {"op": "transfer", "product": "MUG", "quantity": 1, "from": "main", "too": "paris"},
    ])
    result = cli.run("import", source)
    assert result.exit_code == 65
    [error] = jsonlib.loads(result.stdout)["errors"]
    assert error["line"] == 1 and "too" in error["error"]
    assert cli.transfers() == []


# -- the stock line --------------------------------------------------------------------------


def test_stock_lines_carry_the_store_operation_keys(cli):
    answer = cli.ok("add", "MUG", "10")
    assert set(answer) == STOCK_LINE_KEYS | {"position"}
    cli.ok("transfer", "MUG", "4", "--from", "main", "--to", "paris")
    for command in (("stock", "--all-stores"), ("replay", "--all-stores"), ("stock", "--low", "--all-stores")):
        for line in cli.ok(*command):
            assert set(line) == STOCK_LINE_KEYS, command
            assert line["available"] == line["on_hand"] - line["reserved"]
    paris = cli.line("MUG", "paris")
    assert (paris["name"], paris["reorder_point"], paris["incoming"]) == (None, None, 4)
    table = cli.ok("stock", "--all-stores", json=False)
    assert "incoming" in table and "paris" in table


# -- rebuilds of every projection -----------------------------------------------------------


def projection_rows(db: Path) -> dict[str, list[tuple]]:
    """Every projection's rows but event_counts': `metrics` fills that tally and a rebuild
    starts it again empty (tests/test_feed_metrics.py checks it)."""
    from inventory_cli.storage.sqlite.schema import PROJECTION_TABLES

    return {table: log_rows(db, f"SELECT * FROM {table} ORDER BY 1")
            for table in PROJECTION_TABLES if table != "event_counts"}


def every_kind_of_projection_row(cli: Cli) -> None:
    """Lines in two stores, reservations open/released/fulfilled, keys, names, reorder points,
    transfers open and settled: one row or more in every projection."""
    cli.ok("add", "MUG", "10", "--id", "K-1")
    cli.ok("add", "CUP", "5", "--store", "paris")
    for rid in ("R-1", "R-2", "R-3"):
        cli.ok("reserve", "MUG", "1", "--customer", f"c-{rid}", "--id", rid)
    cli.ok("release", "R-1")
    cli.ok("fulfill", "R-2")
    cli.ok("product", "set", "MUG", "--name", "Blue mug", "--reorder-point", "3")
    cli.ok("product", "set", "CUP", "--reorder-point", "1", "--store", "paris")
    cli.ok("transfer", "MUG", "2", "--from", "main", "--to", "paris", "--id", "T-1")
    cli.ok("transfer", "CUP", "2", "--from", "paris", "--to", "main", "--id", "T-2")
    cli.ok("receive", "T-2", "--quantity", "1")


def test_a_rebuild_gives_the_same_tables_with_the_stock_folded_beside_or_alone(cli, monkeypatch):
    from inventory_cli.storage.sqlite import projections

    every_kind_of_projection_row(cli)
    written = projection_rows(cli.db)
    assert all(written.values()), written
    cli.ok("rebuild-projections")  # stock lines folded by a second connection, in a thread
    assert projection_rows(cli.db) == written
    # When the second connection can't be used, the rebuild folds on its own connection.
    monkeypatch.setattr(projections, "fold_beside", lambda location, head: None)
    cli.ok("rebuild-projections")
    assert projection_rows(cli.db) == written
    check_ok(cli)


def test_a_schema_4_file_gains_the_rare_types_index_and_rebuilds_the_same(cli):
    from inventory_cli.storage.sqlite.schema import CURRENT_VERSION

    every_kind_of_projection_row(cli)
    written = projection_rows(cli.db)
    conn = sqlite3.connect(cli.db)  # exactly what schema 4 was: no partial index
    conn.execute("DROP INDEX events_of_rare_types")
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    assert cli.ok("stock", "MUG")[0]["name"] == "Blue mug"  # opening it migrates it
    assert log_rows(cli.db, "PRAGMA user_version") == [(CURRENT_VERSION,)]
    assert log_rows(cli.db, "SELECT name FROM sqlite_master WHERE type = 'index'"
                    " AND tbl_name = 'events' AND name = 'events_of_rare_types'") == [("events_of_rare_types",)]
    cli.ok("rebuild-projections")
    assert projection_rows(cli.db) == written
    check_ok(cli)
