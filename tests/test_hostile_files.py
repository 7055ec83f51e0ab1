"""Hostile files at the database path, from issue 13 (an adversarial trial).

A database copied next to a ``-wal`` left by another database (finding 1), another
application's WAL file with unsaved changes, a symlink loop (3), a FIFO (4), and
smaller cases (11). Every case runs the real tool in a process on real files, and
checks the files byte for byte afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from conftest import run_inventory

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX files")


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _pair(db: Path) -> tuple[str | None, str | None, int]:
    """The database's and its -wal's content, and the database's size."""
    wal = Path(f"{db}-wal")
    return _digest(db), _digest(wal), db.stat().st_size


def _import(db: Path, rows: list[dict]) -> None:
    source = db.parent / f"{db.stem}-rows.ndjson"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = run_inventory(db, "import", str(source), "--quiet")
    assert result.returncode == 0, result.stderr


@contextlib.contextmanager
def _held_open(db: Path):
    """A reader connection kept open, so that writers leave their pages in the -wal."""
    conn = sqlite3.connect(db)
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    try:
        yield
    finally:
        conn.close()


def _stale_wal_of_another_database(tmp_path: Path, products: list[str]) -> bytes:
    """The -wal a database leaves behind when its writer dies before a checkpoint."""
    other = tmp_path / "other" / "b.db"
    other.parent.mkdir()
    assert run_inventory(other, "add", "SEED", "1").returncode == 0
    with _held_open(other):
        for product in products:
            assert run_inventory(other, "add", product, "7").returncode == 0
        wal = Path(f"{other}-wal").read_bytes()
    assert len(wal) > 32
    return wal


def _mispaired(tmp_path: Path, events: int) -> Path:
    """x3.db: a copy of an inventory database, next to the -wal of another one."""
    original = tmp_path / "a.db"
    _import(original, [{"op": "add", "product": f"P{n % 40}", "quantity": 1} for n in range(events)])
    x3 = tmp_path / "x3.db"
    shutil.copyfile(original, x3)
    Path(f"{x3}-wal").write_bytes(_stale_wal_of_another_database(tmp_path, ["OTHER-1", "OTHER-2"]))
    return x3


# -- finding 1: a -wal that does not belong to the database ---------------------------------


@pytest.mark.parametrize("events", [3_000, 3], ids=["large", "small"])
@pytest.mark.parametrize("args", [("stock", "P1", "--json"), ("verify", "--json"), ("add", "P1", "1")])
def test_a_wal_left_by_another_database_is_refused_and_both_files_stay_as_they_were(tmp_path, events, args):
    x3 = _mispaired(tmp_path, events)
    before = _pair(x3)
    result = run_inventory(x3, *args)
    assert result.returncode == 74, result.stdout + result.stderr
    assert "-wal" in result.stderr and "untouched" in result.stderr
    assert "OTHER" not in result.stdout
    assert _pair(x3) == before
    # With the stray -wal moved aside, the database is whole.
    Path(f"{x3}-wal").rename(tmp_path / "stray-wal")
    Path(f"{x3}-shm").unlink(missing_ok=True)
    check = run_inventory(x3, "verify", "--json")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["events"] == events


def test_a_wal_left_by_a_crash_of_this_database_is_recovered(tmp_path):
    """The -wal that belongs to the file (a writer killed before its checkpoint) is not
    mistaken for a stray one: its events are there."""
    db = tmp_path / "inv.db"
    _import(db, [{"op": "add", "product": "A", "quantity": 1}] * 50)
    crashed = tmp_path / "crashed.db"
    with _held_open(db):
        for _ in range(3):
            assert run_inventory(db, "add", "A", "2").returncode == 0
        shutil.copyfile(db, crashed)
        shutil.copyfile(f"{db}-wal", f"{crashed}-wal")
    assert Path(f"{crashed}-wal").stat().st_size > 32
    result = run_inventory(crashed, "verify", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["events"] == 53
    stock = run_inventory(crashed, "stock", "A", "--json")
    assert json.loads(stock.stdout)[0]["on_hand"] == 56


def _foreign_wal_database(path: Path) -> None:
    """Another application's file in WAL mode, with changes still in its -wal."""
    copy_from = path.parent / "app-original.db"
    conn = sqlite3.connect(copy_from, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for n in range(20):
        conn.execute("INSERT INTO notes VALUES (?)", (f"unsaved {n}",))
    shutil.copyfile(copy_from, path)
    shutil.copyfile(f"{copy_from}-wal", f"{path}-wal")
    conn.close()


@pytest.mark.parametrize("args", [("stock",), ("add", "A", "1"), ("verify", "--json")])
def test_another_applications_wal_database_is_refused_and_its_wal_left_as_it_was(tmp_path, args):
    app_db = tmp_path / "app.db"
    _foreign_wal_database(app_db)
    before = _pair(app_db)
    result = run_inventory(app_db, *args)
    assert result.returncode == 74
    assert "another application" in result.stderr
    assert _pair(app_db) == before
    conn = sqlite3.connect(f"file:{app_db}?mode=ro", uri=True)
    assert conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 20
    conn.close()


# -- findings 3 and 4: symlink loops, FIFOs, directories, devices ----------------------------


@posix_only
@pytest.mark.parametrize("args", [("verify", "--json"), ("stock",), ("export",),
                                  ("rebuild-projections", "--check"), ("add", "A", "1"),
                                  ("import", "-")])
def test_a_symlink_loop_is_refused_with_74_not_read_as_an_empty_database(tmp_path, args):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    a.symlink_to(b)
    b.symlink_to(a)
    result = run_inventory(a, *args)
    assert result.returncode == 74, result.stdout
    assert "symbolic link" in result.stderr
    assert result.stdout == ""


@posix_only
@pytest.mark.parametrize("args", [("stock",), ("verify", "--json"), ("add", "A", "1"), ("export",)])
def test_a_fifo_at_the_path_is_refused_at_once(tmp_path, args):
    fifo = tmp_path / "fifo.db"
    os.mkfifo(fifo)
    result = run_inventory(fifo, *args, timeout=30)  # before the fix: blocked until killed
    assert result.returncode == 74
    assert "not a regular file" in result.stderr


@pytest.mark.parametrize("args", [("stock",), ("add", "A", "1")])
def test_a_directory_at_the_path_is_refused(tmp_path, args):
    folder = tmp_path / "folder.db"
    folder.mkdir()
    result = run_inventory(folder, *args)
    assert result.returncode == 74
    assert "directory" in result.stderr


@posix_only
def test_a_device_at_the_path_is_refused(tmp_path):
    result = run_inventory(Path("/dev/null"), "add", "A", "1")
    assert result.returncode == 74
    assert "not a regular file" in result.stderr


# -- finding 11: a file with user_version 7 and no tables ------------------------------------


def test_a_file_with_a_user_version_and_no_tables_is_an_empty_database(tmp_path):
    db = tmp_path / "v7.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    query = run_inventory(db, "stock", "--json")
    assert (query.returncode, query.stdout.strip()) == (0, "[]")
    write = run_inventory(db, "add", "A", "1")
    assert write.returncode == 0, write.stderr
    assert json.loads(run_inventory(db, "verify", "--json").stdout)["events"] == 1


# -- finding 6: a byte that is not UTF-8, written behind the triggers' back ---------------

TAMPERED_ACTOR = "CAST(x'726f6f74ff1b5b324a' AS TEXT)"  # "root", 0xff, ESC [2J (clear screen)


def _tamper_actor(db: Path, position: int) -> None:
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_refuse_update")
    conn.execute(f"UPDATE events SET actor = {TAMPERED_ACTOR} WHERE position = ?", (position,))
    conn.commit()
    conn.close()


@pytest.fixture
def tampered_db(tmp_path) -> Path:
    db = tmp_path / "inv.db"
    for product in ("A", "B", "C"):
        assert run_inventory(db, "add", product, "5").returncode == 0
    _tamper_actor(db, 2)
    return db


def test_verify_names_the_position_of_a_byte_that_is_not_utf8(tampered_db):
    result = run_inventory(tampered_db, "verify", "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["first_bad_position"] == 2 and report["events"] == 3
    assert "\x1b" not in result.stdout + result.stderr
    plain = run_inventory(tampered_db, "verify")
    assert plain.returncode == 1 and "position 2" in plain.stdout
    assert "\x1b" not in plain.stdout + plain.stderr


def test_reading_a_byte_that_is_not_utf8_says_so_escaped_and_points_to_verify(tampered_db):
    for args in (("history", "B"), ("export",)):
        result = run_inventory(tampered_db, *args)
        assert result.returncode == 74, result.stderr
        assert "not UTF-8" in result.stderr and "inventory verify" in result.stderr
        assert "free disk space" not in result.stderr
        assert "\x1b" not in result.stdout + result.stderr


def test_writes_beside_a_byte_that_is_not_utf8_go_on_and_verify_still_reports_it(tampered_db):
    """The decision (docs/guarantees.md): the log stays append-only and writable, as after
    any other change behind the tool's back; verify keeps naming the changed event."""
    result = run_inventory(tampered_db, "add", "A", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(run_inventory(tampered_db, "verify", "--json").stdout)
    assert (report["events"], report["first_bad_position"]) == (4, 2)


# -- finding 11: a full disk is called full -------------------------------------------------


@pytest.fixture
def full_disk(tmp_path):
    """A 600 KiB tmpfs holding a database, then filled to its last byte (needs root)."""
    import subprocess

    folder = tmp_path / "tiny"
    folder.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("filling a disk needs a tiny filesystem: mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tiny tmpfs here: {mounted.stderr.strip()[:200]}")
    try:
        db = folder / "inv.db"
        assert run_inventory(db, "add", "A", "1").returncode == 0
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        yield db
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.parametrize("args", [("add", "A", "5"), ("stock",)])
def test_a_full_disk_is_reported_as_full_not_as_a_disk_io_error(full_disk, args):
    result = run_inventory(full_disk, *args)
    assert result.returncode == 74
    assert "full" in result.stderr and "free some disk space" in result.stderr.lower()
    assert "I/O error" not in result.stderr


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="Linux lists POSIX locks in /proc/locks")
def test_inspecting_a_file_in_use_keeps_the_locks_of_connections_in_the_same_process(invoke, db_path):
    """Closing any descriptor of a file drops all of a process's POSIX locks on it; the
    inspection must not do that to a connection the same process holds (the CLI in
    process, as in these tests, or a program that embeds the store)."""
    assert invoke("add", "A", "1").exit_code == 0
    holder = sqlite3.connect(db_path)
    holder.execute("SELECT count(*) FROM sqlite_master").fetchone()
    try:
        assert invoke("add", "A", "1").exit_code == 0  # frames stay in the -wal
        shm = os.stat(f"{db_path}-shm")
        device = f"{os.major(shm.st_dev):02x}:{os.minor(shm.st_dev):02x}:{shm.st_ino}"
        locks = lambda: [l for l in Path("/proc/locks").read_text().splitlines()  # noqa: E731
                         if device in l.split() and str(os.getpid()) in l.split()]
        assert locks(), "the holder's lock on the -shm is listed"
        result = invoke("stock", "A")
        assert result.exit_code == 0 and json.loads(result.stdout)[0]["on_hand"] == 2
        assert locks(), "the inspection dropped this process's lock on the -shm"
    finally:
        holder.close()


def test_a_wal_left_on_read_only_media_is_explained_not_called_a_stray(tmp_path):
    """A database and the -wal of a crash, on media that cannot be written: SQLite cannot
    read the pair there (no -shm can be made), which is not the -wal's fault."""
    import subprocess

    folder = tmp_path / "media"
    folder.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("read-only media: mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        db = folder / "inv.db"
        assert run_inventory(db, "add", "A", "1").returncode == 0
        with _held_open(db):
            assert run_inventory(db, "add", "A", "1").returncode == 0
            crashed = folder / "crashed.db"
            shutil.copyfile(db, crashed)
            shutil.copyfile(f"{db}-wal", f"{crashed}-wal")
        before = _pair(crashed)
        assert subprocess.run(["mount", "-o", "remount,ro", str(folder)]).returncode == 0
        result = run_inventory(crashed, "stock")
        assert result.returncode == 74
        assert "-wal" in result.stderr and "do not belong" not in result.stderr
        assert "did not close" in result.stderr or "not closed cleanly" in result.stderr
        assert _pair(crashed) == before
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_wal_without_its_database_is_not_read_into_a_new_one(tmp_path):
    """The database was moved or deleted and its -wal stayed: a first write would create
    a new file and SQLite would replay that -wal into it."""
    db = tmp_path / "new.db"
    Path(f"{db}-wal").write_bytes(_stale_wal_of_another_database(tmp_path, ["OTHER-1"]))
    wal = _digest(Path(f"{db}-wal"))
    result = run_inventory(db, "add", "A", "1")
    assert result.returncode == 74
    assert "-wal" in result.stderr and "untouched" in result.stderr
    assert not db.exists() and _digest(Path(f"{db}-wal")) == wal
    query = run_inventory(db, "stock", "--json")
    assert (query.returncode, query.stdout.strip()) == (0, "[]")


def test_another_applications_file_next_to_an_inventory_wal_is_refused(tmp_path):
    """The -wal of an inventory database beside another application's file would turn
    that file into an inventory database at the first write."""
    app_db = tmp_path / "app.db"
    conn = sqlite3.connect(app_db)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.commit()
    conn.close()
    other = tmp_path / "other.db"
    assert run_inventory(other, "add", "SEED", "1").returncode == 0
    with _held_open(other):  # a -wal that holds page 1 (the file grew): the header is the -wal's
        _import(other, [{"op": "add", "product": f"OTHER-{n}", "quantity": 1} for n in range(400)])
        Path(f"{app_db}-wal").write_bytes(Path(f"{other}-wal").read_bytes())
    before = _pair(app_db)
    for args in (("stock", "--json"), ("add", "A", "1")):
        result = run_inventory(app_db, *args)
        assert result.returncode == 74, result.stdout
        assert "another application" in result.stderr
        assert _pair(app_db) == before
