"""Aggregate snapshots: a snapshot and the events after it give what folding every event gives;
a corrupt or stale snapshot is ignored by writers and reported by verify and --check;
rebuild-projections rebuilds them; reading the past gives the same answers with or without them."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import data
from test_replay import Clock, commands, read_log, run_history
from inventory_cli.application import queries
from inventory_cli.application.commands import AddStock, CountStock
from inventory_cli.application.handlers import run_command
from inventory_cli.domain.errors import RuleViolation
from inventory_cli.domain.inventory import Inventory
from inventory_cli.domain.snapshots import SNAPSHOT_EVERY, restore, snapshot_state, snapshot_text
from inventory_cli.storage.sqlite import open_store


def whole_state(inventory: Inventory) -> tuple:
    return (snapshot_state(inventory), dict(inventory.open), dict(inventory.expected),
            set(inventory.received), inventory.expiring)


def past_answers(store, streams) -> list:
    """history, and replay at every position, of each stream: what time travel answers."""
    answers = []
    head = store.head_position()
    for store_code, product in streams:
        answers.append([(e.recorded.position, e.on_hand, e.reserved)
                        for e in queries.history(store, store_code, product)])
        for position in range(1, head + 1):
            answers.append(store.replay_lines(store_code, product, until_position=position, until_time=None))
    return answers


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands, min_size=8, max_size=40), st.data())
def test_a_snapshot_and_the_events_after_it_are_the_full_fold(history, draw):
    with tempfile.TemporaryDirectory() as folder:
        path, plain = Path(folder) / "inv.db", Path(folder) / "plain.db"
        run_history(path, history)
        log = read_log(path)
        streams = sorted({(row[1], row[2]) for row in log})
        if not streams:  # every command was refused: nothing to snapshot
            return
        shutil.copyfile(path, plain)  # the same log, never given a snapshot
        store = open_store(str(path), create=False)
        try:
            before = past_answers(store, streams)
            points = {}
            with store.write():
                for store_code, product in streams:
                    events = [row[3] for row in log if (row[1], row[2]) == (store_code, product)]
                    point = draw.draw(st.integers(min_value=1, max_value=len(events)))
                    points[store_code, product] = (point, events)
                    prefix = Inventory.from_events(store_code, product, events[:point])
                    info = store.stream(store_code, product, create=False)
                    store.write_snapshots([(info.stream_id, point, snapshot_text(prefix))])
            for (store_code, product), (point, events) in points.items():
                loaded = store.load_stream(store_code, product)
                assert loaded.snapshot_version == point and loaded.events == events[point:]
                restored = restore(store_code, product, loaded.snapshot)
                for event in loaded.events:
                    restored.apply(event)
                full = Inventory.from_events(store_code, product, events)
                assert whole_state(restored) == whole_state(full)
            assert store.check_projections().differences == []
            assert past_answers(store, streams) == before
        finally:
            store.close()
        # The next commands decide the same with the snapshots as without them.
        for command in [AddStock(*streams[0], 3), CountStock(*streams[-1], 50)]:
            answers = []
            for db in (path, plain):
                store = open_store(str(db), create=False)
                try:
                    answers.append(run_command(store, command, clock=Clock()).line)
                except RuleViolation as refusal:
                    answers.append(str(refusal))
                finally:
                    store.close()
            assert answers[0] == answers[1]


def test_every_part_of_the_state_survives_a_snapshot():
    inventory = Inventory("main", "A")
    inventory.add(20, "received")
    inventory.reserve(2, "R1", "c1", "2030-01-01T00:00:00+00:00")
    inventory.reserve(3, "R2", "c2")
    inventory.fulfill("R2")
    inventory.announce(5, "T1", "north")
    inventory.announce(4, "T2", "north")
    inventory.receive("T2", 4)
    inventory.define("Apple", 7)
    restored = restore("main", "A", snapshot_text(inventory))
    assert whole_state(restored) == whole_state(inventory)
    assert restored.overdue("2031-01-01") == inventory.overdue("2031-01-01")
    assert restore("main", "A", '{"format": 99}') is None and restore("main", "A", "[") is None


# -- through the CLI, on a stream long enough to get snapshots written --------------------


def long_stream_rows(count: int) -> str:
    rows = [{"op": "add", "product": "HOT", "quantity": 10}]
    for i in range(1, count):
        if i % 5 == 0:
            rows.append({"op": "reserve", "product": "HOT", "quantity": 1, "reservation_id": f"R{i}",
                         "customer": "c"})
        elif i % 5 == 1 and i > 10:
            rows.append({"op": "fulfill", "reservation_id": f"R{i - 6}"})
        else:
            rows.append({"op": "add", "product": "HOT", "quantity": 2})
    return "".join(json.dumps(row) + "\n" for row in rows)


def snapshots(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT stream_id, version, state FROM snapshots").fetchall()
    finally:
        conn.close()


def sql(path: Path, statement: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


def test_a_long_stream_gets_a_snapshot_and_commands_answer_as_without_it(invoke, db_path, tmp_path):
    source = tmp_path / "rows.ndjson"
    source.write_text(long_stream_rows(SNAPSHOT_EVERY + 500))
    assert invoke("import", source, "-q", json=False).exit_code == 0
    [(_, version, state)] = snapshots(db_path)
    assert version == SNAPSHOT_EVERY + 500 and json.loads(state)["open"]
    plain = tmp_path / "plain.db"
    shutil.copyfile(db_path, plain)
    sql(plain, "DELETE FROM snapshots")
    for args in (["history", "HOT"], ["replay", "HOT", "--position", "700"],
                 ["replay", "HOT", "--until", "2999-01-01"], ["export"]):
        mine, theirs = invoke(*args, json=args[0] != "export"), invoke(*args, json=args[0] != "export", db=plain)
        assert mine.exit_code == 0 and mine.stdout.replace(str(plain), "") == theirs.stdout.replace(str(plain), "")
    for args in (["add", "HOT", "1"], ["reserve", "HOT", "2", "--id", "NEW"], ["fulfill", "R1495"],
                 ["release", "NEW"], ["fulfill", "R5"], ["stock", "HOT"]):
        with_snapshot, without = invoke(*args), invoke(*args, db=plain)
        assert (with_snapshot.exit_code, with_snapshot.stderr) == (without.exit_code, without.stderr)
        if with_snapshot.exit_code == 0:
            mine, theirs = data(with_snapshot), data(without)
            for answer in (mine, theirs):
                for line in answer if isinstance(answer, list) else [answer]:
                    line.pop("updated_at")
            assert mine == theirs
    assert data(invoke("verify"))["ok"] is True


def test_an_edited_or_stale_snapshot_is_ignored_and_reported(invoke, db_path, tmp_path):
    source = tmp_path / "rows.ndjson"
    source.write_text(long_stream_rows(SNAPSHOT_EVERY + 10))
    assert invoke("import", source, "-q", json=False).exit_code == 0
    truth = data(invoke("stock", "HOT"))[0]
    for tamper in (
        # the state edited in the file
        "UPDATE snapshots SET state = replace(state, '\"on_hand\":', '\"on_hand\":9')",
        # a snapshot that claims to be of an earlier version than it folded
        "UPDATE snapshots SET version = version - 3",
        # a state this code cannot read
        "UPDATE snapshots SET state = 'not json'",
    ):
        sql(db_path, tamper)
        verified = invoke("verify")
        assert verified.exit_code == 1 and data(verified)["projections_ok"] is False
        checked = invoke("rebuild-projections", "--check")
        assert checked.exit_code == 1
        assert [d["table"] for d in data(checked)["differences"]] == ["snapshots"]
        assert data(invoke("stock", "HOT"))[0] == truth  # readers never used it
        added = data(invoke("add", "HOT", "1"))  # the writer folds from the start
        truth = {**truth, "on_hand": truth["on_hand"] + 1, "available": truth["available"] + 1,
                 "version": truth["version"] + 1, "updated_at": added["updated_at"]}
        assert {k: v for k, v in added.items() if k != "position"} == truth
        assert invoke("rebuild-projections", json=False).exit_code == 0
        assert data(invoke("verify"))["ok"] is True
        [(_, version, _)] = snapshots(db_path)
        assert version == truth["version"]


def test_rebuild_writes_the_snapshots_of_long_streams(invoke, db_path, tmp_path):
    source = tmp_path / "rows.ndjson"
    source.write_text(long_stream_rows(SNAPSHOT_EVERY + 10) + '{"op": "add", "product": "SHORT", "quantity": 1}\n')
    assert invoke("import", source, "-q", json=False).exit_code == 0
    written = snapshots(db_path)
    sql(db_path, "DELETE FROM snapshots")
    assert data(invoke("rebuild-projections", "--check"))["ok"] is True  # a missing one is no error
    assert invoke("rebuild-projections", json=False).exit_code == 0
    assert snapshots(db_path) == written  # only the long stream, at its last event


def test_rebuild_writes_the_same_snapshots_without_a_second_connection(invoke, db_path, tmp_path, monkeypatch):
    from inventory_cli.storage.sqlite import projections

    source = tmp_path / "rows.ndjson"
    source.write_text(long_stream_rows(SNAPSHOT_EVERY + 10) + '{"op": "add", "product": "SHORT", "quantity": 1}\n')
    assert invoke("import", source, "-q", json=False).exit_code == 0
    written = snapshots(db_path)
    sql(db_path, "DELETE FROM snapshots")
    monkeypatch.setattr(projections, "fold_beside", lambda location, head: None)
    assert invoke("rebuild-projections", json=False).exit_code == 0
    assert snapshots(db_path) == written
