"""The command line as a user and a script see it (docs/commands.md), through typer's CliRunner."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import typer.main

from conftest import (
    ANSI_ESCAPE,
    HISTORY_KEYS,
    RESERVATION_WRITE_KEYS,
    STOCK_LINE_KEYS,
    WRITE_KEYS,
    assert_keys,
    data,
    event_count,
)
from inventory_cli import __version__
from inventory_cli.cli.main import app

COMMANDS = ["add", "remove", "reserve", "release", "fulfill", "count", "stock", "history",
            "replay", "rebuild-projections"]


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def assert_refused(result, code: int = 1):
    """Exit code, a message on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.strip(), "no message on stderr"
    assert "Traceback" not in result.stderr


def moment(text: str) -> datetime:
    """An output time: ISO-8601 with a UTC offset."""
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset() is not None, text
    return parsed


# -- help and version ---------------------------------------------------------------------


def test_version(invoke, db_path):
    result = ok(invoke("--version", json=False))
    assert result.stdout.strip() == f"inventory {__version__}"
    assert not db_path.exists()


def test_top_level_help_lists_every_command_with_an_example(invoke, db_path):
    result = ok(invoke("--help", json=False))
    for command in COMMANDS:
        assert command in result.stdout
    assert "Example" in result.stdout
    assert not db_path.exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(invoke, db_path, command):
    result = ok(invoke(command, "--help", json=False))
    assert "Example" in result.stdout
    assert f"inventory {command}" in result.stdout
    assert ANSI_ESCAPE not in result.stdout
    assert not db_path.exists()


def all_command_paths():
    """Every command the app registers, sub-commands included, as argument lists."""
    root = typer.main.get_command(app)
    paths = []

    def walk(command, path):
        if hasattr(command, "list_commands"):  # a group (typer may vendor its own click)
            context = command.context_class(command)
            for name in command.list_commands(context):
                walk(command.get_command(context, name), [*path, name])
        else:
            paths.append(path)

    walk(root, [])
    return paths


def test_every_registered_command_has_help_with_an_example(invoke, db_path):
    paths = all_command_paths()
    assert {p[0] for p in paths} >= set(COMMANDS)
    for path in paths:
        result = ok(invoke(*path, "--help", json=False))
        assert "Example" in result.stdout, f"`inventory {' '.join(path)} --help` has no example"
    assert not db_path.exists()


# -- happy paths ----------------------------------------------------------------------------


def test_add_answers_the_stock_line_and_position(invoke):
    line = data(ok(invoke("add", "SKU-1", "5")))
    assert_keys(line, WRITE_KEYS)
    assert line["store"] == "main" and line["product"] == "SKU-1"
    assert (line["on_hand"], line["reserved"], line["available"]) == (5, 0, 5)
    assert (line["version"], line["position"]) == (1, 1)
    moment(line["updated_at"])
    line = data(ok(invoke("add", "SKU-1", "1000000000", "--reason", "delivery")))
    assert (line["on_hand"], line["version"], line["position"]) == (1_000_000_005, 2, 2)


def test_remove(invoke):
    ok(invoke("add", "SKU-1", "5"))
    line = data(ok(invoke("remove", "SKU-1", "2", "--reason", "damaged")))
    assert_keys(line, WRITE_KEYS)
    assert (line["on_hand"], line["reserved"], line["available"], line["position"]) == (3, 0, 3, 2)
    line = data(ok(invoke("remove", "SKU-1", "3")))  # everything available
    assert (line["on_hand"], line["available"]) == (0, 0)


def test_reserve_release_fulfill(invoke):
    ok(invoke("add", "SKU-1", "10"))
    reserved = data(ok(invoke("reserve", "SKU-1", "4", "--customer", "c-17")))
    assert_keys(reserved, RESERVATION_WRITE_KEYS)
    assert reserved["reservation_id"]
    assert (reserved["quantity"], reserved["customer"]) == (4, "c-17")
    assert (reserved["on_hand"], reserved["reserved"], reserved["available"]) == (10, 4, 6)

    second = data(ok(invoke("reserve", "SKU-1", "3", "--customer", "c-18", "--id", "R-OWN")))
    assert second["reservation_id"] == "R-OWN"
    assert (second["reserved"], second["available"]) == (7, 3)

    released = data(ok(invoke("release", reserved["reservation_id"], "--reason", "cancelled")))
    assert_keys(released, RESERVATION_WRITE_KEYS)
    assert (released["reservation_id"], released["quantity"], released["customer"]) == (
        reserved["reservation_id"], 4, "c-17")
    assert (released["on_hand"], released["reserved"], released["available"]) == (10, 3, 7)

    fulfilled = data(ok(invoke("fulfill", "R-OWN")))
    assert_keys(fulfilled, RESERVATION_WRITE_KEYS)
    assert (fulfilled["reservation_id"], fulfilled["quantity"], fulfilled["customer"]) == (
        "R-OWN", 3, "c-18")
    assert (fulfilled["on_hand"], fulfilled["reserved"], fulfilled["available"]) == (7, 0, 7)
    assert fulfilled["position"] == 5 and fulfilled["version"] == 5


def test_reserve_prints_the_reservation_id_for_people(invoke):
    ok(invoke("add", "SKU-1", "3"))
    result = ok(invoke("reserve", "SKU-1", "1", "--customer", "c-1", "--id", "R-XYZ", json=False))
    assert "R-XYZ" in result.stdout
    printed = ok(invoke("reserve", "SKU-1", "1", "--customer", "c-1", json=False)).stdout
    [event] = data(ok(invoke("history", "SKU-1", "--limit", "1")))
    assert event["type"] == "StockReserved" and event["reservation_id"] in printed
    assert data(ok(invoke("release", event["reservation_id"])))["reserved"] == 1


def test_count_sets_on_hand_and_records_the_signed_difference(invoke):
    ok(invoke("add", "SKU-1", "10"))
    line = data(ok(invoke("count", "SKU-1", "7")))
    assert_keys(line, WRITE_KEYS)
    assert (line["on_hand"], line["available"], line["position"]) == (7, 7, 2)
    line = data(ok(invoke("count", "SKU-1", "0")))
    assert line["on_hand"] == 0
    line = data(ok(invoke("count", "SKU-1", "12")))
    assert line["on_hand"] == 12
    events = data(ok(invoke("history", "SKU-1")))
    assert [(e["type"], e["quantity"], e["on_hand"]) for e in events] == [
        ("StockAdded", 10, 10), ("StockCounted", -3, 7), ("StockCounted", -7, 0),
        ("StockCounted", 12, 12)]


def test_stock_lines(invoke):
    ok(invoke("add", "B", "2"))
    ok(invoke("add", "A", "5"))
    ok(invoke("reserve", "A", "2", "--customer", "c"))
    lines = data(ok(invoke("stock")))
    for line in lines:
        assert_keys(line, STOCK_LINE_KEYS)
    assert [(l["product"], l["on_hand"], l["reserved"], l["available"], l["version"]) for l in lines] == [
        ("A", 5, 2, 3, 2), ("B", 2, 0, 2, 1)]
    assert data(ok(invoke("stock", "B"))) == [lines[1]]
    assert data(ok(invoke("stock", "NOT-THERE"))) == []


def test_a_line_stays_when_its_figures_are_back_to_zero(invoke):
    ok(invoke("add", "SKU-1", "2"))
    ok(invoke("remove", "SKU-1", "2"))
    [line] = data(ok(invoke("stock")))
    assert (line["product"], line["on_hand"], line["version"]) == ("SKU-1", 0, 2)


def test_updated_at_is_when_the_last_event_was_recorded(invoke):
    ok(invoke("add", "SKU-1", "2"))
    ok(invoke("add", "OTHER", "2"))
    last = data(ok(invoke("remove", "SKU-1", "1")))
    [line] = data(ok(invoke("stock", "SKU-1")))
    events = data(ok(invoke("history", "SKU-1")))
    assert line["updated_at"] == last["updated_at"] == events[-1]["recorded_at"]


def test_history_is_a_register_with_balances(invoke):
    ok(invoke("add", "SKU-1", "10"))
    ok(invoke("add", "OTHER", "1"))
    rid = data(ok(invoke("reserve", "SKU-1", "4", "--customer", "c-1")))["reservation_id"]
    ok(invoke("release", rid))
    ok(invoke("reserve", "SKU-1", "3", "--customer", "c-2", "--id", "R2"))
    ok(invoke("fulfill", "R2"))
    ok(invoke("remove", "SKU-1", "1"))
    events = data(ok(invoke("history", "SKU-1")))
    for event in events:
        assert_keys(event, HISTORY_KEYS)
    assert [(e["position"], e["version"], e["type"], e["quantity"], e["on_hand"], e["reserved"],
             e["available"]) for e in events] == [
        (1, 1, "StockAdded", 10, 10, 0, 10),
        (3, 2, "StockReserved", 4, 10, 4, 6),
        (4, 3, "StockReleased", 4, 10, 0, 10),
        (5, 4, "StockReserved", 3, 10, 3, 7),
        (6, 5, "ReservationFulfilled", 3, 7, 0, 7),
        (7, 6, "StockRemoved", 1, 6, 0, 6),
    ]
    assert events[0]["reason"] == "received" and events[-1]["reason"] == "sold"
    assert (events[1]["customer"], events[1]["reservation_id"]) == ("c-1", rid)
    assert events[2]["reservation_id"] == rid
    assert {e["store"] for e in events} == {"main"} and {e["product"] for e in events} == {"SKU-1"}
    for e in events:
        assert moment(e["occurred_at"]) == moment(e["recorded_at"])
    times = [moment(e["recorded_at"]) for e in events]
    assert times == sorted(times)


def test_replay_is_stock_as_it_was(invoke):
    ok(invoke("add", "SKU-1", "10"))
    ok(invoke("add", "SKU-2", "1"))
    ok(invoke("remove", "SKU-1", "4"))
    now = data(ok(invoke("replay")))
    assert now == data(ok(invoke("stock")))
    for line in now:
        assert_keys(line, STOCK_LINE_KEYS)
    at_1 = data(ok(invoke("replay", "--position", "1")))
    assert [(l["product"], l["on_hand"], l["version"]) for l in at_1] == [("SKU-1", 10, 1)]
    at_2 = data(ok(invoke("replay", "SKU-1", "--position", "2")))
    assert [(l["product"], l["on_hand"]) for l in at_2] == [("SKU-1", 10)]
    assert data(ok(invoke("replay", "--position", "0"))) == []
    events = data(ok(invoke("history", "SKU-1")))
    until_first = data(ok(invoke("replay", "SKU-1", "--until", events[0]["occurred_at"])))
    assert [(l["on_hand"], l["version"]) for l in until_first] == [(10, 1)]


def test_rebuild_projections(invoke):
    ok(invoke("add", "SKU-1", "10"))
    ok(invoke("reserve", "SKU-1", "4", "--customer", "c-1", "--id", "R1"))
    ok(invoke("add", "SKU-2", "1", "--store", "north"))
    before = data(ok(invoke("stock", "--all-stores")))
    report = data(ok(invoke("rebuild-projections")))
    assert set(report) == {"events", "streams", "seconds"}
    assert (report["events"], report["streams"]) == (3, 2)
    assert data(ok(invoke("stock", "--all-stores"))) == before
    check = data(ok(invoke("rebuild-projections", "--check")))
    assert set(check) >= {"events", "streams", "seconds", "ok", "differences"}
    assert check["ok"] is True and not check["differences"]
    # The rebuilt reservations and keys still work.
    assert data(ok(invoke("fulfill", "R1")))["on_hand"] == 6
    ok(invoke("rebuild-projections", json=False))
    assert "match" in ok(invoke("rebuild-projections", "--check", json=False)).stdout


def test_messages_for_people(invoke):
    out = ok(invoke("add", "SKU-1", "5", json=False)).stdout
    assert "SKU-1" in out and "5" in out
    out = ok(invoke("stock", json=False)).stdout
    assert "SKU-1" in out and "5" in out
    out = ok(invoke("history", "SKU-1", json=False)).stdout
    assert "StockAdded" in out
    out = ok(invoke("replay", json=False)).stdout
    assert "SKU-1" in out


# -- refusals: exit 1, a message on stderr, nothing on stdout, nothing written -------------

REFUSALS = {
    "remove beyond available": (
        [("add", "SKU", "3"), ("reserve", "SKU", "1", "--customer", "c")], ("remove", "SKU", "3")),
    "remove from nothing": ([], ("remove", "SKU", "1")),
    "reserve beyond available": (
        [("add", "SKU", "3"), ("reserve", "SKU", "2", "--customer", "c")],
        ("reserve", "SKU", "2", "--customer", "d")),
    "reserve id used for another reservation": (
        [("add", "SKU", "3"), ("reserve", "SKU", "1", "--customer", "c", "--id", "R1")],
        ("reserve", "SKU", "2", "--customer", "c", "--id", "R1")),
    "reserve id used in another store": (
        [("add", "SKU", "3"), ("add", "SKU", "3", "--store", "north"),
         ("reserve", "SKU", "1", "--customer", "c", "--id", "R1")],
        ("reserve", "SKU", "1", "--customer", "c", "--id", "R1", "--store", "north")),
    "release unknown": ([("add", "SKU", "3")], ("release", "R-NOPE")),
    "release twice": (
        [("add", "SKU", "3"), ("reserve", "SKU", "1", "--customer", "c", "--id", "R1"),
         ("release", "R1")], ("release", "R1")),
    "release after fulfil": (
        [("add", "SKU", "3"), ("reserve", "SKU", "1", "--customer", "c", "--id", "R1"),
         ("fulfill", "R1")], ("release", "R1")),
    "fulfil unknown": ([("add", "SKU", "3")], ("fulfill", "R-NOPE")),
    "fulfil after release": (
        [("add", "SKU", "3"), ("reserve", "SKU", "1", "--customer", "c", "--id", "R1"),
         ("release", "R1")], ("fulfill", "R1")),
    "fulfil twice": (
        [("add", "SKU", "3"), ("reserve", "SKU", "1", "--customer", "c", "--id", "R1"),
         ("fulfill", "R1")], ("fulfill", "R1")),
    "count below reserved": (
        [("add", "SKU", "5"), ("reserve", "SKU", "3", "--customer", "c")], ("count", "SKU", "2")),
    "id reused for different content": (
        [("add", "SKU", "3", "--id", "K1")], ("add", "SKU", "4", "--id", "K1")),
    "id reused for another operation": (
        [("add", "SKU", "3", "--id", "K1")], ("remove", "SKU", "3", "--id", "K1")),
    "id reused in another store": (
        [("add", "SKU", "3", "--id", "K1")], ("add", "SKU", "3", "--id", "K1", "--store", "north")),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refusals(invoke, db_path, name):
    setup, refused = REFUSALS[name]
    for step in setup:
        ok(invoke(*step))
    stock_before = data(ok(invoke("stock", "--all-stores")))
    events_before = event_count(db_path)
    for as_json in (True, False):
        assert_refused(invoke(*refused, json=as_json), 1)
    assert event_count(db_path) == events_before
    assert data(ok(invoke("stock", "--all-stores"))) == stock_before


def test_a_refused_command_can_succeed_later(invoke):
    assert_refused(invoke("reserve", "SKU", "2", "--customer", "c", "--id", "R1"))
    ok(invoke("add", "SKU", "2"))
    assert data(ok(invoke("reserve", "SKU", "2", "--customer", "c", "--id", "R1")))["reserved"] == 2


def test_a_refused_write_on_a_missing_database_creates_no_file(invoke, db_path):
    """Exit 1 means nothing was written: not even a new, empty database (fixed in 2edf161)."""
    assert_refused(invoke("release", "R-TYPO"))
    assert_refused(invoke("remove", "SKU", "1"))
    assert not db_path.exists()


# -- bad arguments: exit 2, nothing written -------------------------------------------------

BAD_QUANTITIES = ["0", "-5", "1.5", "abc", "1000000001", "99999999999999999999", "", "１２", "1e3"]
BAD_CODES = ["", "  SKU", "SKU ", "A" * 65, "A\x07B", "A\tB", "A\nB"]
BAD_CODE_IDS = ["empty", "leading-space", "trailing-space", "65-chars", "bell", "tab", "newline"]


def quantity_commands(quantity: str):
    return [
        ("add", "SKU", quantity),
        ("remove", "SKU", quantity),
        ("reserve", "SKU", quantity, "--customer", "c"),
        ("count", "SKU", quantity),
    ]


def product_commands(product: str):
    return [
        ("add", product, "1"),
        ("remove", product, "1"),
        ("reserve", product, "1", "--customer", "c"),
        ("count", product, "1"),
        ("stock", product),
        ("history", product),
        ("replay", product),
    ]


def store_commands(store: str):
    return [(*command, "--store", store) for command in product_commands("SKU")] + [
        ("stock", "--store", store), ("replay", "--store", store)]


@pytest.fixture
def seeded_db(invoke, db_path):
    """A database with a few events, so that a rejected command could have changed something."""
    ok(invoke("add", "SKU", "5"))
    ok(invoke("reserve", "SKU", "1", "--customer", "c", "--id", "R1"))
    return db_path


def assert_usage_error_writes_nothing(invoke, db_path, commands, fresh_db):
    """Exit 2, a message, nothing on stdout; no new file, no new event in an existing one."""
    events = event_count(db_path)
    for command in commands:
        for db, as_json in ((fresh_db, False), (db_path, True)):
            result = invoke(*command, json=as_json, db=db)
            assert result.exit_code == 2, (command, result.exit_code, result.stdout, result.stderr)
            assert result.stdout == "", command
            assert result.stderr.strip() and "Traceback" not in result.stderr, command
    assert not fresh_db.exists()
    assert event_count(db_path) == events


@pytest.mark.parametrize("quantity", BAD_QUANTITIES)
def test_bad_quantities_are_usage_errors(invoke, seeded_db, tmp_path, quantity):
    commands = [c for c in quantity_commands(quantity) if not (c[0] == "count" and quantity == "0")]
    assert_usage_error_writes_nothing(invoke, seeded_db, commands, tmp_path / "new" / "fresh.db")


@pytest.mark.parametrize("product", BAD_CODES, ids=BAD_CODE_IDS)
def test_bad_product_codes_are_usage_errors(invoke, seeded_db, tmp_path, product):
    assert_usage_error_writes_nothing(invoke, seeded_db, product_commands(product),
                                      tmp_path / "new" / "fresh.db")


@pytest.mark.parametrize("store", BAD_CODES, ids=BAD_CODE_IDS)
def test_bad_store_codes_are_usage_errors(invoke, seeded_db, tmp_path, store):
    assert_usage_error_writes_nothing(invoke, seeded_db, store_commands(store),
                                      tmp_path / "new" / "fresh.db")


@pytest.mark.parametrize("command", [
    ("reserve", "SKU", "1", "--customer", ""),
    ("reserve", "SKU", "1", "--customer", " c"),
    ("reserve", "SKU", "1", "--customer", "c", "--id", ""),
    ("reserve", "SKU", "1", "--customer", "c", "--id", "R\x07"),
    ("reserve", "SKU", "1"),  # --customer is required
    ("add", "SKU", "1", "--reason", ""),
    ("add", "SKU", "1", "--id", ""),
    ("add", "SKU"),
    ("release", ""),
    ("release", "R1", "--id", " K"),
    ("fulfill", "R1\n"),
    ("count", "SKU", "-1"),
    ("count", "SKU", "1000000001"),
    ("history", "SKU", "--limit", "-1"),
    ("history", "SKU", "--limit", "many"),
    ("replay", "--position", "-1"),
    ("replay", "--position", "x"),
    ("no-such-command",),
], ids=repr)
def test_other_bad_arguments_are_usage_errors(invoke, seeded_db, tmp_path, command):
    events = event_count(seeded_db)
    fresh = tmp_path / "fresh.db"
    for db in (seeded_db, fresh):
        result = invoke(*command, db=db)
        assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
        assert result.stdout == ""
        assert result.stderr.strip()
    assert event_count(seeded_db) == events
    assert not fresh.exists()


def test_count_accepts_zero_and_the_maximum(invoke):
    assert data(ok(invoke("count", "SKU", "0")))["on_hand"] == 0
    assert data(ok(invoke("count", "SKU", "1000000000")))["on_hand"] == 1_000_000_000


# -- idempotency -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    ("add", "SKU", "5", "--id", "K1"),
    ("remove", "SKU", "1", "--id", "K1"),
    ("count", "SKU", "2", "--id", "K1"),
    ("release", "R1", "--id", "K1"),
    ("fulfill", "R1", "--id", "K1"),
    ("reserve", "SKU", "2", "--customer", "c", "--id", "K1"),
], ids=lambda c: c[0])
def test_same_id_twice_answers_the_same_and_writes_once(invoke, db_path, command):
    ok(invoke("add", "SKU", "5"))
    ok(invoke("reserve", "SKU", "1", "--customer", "c", "--id", "R1"))
    first = ok(invoke(*command))
    events = event_count(db_path)
    ok(invoke("add", "SKU", "3"))  # the line moves on; the answer must still be the first one
    again = ok(invoke(*command))
    assert data(again) == data(first)
    assert event_count(db_path) == events + 1
    people = ok(invoke(*command, json=False))
    assert people.stdout.strip()
    assert event_count(db_path) == events + 1


def test_same_reservation_id_same_content_is_one_reservation(invoke, db_path):
    ok(invoke("add", "SKU", "5"))
    first = data(ok(invoke("reserve", "SKU", "2", "--customer", "c", "--id", "RID")))
    again = data(ok(invoke("reserve", "SKU", "2", "--customer", "c", "--id", "RID")))
    assert again == first
    assert event_count(db_path) == 2
    assert data(ok(invoke("stock")))[0]["reserved"] == 2
    for different in (("reserve", "SKU", "3", "--customer", "c", "--id", "RID"),
                      ("reserve", "SKU", "2", "--customer", "d", "--id", "RID"),
                      ("reserve", "OTHER", "2", "--customer", "c", "--id", "RID")):
        assert_refused(invoke(*different))
    assert event_count(db_path) == 2


def test_keys_are_one_namespace_across_commands(invoke, db_path):
    ok(invoke("add", "SKU", "5", "--id", "K"))
    assert_refused(invoke("reserve", "SKU", "1", "--customer", "c", "--id", "K"))
    assert_refused(invoke("count", "SKU", "5", "--id", "K"))
    assert event_count(db_path) == 1


def test_release_finds_the_store_itself(invoke):
    ok(invoke("add", "SKU", "5", "--store", "north"))
    ok(invoke("reserve", "SKU", "2", "--customer", "c", "--id", "R1", "--store", "north"))
    released = data(ok(invoke("release", "R1")))
    assert (released["store"], released["reserved"]) == ("north", 0)
    ok(invoke("reserve", "SKU", "2", "--customer", "c", "--id", "R2", "-s", "north"))
    assert data(ok(invoke("fulfill", "R2")))["store"] == "north"


# -- a database that does not exist yet ------------------------------------------------------


@pytest.mark.parametrize("command", [
    ("stock",), ("stock", "SKU"), ("stock", "--all-stores"), ("history", "SKU"),
    ("history", "SKU", "--since", "2020-01-01", "--limit", "3"), ("replay",),
    ("replay", "--position", "5"), ("replay", "--until", "2020-01-01"),
    ("diff", "--since", "2020-01-01"), ("diff", "--from-position", "0"), ("reservations",),
    ("transfers",), ("product", "list"),
], ids=repr)
def test_a_query_on_a_missing_database_answers_empty_and_creates_nothing(invoke, tmp_path, command):
    missing = tmp_path / "no" / "such" / "inv.db"
    assert data(ok(invoke(*command, db=missing))) == []
    result = ok(invoke(*command, db=missing, json=False))
    assert result.stdout.strip()
    assert not (tmp_path / "no").exists()


def test_exporting_a_missing_database_prints_nothing_and_creates_nothing(invoke, tmp_path):
    missing = tmp_path / "no" / "inv.db"
    assert ok(invoke("export", "--after-position", "3", db=missing, json=False)).stdout == ""
    assert not (tmp_path / "no").exists()


def test_checking_a_missing_database_creates_nothing(invoke, tmp_path):
    missing = tmp_path / "no" / "inv.db"
    report = data(ok(invoke("rebuild-projections", "--check", db=missing)))
    assert report["ok"] is True and report["events"] == 0
    ok(invoke("rebuild-projections", db=missing))
    assert not (tmp_path / "no").exists()


# -- stores ----------------------------------------------------------------------------------


def test_store_option_and_environment(invoke):
    ok(invoke("add", "SKU", "1"))
    ok(invoke("add", "SKU", "2", "--store", "north"))
    ok(invoke("add", "SKU", "3", "-s", "south"))
    ok(invoke("add", "SKU", "4", env={"INVENTORY_STORE": "east"}))
    ok(invoke("add", "SKU", "5", "--store", "west", env={"INVENTORY_STORE": "east"}))  # option wins
    figures = {l["store"]: l["on_hand"] for l in data(ok(invoke("stock", "--all-stores")))}
    assert figures == {"main": 1, "north": 2, "south": 3, "east": 4, "west": 5}
    assert [l["on_hand"] for l in data(ok(invoke("stock")))] == [1]
    assert [l["on_hand"] for l in data(ok(invoke("stock", env={"INVENTORY_STORE": "east"})))] == [4]
    assert [e["quantity"] for e in data(ok(invoke("history", "SKU", "-s", "north")))] == [2]
    assert [l["store"] for l in data(ok(invoke("replay", env={"INVENTORY_STORE": "south"})))] == ["south"]


def test_all_stores_is_sorted_by_store_then_product(invoke):
    for store, product in [("b", "Z"), ("a", "y"), ("b", "A"), ("B", "x"), ("a", "X"), ("é", "a"),
                           ("main", "b"), ("main", "B")]:
        ok(invoke("add", product, "1", "--store", store))
    for command in ("stock", "replay"):
        lines = data(ok(invoke(command, "--all-stores")))
        keys = [(l["store"], l["product"]) for l in lines]
        assert keys == sorted(keys)
        assert len(keys) == 8
    assert [l["product"] for l in data(ok(invoke("stock", "--store", "b")))] == ["A", "Z"]
    assert [l["store"] for l in data(ok(invoke("stock", "b", "--all-stores")))] == ["main"]


# -- codes are ordinary text -----------------------------------------------------------------

ORDINARY_CODES = ["O'Brien", 'say "hi"', "x';--", "DROP TABLE events;--", "50%", "%_", "a/b/c",
                  "Ærø-øl", "東京", "Zürich", "a\\b", "x' OR '1'='1"]


@pytest.mark.parametrize("code", ORDINARY_CODES)
def test_codes_are_stored_and_shown_exactly(invoke, code):
    line = data(ok(invoke("add", code, "2", "--store", code)))
    assert (line["store"], line["product"]) == (code, code)
    ok(invoke("add", "OTHER", "1", "--store", code))
    ok(invoke("add", code, "7"))
    assert [(l["store"], l["product"], l["on_hand"]) for l in data(ok(invoke("stock", code, "-s", code)))] == [
        (code, code, 2)]
    assert [e["product"] for e in data(ok(invoke("history", code, "--store", code)))] == [code]
    assert {(l["store"], l["product"]) for l in data(ok(invoke("replay", "--all-stores")))} == {
        (code, code), (code, "OTHER"), ("main", code)}
    rid = data(ok(invoke("reserve", code, "1", "--customer", code, "--store", code)))["reservation_id"]
    assert data(ok(invoke("release", rid)))["customer"] == code
    for command in (("stock", "--all-stores"), ("history", code, "--store", code),
                    ("replay", "--all-stores")):
        assert code in ok(invoke(*command, json=False)).stdout


def test_the_same_letters_typed_differently_are_one_code(invoke):
    ok(invoke("add", "Cafe\u0301", "2", "--store", "Mu\u0308nchen"))
    ok(invoke("add", "Caf\u00e9", "3", "--store", "M\u00fcnchen"))
    [line] = data(ok(invoke("stock", "--all-stores")))
    assert (line["store"], line["product"], line["on_hand"]) == ("M\u00fcnchen", "Caf\u00e9", 5)
    assert data(ok(invoke("stock", "Cafe\u0301", "--store", "Mu\u0308nchen")))[0]["on_hand"] == 5


def test_codes_are_case_sensitive(invoke):
    ok(invoke("add", "sku", "1"))
    ok(invoke("add", "SKU", "2"))
    assert [(l["product"], l["on_hand"]) for l in data(ok(invoke("stock")))] == [("SKU", 2), ("sku", 1)]


def test_square_brackets_are_shown_exactly_in_tables(invoke):
    """Codes and reasons are data, never rich markup (fixed in 2edf161)."""
    ok(invoke("add", "X[red]Y", "1", "--reason", "[b]box[/b]"))
    assert "X[red]Y" in ok(invoke("stock", json=False)).stdout
    assert "[b]box[/b]" in ok(invoke("history", "X[red]Y", json=False)).stdout


def test_tables_in_a_pipe_line_up_with_wide_and_combining_letters(invoke):
    """Away from a terminal the table is a plain grid; its columns line up on screen
    whatever the codes are made of (a wide letter takes two cells, a combining mark none)."""
    import unicodedata

    for product in ("SKU-1", "茶葉-緑", "x\u0301-1"):  # x + acute: no precomposed form, stays combining
        ok(invoke("add", product, "12", "--reason", "Lieferung für Müller"))
    stock = ok(invoke("stock", json=False)).stdout
    history = ok(invoke("history", "茶葉-緑", json=False)).stdout
    for table in (stock, history):
        lines = table.splitlines()
        shown = [sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
                     for c in line) for line in lines]
        assert len(lines) >= 5 and len(set(shown)) == 1, lines
    assert all(f"| {product} " in stock for product in ("SKU-1", "茶葉-緑", "x\u0301-1"))
    assert "reason=Lieferung für Müller" in history


def test_a_code_with_a_closing_bracket_tag_does_not_break_the_stock_table(invoke):
    """It used to crash `stock` with exit 70 (rich MarkupError; fixed in 2edf161)."""
    ok(invoke("add", "A[/]B", "1"))
    result = invoke("stock", json=False)
    assert result.exit_code == 0, result.stderr
    assert "A[/]B" in result.stdout


# -- history: --since, --until, --limit -------------------------------------------------------


@pytest.fixture
def five_events(invoke):
    ok(invoke("add", "SKU", "10"))
    ok(invoke("add", "OTHER", "1"))
    ok(invoke("remove", "SKU", "1"))
    ok(invoke("reserve", "SKU", "2", "--customer", "c", "--id", "R1"))
    ok(invoke("release", "R1"))
    ok(invoke("count", "SKU", "5"))
    return data(ok(invoke("history", "SKU")))


def positions(result) -> list[int]:
    return [e["position"] for e in data(ok(result))]


def test_history_limit_keeps_the_latest_oldest_first(invoke, five_events):
    assert [e["position"] for e in five_events] == [1, 3, 4, 5, 6]
    assert positions(invoke("history", "SKU", "--limit", "2")) == [5, 6]
    assert positions(invoke("history", "SKU", "--limit", "1")) == [6]
    assert positions(invoke("history", "SKU", "--limit", "99")) == [1, 3, 4, 5, 6]
    assert positions(invoke("history", "SKU", "--limit", "0")) == []
    limited = data(ok(invoke("history", "SKU", "--limit", "2")))
    assert limited == five_events[-2:]  # balances are those after each event, not restarted


def test_history_since_and_until_are_inclusive(invoke, five_events):
    third, fourth = five_events[2]["occurred_at"], five_events[3]["occurred_at"]
    assert positions(invoke("history", "SKU", "--since", third)) == [4, 5, 6]
    assert positions(invoke("history", "SKU", "--until", third)) == [1, 3, 4]
    assert positions(invoke("history", "SKU", "--since", third, "--until", fourth)) == [4, 5]
    assert positions(invoke("history", "SKU", "--since", third, "--limit", "1")) == [6]
    since = data(ok(invoke("history", "SKU", "--since", fourth)))
    assert since == five_events[3:]  # balances after each event, counted from the start
    # The same instant written with another UTC offset is the same bound.
    shifted = moment(third).astimezone(timezone(timedelta(hours=-5))).isoformat(timespec="microseconds")
    assert positions(invoke("history", "SKU", "--since", shifted)) == [4, 5, 6]
    assert positions(invoke("history", "SKU", "--until", shifted)) == [1, 3, 4]


def test_history_dates_alone_cover_whole_local_days(invoke, five_events):
    day = moment(five_events[0]["occurred_at"]).astimezone().date()
    last_day = moment(five_events[-1]["occurred_at"]).astimezone().date()
    everything = [1, 3, 4, 5, 6]
    assert positions(invoke("history", "SKU", "--since", day.isoformat())) == everything
    assert positions(invoke("history", "SKU", "--until", last_day.isoformat())) == everything
    assert positions(invoke("history", "SKU", "--since", (last_day + timedelta(days=1)).isoformat())) == []
    assert positions(invoke("history", "SKU", "--until", (day - timedelta(days=1)).isoformat())) == []
    result = ok(invoke("history", "SKU", "--until", (day - timedelta(days=1)).isoformat(), json=False))
    assert result.stdout.strip()


def test_history_until_a_basic_format_date_covers_that_day(invoke, five_events):
    """20261127 is an ISO-8601 date alone too: --until covers the whole day (fixed in 2edf161)."""
    last_day = moment(five_events[-1]["occurred_at"]).astimezone().date()
    assert positions(invoke("history", "SKU", "--until", last_day.strftime("%Y%m%d"))) == [1, 3, 4, 5, 6]


@pytest.mark.parametrize("option", ["--since", "--until"])
@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "2026-02-30", "27/11/2026", "", "T"])
def test_history_invalid_time_is_a_usage_error(invoke, seeded_db, option, value):
    assert_refused(invoke("history", "SKU", option, value), 2)
    assert_refused(invoke("history", "SKU", option, value, json=False), 2)


# -- replay: --position, --until ---------------------------------------------------------------


def test_replay_position_and_until(invoke, five_events):
    expected_on_hand = {1: 10, 3: 9, 4: 9, 5: 9, 6: 5}
    for event in five_events:
        [line] = data(ok(invoke("replay", "SKU", "--position", str(event["position"]))))
        assert (line["on_hand"], line["reserved"], line["version"]) == (
            event["on_hand"], event["reserved"], event["version"])
        assert line["on_hand"] == expected_on_hand[event["position"]]
        assert line["updated_at"] == event["recorded_at"]
        [by_time] = data(ok(invoke("replay", "SKU", "--until", event["occurred_at"])))
        assert by_time == line
    at_2 = data(ok(invoke("replay", "--position", "2")))
    assert [(l["product"], l["on_hand"]) for l in at_2] == [("OTHER", 1), ("SKU", 10)]
    assert data(ok(invoke("replay", "--position", "1000"))) == data(ok(invoke("stock")))
    day = moment(five_events[0]["occurred_at"]).astimezone().date()
    assert data(ok(invoke("replay", "--until", (day - timedelta(days=1)).isoformat()))) == []


def test_replay_with_both_position_and_until_is_a_usage_error(invoke, seeded_db):
    assert_refused(invoke("replay", "--position", "1", "--until", "2026-01-01"), 2)
    assert_refused(invoke("replay", "--until", "not a time"), 2)


# -- output for people -------------------------------------------------------------------------


@pytest.mark.parametrize("env", [{}, {"NO_COLOR": "1"}], ids=["plain", "NO_COLOR"])
def test_output_for_people_has_no_escape_codes(invoke, env):
    outputs = [
        invoke("add", "SKU-1", "5", json=False, env=env),
        invoke("reserve", "SKU-1", "1", "--customer", "c", "--id", "R1", json=False, env=env),
        invoke("stock", json=False, env=env),
        invoke("stock", "--all-stores", json=False, env=env),
        invoke("history", "SKU-1", json=False, env=env),
        invoke("replay", json=False, env=env),
        invoke("rebuild-projections", json=False, env=env),
        invoke("rebuild-projections", "--check", json=False, env=env),
        invoke("remove", "SKU-1", "99", json=False, env=env),
        invoke("--help", json=False, env=env),
        invoke("stock", "--help", json=False, env=env),
    ]
    for result in outputs:
        assert ANSI_ESCAPE not in result.stdout
        assert ANSI_ESCAPE not in result.stderr
    # Tables of ASCII data are plain ASCII when stdout is not a terminal (no box drawing).
    for result in outputs[2:6]:
        assert result.exit_code == 0
        assert result.stdout.isascii(), result.stdout


def test_each_command_runs_alone_from_the_module_that_registers_it():
    """A run builds only its own command (the fast path): a command missing from
    main.COMMAND_MODULES, or listed under the wrong module, would fall back to
    the whole app or lose its options."""
    from inventory_cli.cli import main

    everything = {c.name or c.callback.__name__.replace("_", "-") for c in main.build_app().registered_commands}
    everything |= {g.name for g in main.build_app().registered_groups}
    listed = {name for names in main.COMMAND_MODULES.values() for name in names}
    assert listed == everything
    for name in listed:
        lite = main._only_the_command_asked_for([name, "--json"])
        names = [c.name or c.callback.__name__.replace("_", "-") for c in lite.registered_commands]
        names += [g.name for g in lite.registered_groups]
        assert names == [name]
