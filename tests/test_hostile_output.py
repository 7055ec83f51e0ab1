"""What reaches stdout, from issue 13 (an adversarial trial): a reader that leaves
before a committed write is printed (finding 2), and terminal escapes stored in the
file behind the tool's back (finding 7)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import data, event_count, inventory_argv, process_env

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")


def _run_with_stdout_closed(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the tool with stdout a pipe whose reader has already gone (`| head -c 0`)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(inventory_argv(db, *args), env=process_env(), cwd=db.parent,
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)


# -- finding 2: a committed write whose reader left exits 0, quietly ------------------------


@posix_only
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "plain"])
def test_a_committed_write_whose_reader_left_exits_0_and_never_says_nothing_was_written(tmp_path, as_json):
    db = tmp_path / "inv.db"
    result = _run_with_stdout_closed(db, "add", "A", "1", *(["--json"] if as_json else []))
    assert event_count(db) == 1  # the write was committed …
    assert result.returncode == 0  # … so the command says it succeeded
    assert result.stderr == ""
    again = _run_with_stdout_closed(db, "reserve", "A", "1", "--customer", "c", "--json")
    assert (again.returncode, again.stderr, event_count(db)) == (0, "", 2)


@posix_only
@pytest.mark.parametrize("args", [("stock",), ("history", "A"), ("export",), ("stock", "--json")])
def test_a_query_whose_reader_left_exits_0_with_nothing_on_stderr(tmp_path, args):
    db = tmp_path / "inv.db"
    subprocess.run(inventory_argv(db, "add", "A", "1"), env=process_env(), check=True,
                   capture_output=True, cwd=tmp_path)
    result = _run_with_stdout_closed(db, *args)
    assert (result.returncode, result.stderr) == (0, "")


@posix_only
def test_a_failed_verify_whose_reader_left_still_exits_1(tmp_path):
    db = tmp_path / "inv.db"
    subprocess.run(inventory_argv(db, "add", "A", "1"), env=process_env(), check=True,
                   capture_output=True, cwd=tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE stock SET on_hand = 5")
    conn.close()
    result = _run_with_stdout_closed(db, "verify", "--json")
    assert (result.returncode, result.stderr) == (1, "")
