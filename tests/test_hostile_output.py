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


# -- finding 7: terminal escapes stored in the file are shown escaped ----------------------

CLEAR_AND_RED = "\x1b[2J\x1b[31m"


def _tamper_every_text(db: Path, suffix: str) -> None:
    """Append ``suffix`` to the product code, name, customer and reason stored in the file,
    behind the triggers' back, as anyone who can write the file can."""
    conn = sqlite3.connect(db)
    try:
        triggers = [name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'")]
        for name in triggers:
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("UPDATE streams SET product = product || ?", (suffix,))
        conn.execute("UPDATE stock SET product = product || ?", (suffix,))
        conn.execute("UPDATE products SET product = product || ?, name = name || ?", (suffix, suffix))
        conn.execute("UPDATE reservations SET customer = customer || ?", (suffix,))
        conn.execute("UPDATE events SET data = json_set(data, '$.reason', 'late' || ?) "
                     "WHERE json_extract(data, '$.reason') IS NOT NULL", (suffix,))
        conn.execute("UPDATE events SET data = json_set(data, '$.customer', 'c' || ?) "
                     "WHERE json_extract(data, '$.customer') IS NOT NULL", (suffix,))
        conn.commit()
    finally:
        conn.close()


@pytest.fixture
def tampered_db(invoke, db_path) -> Path:
    for args in (("add", "P", "5"), ("reserve", "P", "1", "--customer", "c", "--id", "R1"),
                 ("reserve", "P", "1", "--customer", "c", "--id", "R2"),
                 ("product", "set", "P", "--name", "Tea")):
        assert invoke(*args).exit_code == 0
    _tamper_every_text(db_path, CLEAR_AND_RED)
    return db_path


QUERIES = [("stock",), ("history",), ("reservations",), ("product", "list"), ("replay",)]


@pytest.mark.parametrize("args", QUERIES, ids=[" ".join(a) for a in QUERIES])
def test_escapes_from_the_file_are_shown_escaped_in_plain_output(invoke, tampered_db, args):
    result = invoke(*args, json=False)
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert "\\x1b[2J" in result.stdout


def test_escapes_from_the_file_are_shown_escaped_in_messages(invoke, tampered_db):
    result = invoke("release", "R1", json=False)
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert "\\x1b[2J" in result.stdout


@pytest.mark.parametrize("args", [("stock", "--json"), ("history", "--json"), ("export",)])
def test_json_output_stays_json_and_holds_the_exact_text(invoke, tampered_db, args):
    result = invoke(*args, json=False)
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout
    documents = ([json.loads(line) for line in result.stdout.splitlines()] if args == ("export",)
                 else json.loads(result.stdout))
    assert any(CLEAR_AND_RED in str(value) for d in documents for value in d.values())


@pytest.mark.parametrize("mark", ["\u009b", "\u202e", "\u2028"], ids=["C1-CSI", "RLO", "LSEP"])
def test_json_escapes_c1_controls_and_direction_overrides_from_the_file(invoke, db_path, mark):
    assert invoke("add", "P", "5").exit_code == 0
    _tamper_every_text(db_path, mark)
    result = invoke("stock", "--json", json=False)
    assert mark not in result.stdout
    assert json.loads(result.stdout)[0]["product"] == "P" + mark


@posix_only
@pytest.mark.parametrize("args", QUERIES[:3], ids=[" ".join(a) for a in QUERIES[:3]])
def test_escapes_from_the_file_do_not_reach_a_real_terminal(tampered_db, args):
    import pty

    leader, follower = pty.openpty()
    env = process_env({"COLUMNS": "200", "LINES": "50", "TERM": "xterm", "INVENTORY_PAGER": "cat"})
    process = subprocess.Popen(inventory_argv(tampered_db, *args), env=env, cwd=tampered_db.parent,
                               stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process has ended
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0, seen
    screen = seen.decode("utf-8", "replace")
    assert "\x1b[2J" not in screen and "\x1b[31m" not in screen
    assert "\\x1b[2J" in screen


def test_metrics_on_a_terminal_or_a_pipe_pass_no_escape_from_the_file(invoke, tampered_db):
    pytest.importorskip("prometheus_client")
    conn = sqlite3.connect(tampered_db)
    conn.execute("UPDATE stock SET store = store || ?", (CLEAR_AND_RED,))  # metrics read the projections
    conn.commit()
    conn.close()
    result = invoke("metrics", json=False)
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "inventory_head_position" in result.stdout or "inventory_" in result.stdout


@pytest.mark.parametrize("args", [("export", "--consumer", "backup-feed"),
                                  ("report", "movements", "--csv")])
def test_the_feed_and_csv_pass_no_control_character_from_the_file(invoke, db_path, args):
    assert invoke("add", "P", "5").exit_code == 0
    _tamper_every_text(db_path, "\u009b2J" + CLEAR_AND_RED)
    result = invoke(*args, json=False)
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\u009b" not in result.stdout
    assert "P" in result.stdout
