"""What a clerk sees on a real terminal (a pseudo-terminal of a set size): Ctrl-C,
tables that fit, local times, the pager (docs/commands.md, "At a terminal")."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sqlite3
import unicodedata
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import run_inventory
from terminal import Terminal


@pytest.fixture(scope="module")
def long_log(tmp_path_factory) -> Path:
    """A store whose export and history take many screens."""
    db = tmp_path_factory.mktemp("long") / "inv.db"
    rows = db.parent / "rows.ndjson"
    rows.write_text("".join(
        json.dumps({"op": "add", "product": f"SKU-{i % 300:04}", "quantity": 1}) + "\n"
        for i in range(20_000)
    ))
    assert run_inventory(db, "import", str(rows)).returncode == 0
    return db


@pytest.mark.parametrize("command", [["export"], ["--no-pager", "history"]])
def test_ctrl_c_ends_a_query_with_130_and_no_word_about_writing(long_log, command):
    with Terminal(long_log, *command, rows=24, columns=80, env={"INVENTORY_PAGER": "cat"}) as term:
        term.read_until(r"SKU-0001")
        term.send("\x03")
        shown = term.finish()
    assert shown.exit_code == 130
    assert "written" not in shown.text and "Traceback" not in shown.text


def test_help_on_a_terminal_groups_commands_in_panels_and_shows_no_python_types(tmp_path):
    with Terminal(tmp_path / "none.db", "--help", rows=24, columns=80) as term:
        shown = term.finish()
    assert shown.exit_code == 0
    panels = re.findall(r"╭─ (.+?) ─", shown.text)
    assert panels == ["Options", "Stock moves", "Reservations", "Transfers", "Products", "Queries",
                      "Reports", "Audit", "Feed", "Maintenance"]
    assert "<bool>" not in shown.text and "<str>" not in shown.text


def test_help_of_a_command_on_a_terminal_reads_like_its_usage(tmp_path):
    with Terminal(tmp_path / "none.db", "add", "--help", rows=24, columns=80) as term:
        shown = term.finish()
    assert "Usage: inventory add PRODUCT QUANTITY [OPTIONS]" in shown.text
    assert "<" not in shown.text and "{" not in shown.text


# -- tables that fit, times as people read them ---------------------------------------

LONG_PRODUCT = "ESPRESSO-CUP-WHITE-90ML"
WIDE_PRODUCT = "茶葉-緑-100g"
RESERVATION = "web-order-2026-000417"
TRANSFER = "T-NORTH-2026-11-27-A"


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    """A store as a clerk has it: long codes and names, reservations, a transfer, a count."""
    db = tmp_path_factory.mktemp("shop") / "inv.db"
    for args in [
        ("add", LONG_PRODUCT, "120", "--reason", "delivery from the roastery, pallet 7 of 9"),
        ("add", WIDE_PRODUCT, "30"),
        ("add", "MUG-BLUE", "17"),
        ("product", "set", LONG_PRODUCT, "--name", "Espresso cup, white porcelain, 90 ml, box of six",
         "--reorder-point", "25"),
        ("reserve", LONG_PRODUCT, "4", "--customer", "Mrs Evelyn Montgomery-Hargreaves",
         "--id", RESERVATION, "--ttl", "2h"),
        ("reserve", "MUG-BLUE", "2", "--customer", "c-17"),
        ("transfer", LONG_PRODUCT, "6", "--from", "main", "--to", "north-warehouse", "--id", TRANSFER),
        ("count", WIDE_PRODUCT, "28"),
        ("remove", "MUG-BLUE", "1", "--reason", "dropped by a customer near the counter, swept up"),
    ]:
        result = run_inventory(db, *args)
        assert result.returncode == 0, result.stderr
    return db


def cells(line: str) -> int:
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in line)


WHOLE = [LONG_PRODUCT, WIDE_PRODUCT, "MUG-BLUE"]


@pytest.mark.parametrize(("command", "whole"), [
    (["stock"], WHOLE + ["main"]),
    (["stock", "--all-stores"], WHOLE + ["north-warehouse"]),
    (["history"], WHOLE + [RESERVATION, TRANSFER]),
    (["history", LONG_PRODUCT], [RESERVATION, TRANSFER]),
    (["reservations"], [LONG_PRODUCT, "MUG-BLUE", RESERVATION]),
    (["transfers"], [LONG_PRODUCT, TRANSFER, "north-warehouse"]),
    (["product", "list", "--all-stores"], WHOLE + ["north-warehouse"]),
    (["diff", "--from-position", "0", "--all-stores"], WHOLE + ["north-warehouse"]),
], ids=["stock", "stock-all", "history", "history-product", "reservations", "transfers",
        "product-list", "diff"])
def test_at_80_columns_every_line_fits_and_codes_and_ids_stay_whole(shop, command, whole):
    with Terminal(shop, *command, rows=50, columns=80, env={"INVENTORY_PAGER": "cat"}) as term:
        shown = term.finish()
    assert shown.exit_code == 0, shown.text
    lines = shown.text.splitlines()
    assert max(cells(line) for line in lines) <= 80, shown.text
    for value in whole:
        assert any(value in line for line in lines), f"{value!r} broken or missing:\n{shown.text}"
    header = lines[0].split()
    assert "/" not in lines[0] and len(header) >= 4, shown.text  # one header line, words whole


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/St_Johns", "UTC"])
def test_times_on_a_terminal_are_local_to_the_second(shop, zone):
    [line] = json.loads(run_inventory(shop, "stock", "MUG-BLUE", "--json").stdout)
    local = datetime.fromisoformat(line["updated_at"]).astimezone(ZoneInfo(zone))
    with Terminal(shop, "stock", "MUG-BLUE", rows=24, columns=100, env={"TZ": zone}) as term:
        shown = term.finish()
    assert local.strftime("%Y-%m-%d %H:%M:%S") in shown.text, shown.text
    assert "+00:00" not in shown.text and not re.search(r":\d\d\.\d", shown.text)


# -- the pager -------------------------------------------------------------------------


@pytest.fixture
def recording_pager(tmp_path) -> tuple[str, Path]:
    """A pager that notes it ran, then shows its input as it is."""
    mark = tmp_path / "pager-ran"
    script = tmp_path / "pager.sh"
    script.write_text(f"#!/bin/sh\necho ran >> {mark}\ncat\n")
    script.chmod(0o755)
    return str(script), mark


def test_output_longer_than_the_screen_goes_through_the_pager(shop, recording_pager):
    pager, mark = recording_pager
    with Terminal(shop, "history", rows=10, columns=80, env={"INVENTORY_PAGER": pager}) as term:
        shown = term.finish()
    assert shown.exit_code == 0
    assert mark.read_text() == "ran\n"
    assert RESERVATION in shown.text and "swept up" in shown.text  # all of it, through the pager


@pytest.mark.parametrize(("options", "env"), [
    ([], {}),  # fits the screen
    (["--no-pager"], {}),
    ([], {"INVENTORY_PAGER": "cat"}),
], ids=["short", "no-pager", "cat"])
def test_no_pager_for_short_output_or_when_turned_off(shop, recording_pager, options, env):
    pager, mark = recording_pager
    rows = 60 if not options and not env else 10
    env = {"INVENTORY_PAGER": pager, **env}
    with Terminal(shop, *options, "history", rows=rows, columns=80, env=env) as term:
        shown = term.finish()
    assert shown.exit_code == 0
    assert "swept up" in shown.text
    assert not mark.exists()


def test_pager_falls_back_to_PAGER_and_is_never_used_in_a_pipe(shop, recording_pager):
    pager, mark = recording_pager
    with Terminal(shop, "history", rows=10, columns=80, env={"PAGER": pager}) as term:
        assert term.finish().exit_code == 0
    assert mark.read_text() == "ran\n"
    mark.unlink()
    piped = run_inventory(shop, "history", env={"INVENTORY_PAGER": pager})
    assert piped.returncode == 0 and "swept up" in piped.stdout
    assert not mark.exists()


# -- a write that waits for another writer -------------------------------------------------


def test_a_write_waiting_for_another_writer_says_so_then_goes_ahead(tmp_path):
    db = tmp_path / "inv.db"
    assert run_inventory(db, "add", "TEA", "1").returncode == 0
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # as an import holding the write lock
    try:
        with Terminal(db, "add", "TEA", "2", rows=24, columns=80) as term:
            term.read_until(r"waiting for another writer")
            holder.execute("COMMIT")
            shown = term.finish()
    finally:
        holder.close()
    assert shown.exit_code == 0, shown.text
    assert "Now 3 on hand" in shown.text


def test_a_write_waiting_in_a_script_says_nothing_until_it_gives_up(tmp_path):
    db = tmp_path / "inv.db"
    assert run_inventory(db, "add", "TEA", "1").returncode == 0
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = run_inventory(db, "add", "TEA", "2", env={"INVENTORY_BUSY_TIMEOUT": "2"})
    finally:
        holder.close()
    assert result.returncode == 75
    assert "waiting" not in result.stderr and "stayed busy" in result.stderr


@pytest.mark.skipif(shutil.which("less") is None, reason="less is not installed")
@pytest.mark.parametrize(("keys", "code"), [("q", 0), ("\x03q", 130)], ids=["quit", "ctrl-c"])
def test_leaving_less_early_ends_the_query_quietly(long_log, keys, code):
    """The default pager, left on its first screen: a reader that stops early (exit 0),
    or Ctrl-C (130); the query waits for less, then ends without a word."""
    env = {"INVENTORY_PAGER": "less -FRX"}
    with Terminal(long_log, "history", rows=24, columns=80, env=env) as term:
        term.read_until(r"SKU-0010")
        for key in keys:  # a Ctrl-C flushes the keys typed before it is handled: repeat them
            for _ in range(120):
                term.send(key)
                try:
                    term.process.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    if key == "\x03":
                        break
        shown = term.finish()
    assert shown.exit_code == code
    assert "inventory:" not in shown.text and "Traceback" not in shown.text
