"""`inventory backup PATH` (spec/cli.md, "Guarantees"): a consistent copy in one new
file, taken while others keep writing; an existing PATH is refused (exit 1) and left
as it was. Real files and real processes."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from conftest import event_count, run_inventory, spawn_inventory


def _verify(db: Path) -> dict:
    result = run_inventory(db, "verify", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def _hashes(db: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT position, hash FROM events ORDER BY position").fetchall()
    finally:
        conn.close()


def test_a_backup_taken_while_another_process_writes_is_a_consistent_prefix_of_the_log(tmp_path):
    db = tmp_path / "shop.db"
    assert run_inventory(db, "add", "A", "1").returncode == 0
    rows = tmp_path / "rows.ndjson"
    rows.write_text("".join(
        json.dumps({"op": "add", "product": f"P{n % 30}", "quantity": 1, "id": f"k{n}"}) + "\n"
        for n in range(6_000)), encoding="utf-8")
    writer = spawn_inventory(db, "import", str(rows), "--batch-size", "20", "--quiet")
    backups = []
    try:
        while writer.poll() is None and len(backups) < 8:
            target = tmp_path / f"backup-{len(backups)}.db"
            result = run_inventory(db, "backup", str(target), "--json")
            assert result.returncode == 0, result.stderr
            backups.append((target, json.loads(result.stdout)))
    finally:
        _, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    assert backups, "the writer finished before any backup ran"
    full = _hashes(db)
    for target, report in backups:
        assert not Path(f"{target}-wal").exists() and not Path(f"{target}-shm").exists()
        check = _verify(target)  # chain and projections hold in the copy alone
        assert check["events"] == report["events"] == event_count(target)
        assert check["head_hash"] == report["head_hash"]
        assert _hashes(target) == full[: report["events"]]  # a state the log really was in
    assert _verify(db)["events"] == 6_001


def test_a_backup_holds_what_is_still_in_the_wal_where_a_copy_with_cp_does_not(tmp_path):
    db = tmp_path / "shop.db"
    assert run_inventory(db, "add", "A", "1").returncode == 0
    holder = sqlite3.connect(db)  # another process's open connection: no checkpoint at exit
    holder.execute("SELECT count(*) FROM sqlite_master").fetchone()
    try:
        for _ in range(3):
            assert run_inventory(db, "add", "A", "1").returncode == 0
        assert Path(f"{db}-wal").stat().st_size > 0
        shutil.copyfile(db, tmp_path / "cp-copy.db")
        assert run_inventory(db, "backup", str(tmp_path / "backup.db")).returncode == 0
    finally:
        holder.close()
    assert _verify(tmp_path / "backup.db")["events"] == 4
    assert event_count(tmp_path / "cp-copy.db") < 4  # docs/commands.md: cp is not a backup


@pytest.mark.parametrize("existing", ["file", "directory", "the database itself"])
def test_an_existing_path_is_refused_with_1_and_left_as_it_was(tmp_path, existing):
    db = tmp_path / "shop.db"
    assert run_inventory(db, "add", "A", "1").returncode == 0
    if existing == "file":
        target = tmp_path / "old-backup.db"
        target.write_bytes(b"last week's backup")
    elif existing == "directory":
        target = tmp_path / "folder"
        target.mkdir()
    else:
        target = db
    before = hashlib.sha256(target.read_bytes()).hexdigest() if target.is_file() else None
    result = run_inventory(db, "backup", str(target))
    assert result.returncode == 1
    assert "already exists" in result.stderr and result.stdout == ""
    if before is not None:
        assert hashlib.sha256(target.read_bytes()).hexdigest() == before
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_a_backup_of_a_database_that_does_not_exist_is_refused_and_creates_nothing(tmp_path):
    result = run_inventory(tmp_path / "missing.db", "backup", str(tmp_path / "copy.db"))
    assert result.returncode == 1
    assert "nothing to back up" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_backup_into_a_folder_that_cannot_be_written_exits_74_and_leaves_nothing(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root may write any folder")
    db = tmp_path / "shop.db"
    assert run_inventory(db, "add", "A", "1").returncode == 0
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = run_inventory(db, "backup", str(locked / "copy.db"))
    assert result.returncode == 74
    assert list(locked.iterdir()) == []
