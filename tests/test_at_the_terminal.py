"""What a clerk sees on a real terminal (a pseudo-terminal of a set size): Ctrl-C,
tables that fit, local times, the pager (docs/commands.md, "At a terminal")."""

from __future__ import annotations

import json
import re
from pathlib import Path

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


@pytest.mark.parametrize("command", [["export"]])
def test_ctrl_c_ends_a_query_with_130_and_no_word_about_writing(long_log, command):
    with Terminal(long_log, *command, rows=24, columns=80) as term:
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
                      "Audit", "Maintenance"]
    assert "<bool>" not in shown.text and "<str>" not in shown.text


def test_help_of_a_command_on_a_terminal_reads_like_its_usage(tmp_path):
    with Terminal(tmp_path / "none.db", "add", "--help", rows=24, columns=80) as term:
        shown = term.finish()
    assert "Usage: inventory add PRODUCT QUANTITY [OPTIONS]" in shown.text
    assert "<" not in shown.text and "{" not in shown.text
