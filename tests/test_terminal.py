"""What a person sees on a real terminal (a pseudo-terminal, 40 rows x 120 columns).

On a terminal the tool takes paths that CliRunner and pipes never reach: tables are
drawn by rich, and a long import draws a progress bar on stderr. The real tool runs
as a process (``tests/terminal.py``); escape sequences are stripped before comparing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_inventory
from terminal import on_terminal

# Codes, names, customers, ids and reasons that look like rich markup: each is data and
# must be shown exactly (docs/guarantees.md, "8. Codes are ordinary text").
PRODUCT = "[bold]X"
NAME = "[red] tea [/]"
CUSTOMER = "A[/]"
RESERVATION = "R[/b]1"
OTHER_STORE = "[red]"
TRANSFER = "T[/]1"
USER = "B[/i]"
REASON = "[i]in[/i]"


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


@pytest.fixture
def markup_lookalikes(invoke, db_path: Path) -> Path:
    ok(invoke("add", PRODUCT, "10", "--reason", REASON, "--user", USER))
    ok(invoke("product", "set", PRODUCT, "--name", NAME, "--reorder-point", "3"))
    ok(invoke("reserve", PRODUCT, "2", "--customer", CUSTOMER, "--id", RESERVATION))
    ok(invoke("transfer", PRODUCT, "3", "--from", "main", "--to", OTHER_STORE, "--id", TRANSFER))
    return db_path


@pytest.mark.parametrize(
    ("command", "columns", "shown"),
    [
        (("stock",), 120, [PRODUCT, NAME]),
        (("stock", "--all-stores"), 120, [OTHER_STORE, PRODUCT, NAME]),
        # Wider: at 120 columns rich folds the long cells of the detail column.
        (("history",), 200, [PRODUCT, f"reason={REASON}", USER, f"customer={CUSTOMER}",
                             f"reservation_id={RESERVATION}", f"transfer_id={TRANSFER}",
                             f"to_store={OTHER_STORE}"]),
        (("reservations",), 120, [RESERVATION, PRODUCT, CUSTOMER]),
        (("transfers",), 120, [TRANSFER, PRODUCT, OTHER_STORE]),
        (("product", "list", "--all-stores"), 120, [OTHER_STORE, PRODUCT, NAME]),
    ],
    ids=["stock", "stock-all-stores", "history", "reservations", "transfers", "product-list"],
)
def test_tables_on_a_terminal_show_markup_lookalikes_exactly(markup_lookalikes, command, columns,
                                                             shown):
    """rich draws these tables only on a terminal; a code printed through it as markup
    would lose its brackets, or stop the command with exit 70 (`A[/]`)."""
    result = on_terminal(markup_lookalikes, *command, columns=columns)
    assert result.exit_code == 0, result.text
    assert "\x1b[" in result.raw  # drawn by rich (bold header), not the plain grid of a pipe
    lines = result.text.splitlines()
    for value in shown:
        assert any(value in line for line in lines), f"{value!r} not shown:\n{result.text}"


@pytest.fixture
def long_import(tmp_path: Path) -> Path:
    rows = tmp_path / "rows.ndjson"
    with rows.open("w") as out:
        for i in range(50_000):
            out.write(json.dumps({"op": "add", "product": f"SKU-{i % 500}", "quantity": 1}) + "\n")
    return rows


PROGRESS_BAR = ("Importing", "━")  # the bar's label and the line it is drawn with
SUMMARY = "Imported 50,000 rows (0 duplicates skipped)"


def test_a_long_import_shows_a_progress_bar_on_a_terminal(tmp_path, long_import):
    """docs/import.md, "Progress, --quiet, --json": a bar on stderr when it is a terminal."""
    result = on_terminal(tmp_path / "inv.db", "import", long_import)
    assert result.exit_code == 0, result.text
    for mark in PROGRESS_BAR:
        assert mark in result.raw, result.raw[:2000]
    redraws = result.raw.replace("\r\n", "\n")
    assert "\r" in redraws and "\x1b[" in redraws  # drawn in place, over and over
    assert SUMMARY in result.text.splitlines()[-1]  # and the bar made way for the summary


def test_quiet_shows_no_progress_bar_on_a_terminal(tmp_path, long_import):
    result = on_terminal(tmp_path / "inv.db", "import", long_import, "--quiet")
    assert result.exit_code == 0, result.text
    assert result.raw == ""


def test_a_long_import_in_a_pipe_prints_no_progress_bar(tmp_path, long_import):
    """In a pipe, a log file or cron there is none: the summary line and nothing else."""
    result = run_inventory(tmp_path / "inv.db", "import", long_import)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(SUMMARY) and result.stdout.count("\n") == 1
    for mark in (*PROGRESS_BAR, "\r", "\x1b"):
        assert mark not in result.stdout + result.stderr
