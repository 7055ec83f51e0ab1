"""Files that are not ours are refused (exit 74) and left byte for byte as they were."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conftest import data, event_count
from inventory_cli.storage.sqlite.schema import CURRENT_VERSION

# Every command that opens the database, for writing and for reading.
OPENING_COMMANDS = [
    ("add", "SKU", "1"),
    ("remove", "SKU", "1"),
    ("reserve", "SKU", "1", "--customer", "c"),
    ("release", "R1"),
    ("fulfill", "R1"),
    ("count", "SKU", "0"),
    ("stock",),
    ("history", "SKU"),
    ("replay",),
    ("rebuild-projections",),
    ("rebuild-projections", "--check"),
]


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def make_real_db(invoke, path: Path) -> None:
    assert invoke("add", "SKU", "3", db=path).exit_code == 0
    assert invoke("reserve", "SKU", "1", "--customer", "c", "--id", "R1", db=path).exit_code == 0


def text_file(invoke, folder: Path) -> Path:
    path = folder / "notes.db"
    path.write_text("shopping list\nmilk\n")
    return path


def short_text_file(invoke, folder: Path) -> Path:
    path = folder / "short.db"
    path.write_bytes(b"hi")
    return path


def damaged_magic(invoke, folder: Path) -> Path:
    path = folder / "damaged-magic.db"
    make_real_db(invoke, path)
    raw = bytearray(path.read_bytes())
    raw[0:6] = b"XQLite"
    path.write_bytes(bytes(raw))
    return path


def damaged_header_fields(invoke, folder: Path) -> Path:
    """The magic string is intact but the page size and the rest of the header are garbage."""
    path = folder / "damaged-header.db"
    make_real_db(invoke, path)
    raw = bytearray(path.read_bytes())
    raw[16:100] = bytes([0x07]) * 84
    path.write_bytes(bytes(raw))
    return path


def another_apps_db(invoke, folder: Path) -> Path:
    path = folder / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO foo (name) VALUES ('bar')")
    conn.commit()
    conn.close()
    return path


def another_apps_db_with_our_table_names(invoke, folder: Path) -> Path:
    path = folder / "other-events.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)")
    conn.execute("CREATE TABLE stock (id INTEGER PRIMARY KEY, n INTEGER)")
    conn.execute("INSERT INTO events (what) VALUES ('concert')")
    conn.commit()
    conn.close()
    return path


def newer_schema(invoke, folder: Path) -> Path:
    path = folder / "newer.db"
    make_real_db(invoke, path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {CURRENT_VERSION + 1}")
    conn.commit()
    conn.close()
    assert not Path(f"{path}-wal").exists()
    return path


FOREIGN_FILES = [text_file, short_text_file, damaged_magic, damaged_header_fields, another_apps_db,
                 another_apps_db_with_our_table_names, newer_schema]


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "people"])
@pytest.mark.parametrize("make", FOREIGN_FILES, ids=lambda f: f.__name__)
def test_files_that_are_not_ours_are_refused_and_left_untouched(invoke, tmp_path, make, as_json):
    folder = tmp_path / "files"
    folder.mkdir()
    path = make(invoke, folder)
    before = files_in(folder)
    for command in OPENING_COMMANDS:
        result = invoke(*command, db=path, json=as_json)
        assert result.exit_code == 74, (command, result.exit_code, result.stdout, result.stderr)
        assert result.stdout == "", command
        assert result.stderr.strip() and "Traceback" not in result.stderr, command
        assert files_in(folder) == before, f"{command} changed the files"


def test_the_newer_schema_message_says_what_to_do(invoke, tmp_path):
    path = newer_schema(invoke, tmp_path)
    result = invoke("stock", db=path)
    assert result.exit_code == 74
    assert "newer" in result.stderr.lower()


@pytest.mark.parametrize("command", OPENING_COMMANDS, ids=lambda c: " ".join(c))
def test_a_directory_as_db_is_refused(invoke, tmp_path, command):
    folder = tmp_path / "adir"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    result = invoke(*command, db=folder)
    assert result.exit_code == 74, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == "" and result.stderr.strip()
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]


def test_an_empty_file_is_ours_to_initialise(invoke, tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    assert data(invoke("stock", db=path)) == []
    assert path.read_bytes() == b""  # a query creates nothing
    assert invoke("add", "SKU", "2", db=path).exit_code == 0
    assert data(invoke("stock", db=path))[0]["on_hand"] == 2


def test_the_first_write_creates_the_parent_folders(invoke, tmp_path):
    path = tmp_path / "a" / "b" / "c" / "inv.db"
    assert invoke("add", "SKU", "2", db=path).exit_code == 0
    assert path.is_file()
    assert data(invoke("stock", db=path))[0]["on_hand"] == 2


def test_the_database_is_found_through_inventory_db(invoke, tmp_path):
    path = tmp_path / "env" / "inv.db"
    result = invoke("add", "SKU", "2", db=path)  # the fixture passes INVENTORY_DB, not --db
    assert result.exit_code == 0
    assert path.is_file() and event_count(path) == 1
    other = tmp_path / "option.db"
    assert invoke("--db", str(other), "add", "SKU", "1", db=path).exit_code == 0  # --db wins
    assert event_count(other) == 1 and event_count(path) == 1


@pytest.mark.parametrize("statement", [
    "UPDATE events SET quantity = quantity + 1",
    "UPDATE events SET type = 'StockRemoved' WHERE position = 1",
    "DELETE FROM events",
    "DELETE FROM events WHERE position = 2",
])
def test_the_event_log_refuses_update_and_delete_from_any_connection(invoke, tmp_path, statement):
    path = tmp_path / "inv.db"
    make_real_db(invoke, path)
    before = data(invoke("history", "SKU", db=path))
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(statement)
        conn.rollback()
    finally:
        conn.close()
    assert data(invoke("history", "SKU", db=path)) == before
    assert event_count(path) == 2


def test_the_file_is_plain_sqlite_that_other_tools_can_read(invoke, tmp_path):
    path = tmp_path / "inv.db"
    make_real_db(invoke, path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT position, type, quantity FROM events ORDER BY position").fetchall()
        assert rows == [(1, "StockAdded", 3), (2, "StockReserved", 1)]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == CURRENT_VERSION
    finally:
        conn.close()


def test_a_stream_row_without_events_is_written_to_like_a_new_one(invoke, tmp_path):
    """A store + product known to `streams` but without events (written by hand, say)."""
    db = tmp_path / "inv.db"
    assert invoke("add", "SKU", "3", db=db).exit_code == 0
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO streams (store, product) VALUES ('main', 'BARE')")
    conn.commit()
    conn.close()
    result = invoke("add", "BARE", "2", db=db)
    assert result.exit_code == 0, result.stderr
    assert (data(result)["on_hand"], data(result)["version"]) == (2, 1)
    assert event_count(db) == 2
    assert invoke("rebuild-projections", "--check", db=db).exit_code == 0
