"""Time travel and projections: everything read from the projections or replayed from the
log agrees with folding the log with the domain aggregate."""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import data
from inventory_cli.application import queries
from inventory_cli.application.commands import (
    AddStock,
    CountStock,
    FulfillReservation,
    ReleaseReservation,
    RemoveStock,
    ReserveStock,
)
from inventory_cli.application.handlers import run_command
from inventory_cli.domain.errors import RuleViolation
from inventory_cli.domain.events import event_from_record
from inventory_cli.domain.inventory import Inventory
from inventory_cli.storage.sqlite import open_store
from inventory_cli.timestamps import format_utc

STREAMS = [("main", "A"), ("main", "B"), ("north", "A"), ("nörd", "Ü;'%")]
RIDS = ["R1", "R2", "R3", "R4", "R5"]
KEYS = [None, None, None, "K1", "K2", "K3"]

qty = st.integers(min_value=1, max_value=8)
stream = st.sampled_from(STREAMS)
key = st.sampled_from(KEYS)
add = st.builds(lambda s, q, k: AddStock(*s, q, key=k), stream, qty, key)
commands = st.one_of(
    add,
    add,  # twice as likely, so that later commands often have stock to act on
    st.builds(lambda s, q, k: RemoveStock(*s, q, key=k), stream, qty, key),
    st.builds(lambda s, q, c, r: ReserveStock(*s, q, c, reservation_id=r), stream, qty,
              st.sampled_from(["c1", "c2"]), st.sampled_from(RIDS + [None])),
    st.builds(lambda r, k: ReleaseReservation(r, key=k), st.sampled_from(RIDS), key),
    st.builds(lambda r: FulfillReservation(r), st.sampled_from(RIDS)),
    st.builds(lambda s, q, k: CountStock(*s, q, key=k), stream,
              st.integers(min_value=0, max_value=12), key),
)


class Clock:
    """Distinct, increasing recorded times one second apart, so --until can cut between them."""

    def __init__(self) -> None:
        self.start = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)
        self.ticks = 0

    def __call__(self) -> str:
        self.ticks += 1
        return format_utc(self.start + timedelta(seconds=self.ticks))


def read_log(path: Path) -> list[tuple]:
    """The log through a plain sqlite3 connection: (position, store, product, event, occurred_at, recorded_at)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT e.position, s.store, s.product, e.type, e.quantity, e.data, e.occurred_at,"
            " e.recorded_at, e.version FROM events AS e JOIN streams AS s USING (stream_id)"
            " ORDER BY e.position"
        ).fetchall()
    finally:
        conn.close()
    return [(p, st_, pr, event_from_record(t, q, json.loads(d)), occ, rec, v)
            for p, st_, pr, t, q, d, occ, rec, v in rows]


def fold(log, *, position: int | None = None, until: str | None = None):
    """Stock lines computed by folding a prefix of the log with the domain aggregate."""
    inventories: dict[tuple[str, str], Inventory] = {}
    updated: dict[tuple[str, str], str] = {}
    for pos, store, product, event, occurred_at, recorded_at, version in log:
        if position is not None and pos > position:
            break
        if until is not None and occurred_at > until:
            continue
        inventory = inventories.setdefault((store, product), Inventory(store, product))
        inventory.apply(event)
        assert inventory.version == version
        updated[(store, product)] = recorded_at
    return [
        (store, product, inv.on_hand, inv.reserved, inv.version, updated[(store, product)])
        for (store, product), inv in sorted(inventories.items())
    ], inventories


def as_tuples(lines) -> list[tuple]:
    return [(l.store, l.product, l.on_hand, l.reserved, l.version, l.updated_at) for l in lines]


def run_history(path: Path, history) -> None:
    store = open_store(str(path), create=True)
    clock = Clock()
    try:
        for command in history:
            head = store.head_position()
            try:
                result = run_command(store, command, clock=clock)
            except RuleViolation:
                assert store.head_position() == head  # a refusal writes nothing
            else:
                assert store.head_position() == (head if result.duplicate else head + 1)
                assert 0 <= result.line.reserved <= result.line.on_hand
    finally:
        store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands, min_size=8, max_size=50))
def test_replay_projections_and_rebuild_agree_with_the_fold(history):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "inv.db"
        run_history(path, history)
        check_read_side_against_the_fold(path)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_long_seeded_histories_agree_with_the_fold(tmp_path, seed):
    path = tmp_path / "inv.db"
    run_history(path, seeded_history(seed, length=400))
    assert len(read_log(path)) > 150
    check_read_side_against_the_fold(path)


def check_read_side_against_the_fold(path: Path) -> None:
    log = read_log(path)
    store = open_store(str(path), create=False)
    assert store is not None
    try:
        assert [row[0] for row in log] == list(range(1, len(log) + 1))
        # Replay at every position is the fold of that prefix (also per store and product).
        for position in range(0, len(log) + 1):
            expected, _ = fold(log, position=position)
            assert as_tuples(queries.replay(store, None, None, position=position)) == expected
            for store_code, product in STREAMS[::3]:
                assert as_tuples(queries.replay(store, store_code, product, position=position)) == [
                    line for line in expected if line[:2] == (store_code, product)]
        # Replay until a time is the fold of the events that occurred by then.
        for _, _, _, _, occurred_at, _, _ in log:
            assert as_tuples(queries.replay(store, None, None, until=occurred_at)) == fold(
                log, until=occurred_at)[0]
        # Replay of now, the projections and the fold are one and the same.
        now, inventories = fold(log)
        assert as_tuples(queries.replay(store, None, None)) == now
        assert as_tuples(queries.stock(store, None, None)) == now
        for store_code in {s for s, _ in STREAMS}:
            assert as_tuples(queries.stock(store, store_code, None)) == [
                line for line in now if line[0] == store_code]
        assert_reservations_match(path, inventories)
        assert store.check_projections().differences == []
        # A rebuild changes nothing a user can see.
        report = store.rebuild_projections()
        assert (report.events, report.differences) == (len(log), [])
        assert as_tuples(queries.stock(store, None, None)) == now
        assert store.check_projections().differences == []
        assert_reservations_match(path, inventories)
    finally:
        store.close()


def assert_reservations_match(path: Path, inventories: dict) -> None:
    expected = {}
    for inv in inventories.values():
        for rid, reservation in inv.open.items():
            expected[rid] = ("open", reservation.quantity, reservation.customer, inv.store, inv.product)
        for rid, status in inv.closed.items():
            expected[rid] = (status, None, None, inv.store, inv.product)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT r.reservation_id, r.status, r.quantity, r.customer, s.store, s.product"
            " FROM reservations AS r JOIN streams AS s USING (stream_id)"
        ).fetchall()
    finally:
        conn.close()
    actual = {rid: (status, q if status == "open" else None, c if status == "open" else None, s, p)
              for rid, status, q, c, s, p in rows}
    assert actual == expected


@settings(max_examples=15, deadline=None)
@given(st.lists(commands, min_size=8, max_size=40))
def test_history_balances_are_the_running_fold(history):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "inv.db"
        run_history(path, history)
        log = read_log(path)
        store = open_store(str(path), create=False)
        assert store is not None
        try:
            by_stream = defaultdict(list)
            for row in log:
                by_stream[(row[1], row[2])].append(row)
            for (store_code, product), rows in by_stream.items():
                entries = queries.history(store, store_code, product)
                assert [e.recorded.position for e in entries] == [r[0] for r in rows]
                inventory = Inventory(store_code, product)
                for entry, row in zip(entries, rows):
                    inventory.apply(row[3])
                    assert entry.recorded.event == row[3]
                    assert (entry.on_hand, entry.reserved) == (inventory.on_hand, inventory.reserved)
                    assert 0 <= entry.reserved <= entry.on_hand
        finally:
            store.close()


def seeded_history(seed: int, length: int):
    rng = random.Random(seed)
    return [commands_example(rng) for _ in range(length)]


def commands_example(rng):
    s = rng.choice(STREAMS)
    q = rng.randint(1, 8)
    k = rng.choice([None, None, f"K{rng.randrange(150)}"])  # duplicates and conflicts happen
    kind = rng.randrange(6)
    if kind == 0:
        return AddStock(*s, q + 3, key=k)
    if kind == 1:
        return RemoveStock(*s, q, key=k)
    if kind == 2:
        return ReserveStock(*s, q, "c1", reservation_id=rng.choice(RIDS + [None] * 5))
    if kind == 3:
        return ReleaseReservation(rng.choice(RIDS), key=k)
    if kind == 4:
        return FulfillReservation(rng.choice(RIDS), key=k)
    return CountStock(*s, rng.randint(0, 15), key=k)


def test_tampered_projections_are_reported_and_rebuilt(invoke, tmp_path):
    path = tmp_path / "inv.db"
    run_history(path, seeded_history(seed=7, length=200))
    before = data(invoke("stock", "--all-stores", db=path))
    assert before, "the seeded history wrote nothing"
    check = invoke("rebuild-projections", "--check", db=path)
    assert check.exit_code == 0 and data(check)["ok"] is True

    conn = sqlite3.connect(path)
    conn.execute("UPDATE stock SET on_hand = on_hand + 1")
    conn.commit()
    conn.close()

    store = open_store(str(path), create=False)
    try:
        differences = store.check_projections().differences
    finally:
        store.close()
    assert len(differences) == len(before)
    assert {d["table"] for d in differences} == {"stock"}

    check = invoke("rebuild-projections", "--check", db=path)
    assert check.exit_code == 1
    report = data(check)  # --check prints its document whatever the exit code
    assert report["ok"] is False and len(report["differences"]) == len(before)
    people = invoke("rebuild-projections", "--check", db=path, json=False)
    assert people.exit_code == 1 and people.stdout.strip()
    # --check only compares: the tampered figures are still there.
    assert [l["on_hand"] for l in data(invoke("stock", "--all-stores", db=path))] == [
        l["on_hand"] + 1 for l in before]

    assert invoke("rebuild-projections", db=path).exit_code == 0
    assert data(invoke("stock", "--all-stores", db=path)) == before
    assert invoke("rebuild-projections", "--check", db=path).exit_code == 0


def test_tampered_reservations_and_keys_are_reported(invoke, tmp_path):
    path = tmp_path / "inv.db"
    first_add = data(invoke("add", "SKU", "5", "--id", "K1", db=path))
    first_reserve = data(invoke("reserve", "SKU", "2", "--customer", "c", "--id", "R1", db=path))
    conn = sqlite3.connect(path)
    conn.execute("UPDATE reservations SET status = 'released'")
    conn.execute("DELETE FROM idempotency_keys")
    conn.commit()
    conn.close()
    report = data(invoke("rebuild-projections", "--check", db=path))
    assert {d["table"] for d in report["differences"]} == {"reservations", "idempotency_keys"}
    assert invoke("rebuild-projections", db=path).exit_code == 0
    assert invoke("rebuild-projections", "--check", db=path).exit_code == 0
    # The rebuilt projections carry the behaviour: R1 is open again, K1 is known again.
    assert data(invoke("add", "SKU", "5", "--id", "K1", db=path)) == first_add
    assert data(invoke("reserve", "SKU", "2", "--customer", "c", "--id", "R1", db=path)) == first_reserve
    assert invoke("add", "SKU", "6", "--id", "K1", db=path).exit_code == 1
    assert data(invoke("fulfill", "R1", db=path))["on_hand"] == 3
    assert invoke("rebuild-projections", "--check", db=path).exit_code == 0
