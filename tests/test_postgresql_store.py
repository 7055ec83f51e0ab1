"""The PostgreSQL backend against the real server: the same log, hashes and projections as
SQLite for the same commands; append-only; schemas that are not ours are left alone."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from inventory_cli.application.commands import (
    AddStock,
    CountStock,
    DefineProduct,
    FulfillReservation,
    ReceiveTransfer,
    ReleaseReservation,
    RemoveStock,
    ReserveStock,
    TransferStock,
)
from inventory_cli.application.handlers import run_command
from inventory_cli.application.importer import SourceRow, run_import
from inventory_cli.domain.errors import RuleViolation
from inventory_cli.storage.empty import EmptyStore
from inventory_cli.storage.errors import StorageBusy, StorageError
from inventory_cli.storage.postgresql.store import open_store as open_pg
from inventory_cli.storage.sqlite import open_store as open_sqlite
from pg_fixtures import PgSchema, fresh_schema, pg_schema, pg_url  # noqa: F401  (fixtures)

COMMANDS = [
    AddStock("main", "A", 10),
    AddStock("main", "B", 4, reason="returned", key="k-add"),
    AddStock("main", "B", 4, reason="returned", key="k-add"),  # a duplicate: no event
    RemoveStock("main", "A", 3),
    ReserveStock("main", "A", 2, "ann", reservation_id="R1"),
    ReserveStock("main", "A", 1, "bob", reservation_id="R2", ttl_seconds=60),
    ReleaseReservation("R1"),
    FulfillReservation("R2"),
    DefineProduct("main", "A", name="Widget ü", reorder_point=3),
    TransferStock("A", 3, "main", "north", transfer_id="T1"),
    ReceiveTransfer("T1", 2),
    CountStock("main", "B", 7, key="count-1"),
    AddStock("nörd", "Ü;'%", 1),
]

EVENTS = 14  # the duplicate adds none; the partial receipt adds two (received, lost)


class Clock:
    """Increasing, reproducible times: both backends record the same instants."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)

    def __call__(self) -> str:
        self.moment += timedelta(seconds=1)
        return self.moment.isoformat(timespec="microseconds")


def apply_all(store) -> None:
    clock = Clock()
    for command in COMMANDS:
        run_command(store, command, "tester", clock=clock)


def log_of(store) -> list[tuple]:
    return [tuple(recorded) for recorded in store.read_log()]


@pytest.fixture
def both(pg_url: str, tmp_path: Path):
    """The same commands applied to a SQLite file and to a PostgreSQL schema."""
    sqlite = open_sqlite(str(tmp_path / "inv.db"), create=True)
    pg = open_pg(pg_url, create=True)
    apply_all(sqlite)
    apply_all(pg)
    yield sqlite, pg
    sqlite.close()
    pg.close()


def test_the_log_and_its_hash_chain_are_the_same_on_both_backends(both) -> None:
    sqlite, pg = both
    assert log_of(pg) == log_of(sqlite)
    assert [r.position for r in pg.read_log()] == list(range(1, EVENTS + 1))
    report = pg.verify_chain()
    assert report == sqlite.verify_chain()
    assert report.first_bad_position is None and report.events == EVENTS
    assert pg.verify_chain((5, report.head_hash)).anchor_ok is False
    fifth = next(r for r in pg.read_log() if r.position == 5)
    assert pg.verify_chain((5, fifth.hash)).anchor_ok is True


def test_reads_answer_as_on_sqlite(both) -> None:
    sqlite, pg = both
    assert pg.stock_lines(None, None) == sqlite.stock_lines(None, None)
    assert pg.stock_lines("main", None, low=True) == sqlite.stock_lines("main", None, low=True)
    assert pg.transfers(open_only=False) == sqlite.transfers(open_only=False)
    assert pg.open_reservations(None, None) == sqlite.open_reservations(None, None)
    assert pg.product_name("A") == "Widget ü"
    for position in (1, 4, 9, EVENTS):
        assert pg.replay_lines(None, None, until_position=position, until_time=None) == (
            sqlite.replay_lines(None, None, until_position=position, until_time=None)
        )
    assert pg.replay_lines("main", "A", until_position=None, until_time="2026-11-02T08:00:05.000000+00:00") == (
        sqlite.replay_lines("main", "A", until_position=None, until_time="2026-11-02T08:00:05.000000+00:00")
    )
    stream = pg.stream("main", "A", create=False)
    assert [tuple(e) for e in pg.read_stream(stream.stream_id)] == [
        tuple(e) for e in sqlite.read_stream(sqlite.stream("main", "A", create=False).stream_id)
    ]


def test_check_finds_a_changed_projection_and_rebuild_repairs_it(both, pg_schema: PgSchema) -> None:
    sqlite, pg = both
    assert pg.check_projections().differences == []
    pg_schema.sql("UPDATE stock SET on_hand = 999 WHERE product = 'A' AND store = 'main'")
    pg_schema.sql("DELETE FROM products")
    differences = pg.check_projections().differences
    assert {(d["table"], d["key"]) for d in differences} >= {("products", "A")}
    assert any(d["table"] == "stock" and d["actual"]["on_hand"] == 999 for d in differences)
    report = pg.rebuild_projections()
    assert (report.events, report.streams) == (EVENTS, 4)
    assert pg.check_projections().differences == []
    assert pg.stock_lines(None, None) == sqlite.stock_lines(None, None)


def test_a_refused_command_writes_nothing(pg_url: str) -> None:
    pg = open_pg(pg_url, create=True)
    run_command(pg, AddStock("main", "A", 2))
    with pytest.raises(RuleViolation):
        run_command(pg, RemoveStock("main", "A", 3))
    assert len(log_of(pg)) == 1
    assert pg.stock_lines(None, None)[0].on_hand == 2
    pg.close()


def test_the_log_refuses_update_delete_and_truncate_for_every_role(both, pg_schema: PgSchema) -> None:
    for statement in (
        "UPDATE events SET quantity = 1000 WHERE position = 1",
        f"DELETE FROM events WHERE position = {EVENTS}",
        "TRUNCATE events CASCADE",
        "UPDATE streams SET store = 'x'",
        "DELETE FROM streams",
        "TRUNCATE streams CASCADE",
    ):
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            pg_schema.sql(statement)  # as the superuser, even
    assert both[1].verify_chain().events == EVENTS


def test_verify_names_the_first_changed_event(both, pg_schema: PgSchema) -> None:
    pg_schema.sql("ALTER TABLE events DISABLE TRIGGER events_refuse_change")
    pg_schema.sql("UPDATE events SET quantity = quantity + 1 WHERE position = 4")
    assert both[1].verify_chain().first_bad_position == 4


def test_an_import_is_gap_free_and_all_or_nothing(pg_url: str) -> None:
    pg = open_pg(pg_url, create=True)
    rows = [SourceRow(i + 1, json.dumps({"op": "add", "product": f"P{i % 7}", "quantity": 2, "id": f"i{i}"}))
            for i in range(300)]
    report = run_import(pg, rows, default_store="main")
    assert report.applied == 300
    bad = [SourceRow(1, json.dumps({"op": "add", "product": "Q", "quantity": 1})),
           SourceRow(2, json.dumps({"op": "remove", "product": "Q", "quantity": 5}))]
    assert run_import(pg, bad, default_store="main").rejected == 1
    assert [r.position for r in pg.read_log()] == list(range(1, 301))
    assert sum(line.on_hand for line in pg.stock_lines(None, None)) == 600
    assert pg.check_projections().differences == []
    pg.close()


def _mixed_rows(count: int) -> list[SourceRow]:
    """Import rows of every kind that touch the log: keyed and not, reservations, a
    transfer, a name, non-ASCII codes and text that COPY must escape."""
    rows: list[dict] = [{"op": "add", "product": "Ü;\\t'%", "quantity": 50, "user": "back\\slash"}]
    rows += [{"op": "add", "product": f"P{n}", "quantity": 1000} for n in range(37)]
    rows += [{"op": "transfer", "product": "Ü;\\t'%", "quantity": 5, "from": "main", "to": "nörd",
              "transfer_id": "T1"},
             {"op": "receive", "transfer_id": "T1", "quantity": 4}]
    for i in range(count - len(rows)):
        product = f"P{i % 37}"
        if i % 10 == 3:
            rows.append({"op": "reserve", "product": product, "quantity": 1, "customer": "c",
                         "reservation_id": f"R{i}"})
        elif i % 10 == 4 and i > 10:
            rows.append({"op": "fulfill" if i % 20 == 4 else "release", "reservation_id": f"R{i - 1}"})
        elif i % 10 == 7:
            rows.append({"op": "remove", "product": product, "quantity": 1, "id": f"rm{i}"})
        else:
            rows.append({"op": "add", "product": product, "quantity": 3, **({"id": f"a{i}"} if i % 2 else {})})
    return [SourceRow(n, json.dumps(row, ensure_ascii=False)) for n, row in enumerate(rows, 1)]


def test_a_long_import_logs_and_chains_as_on_sqlite(pg_url: str, tmp_path: Path) -> None:
    """More than one flush: the first is COPYed (a big one), the last goes through the
    server's append function; positions, fields and hashes are SQLite's."""
    from inventory_cli.application.importer import FLUSH_EVERY

    rows = _mixed_rows(FLUSH_EVERY + 300)
    sqlite = open_sqlite(str(tmp_path / "inv.db"), create=True)
    pg = open_pg(pg_url, create=True)
    run_command(sqlite, AddStock("main", "before", 1), clock=Clock())
    run_command(pg, AddStock("main", "before", 1), clock=Clock())
    for store in (sqlite, pg):
        report = run_import(store, rows, default_store="main", actor="tester", clock=Clock())
        assert (report.applied, report.rejected) == (len(rows), 0), report.errors
    assert log_of(pg) == log_of(sqlite)
    assert [r.position for r in pg.read_log()] == list(range(1, pg.head_position() + 1))
    assert pg.verify_chain() == sqlite.verify_chain()
    assert pg.verify_chain().first_bad_position is None
    assert pg.check_projections().differences == []
    assert pg.stock_lines(None, None) == sqlite.stock_lines(None, None)
    keyed = [row for row in rows if '"id"' in row.content]  # type: ignore[operator]
    head = pg.head_position()
    again = run_import(pg, keyed, default_store="main", actor="tester", clock=Clock())
    assert (again.applied, again.duplicates, pg.head_position()) == (0, len(keyed), head)
    sqlite.close()
    pg.close()


def test_a_copied_flush_that_meets_a_key_another_writer_stored_writes_nothing(pg_url: str) -> None:
    """The race a key look-up cannot close: another import stored the key after this one
    looked. The COPY is refused, the whole import rolls back, the store goes on working."""
    from inventory_cli.application.importer import FLUSH_EVERY
    from inventory_cli.storage.errors import ConcurrencyConflict

    pg = open_pg(pg_url, create=True)
    rows = [SourceRow(i + 1, json.dumps({"op": "add", "product": f"P{i % 7}", "quantity": 1, "id": f"k{i}"}))
            for i in range(FLUSH_EVERY)]
    assert run_import(pg, rows[-1:], default_store="main").applied == 1  # k4999 is stored
    pg.find_keys = lambda keys: {}  # type: ignore[method-assign]  # looked before it was
    with pytest.raises(ConcurrencyConflict):
        run_import(pg, rows, default_store="main")
    del pg.find_keys
    assert pg.head_position() == 1 and pg.verify_chain().first_bad_position is None
    assert run_import(pg, rows, default_store="main").applied == FLUSH_EVERY - 1
    assert [r.position for r in pg.read_log()] == list(range(1, FLUSH_EVERY + 1))
    pg.close()


def test_a_schema_without_our_tables_answers_empty_and_is_not_created(pg_schema: PgSchema) -> None:
    empty = open_pg(pg_schema.url, create=False)
    assert isinstance(empty, EmptyStore) and empty.stock_lines(None, None) == [] and empty.head_position() == 0
    assert pg_schema.sql("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (pg_schema.name,)) == [(0,)]
    missing = pg_schema.url.replace(pg_schema.name, pg_schema.name + "_none")
    assert isinstance(open_pg(missing, create=False), EmptyStore)


def test_tables_of_another_application_are_refused_and_left_alone(pg_schema: PgSchema) -> None:
    pg_schema.sql("CREATE TABLE events (id int)")
    pg_schema.sql("INSERT INTO events VALUES (7)")
    for create in (False, True):
        with pytest.raises(StorageError, match="another application"):
            open_pg(pg_schema.url, create=create)
    assert pg_schema.sql("SELECT * FROM events") == [(7,)]


def test_a_newer_schema_is_refused_and_left_alone(pg_url: str, pg_schema: PgSchema) -> None:
    open_pg(pg_url, create=True).close()
    pg_schema.sql("UPDATE inventory_schema SET version = 99")
    with pytest.raises(StorageError, match="newer version"):
        open_pg(pg_url, create=True)
    assert pg_schema.sql("SELECT version FROM inventory_schema") == [(99,)]


def test_an_unreachable_server_is_temporary() -> None:
    with pytest.raises(StorageBusy, match="could not be reached"):
        open_pg("postgresql://postgres:secret@127.0.0.1:1/test", create=False, busy_timeout=0.3)


def test_an_unknown_database_is_not_temporary_and_hides_the_password() -> None:
    with pytest.raises(StorageError, match="does not exist") as caught:
        open_pg("postgresql://postgres:secret@127.0.0.1:5432/no_such_db", create=False, busy_timeout=5)
    assert "secret" not in str(caught.value)


def _exported(store) -> list[str]:
    from inventory_cli.cli import render

    return [json.dumps(render.export_json(r), ensure_ascii=False) for r in store.read_log()]


def test_restore_keeps_every_field_and_the_head_hash_and_builds_the_projections(both) -> None:
    from inventory_cli.application.restore import checked_events

    sqlite, _ = both
    with fresh_schema() as schema:
        target = open_pg(schema.url, create=True)
        assert target.restore(checked_events(_exported(sqlite))) == EVENTS
        assert log_of(target) == log_of(sqlite)
        assert target.verify_chain() == sqlite.verify_chain()
        assert target.check_projections().differences == []
        assert target.stock_lines(None, None) == sqlite.stock_lines(None, None)
        # A keyed command repeated after the move changes nothing.
        again = run_command(target, AddStock("main", "B", 4, reason="returned", key="k-add"))
        assert again.duplicate and target.head_position() == EVENTS
        run_command(target, AddStock("main", "B", 1))  # new streams and events follow on
        assert target.verify_chain().first_bad_position is None
        with pytest.raises(RuleViolation, match="already has events"):
            target.restore(checked_events(_exported(sqlite)))
        target.close()


@pytest.mark.parametrize("damage", ["gap", "hash", "garbage"])
def test_restore_refuses_a_broken_stream_and_writes_nothing(both, damage) -> None:
    from inventory_cli.application.restore import BrokenStream, checked_events

    sqlite, _ = both
    lines = _exported(sqlite)
    if damage == "gap":
        del lines[5]
    elif damage == "hash":
        lines[8] = lines[8].replace('"quantity": 3', '"quantity": 4', 1)
    else:
        lines[8] = "{not json"
    with fresh_schema() as schema:  # the one `both` wrote to has events
        target = open_pg(schema.url, create=True)
        with pytest.raises(BrokenStream, match="line (6|9)"):
            target.restore(checked_events(lines))
        assert target.head_position() == 0 and target.stock_lines(None, None) == []
        target.close()

