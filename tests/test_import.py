"""`inventory import`: the batch import of docs/import.md.

What a user notices is asserted: exit codes, the JSON report on stdout, the
messages on stderr, what `stock` and `history` show afterwards, and the number
of events in the SQLite file. Every test works on real SQLite files under
``tmp_path``; the fixtures are local to this module.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import inventory_cli
from inventory_cli.cli.main import app

EXIT_OK, EXIT_USAGE, EXIT_BAD_DATA = 0, 2, 65
REPORT_KEYS = {"applied", "duplicates", "rejected", "errors"}

# Variables that change what the tool does: unset unless a test sets them.
_TOOL_ENV = (
    "INVENTORY_DB", "INVENTORY_STORE", "INVENTORY_USER", "INVENTORY_DEBUG",
    "INVENTORY_BUSY_TIMEOUT", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
)
# The code under test, for the real processes (the same code as in-process).
_PACKAGE_ROOT = str(Path(inventory_cli.__file__).resolve().parent.parent)


# -- helpers ----------------------------------------------------------------------------


def events_in(db: Path) -> int:
    """Events in the log, read without creating the file (0 when it does not exist)."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()


def ndjson(*rows: object) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def at_of(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Tool:
    """The CLI in-process (CliRunner) on one database file."""

    def __init__(self, db: Path, workdir: Path) -> None:
        self.db = db
        self.dir = workdir
        self.runner = CliRunner()

    def run(self, *args: object, input: str | bytes | None = None, env: dict | None = None):
        environment: dict[str, str | None] = {name: None for name in _TOOL_ENV}
        environment["INVENTORY_DB"] = str(self.db)
        environment.update(env or {})
        result = self.runner.invoke(
            app, [str(a) for a in args], env=environment, input=input, catch_exceptions=False
        )
        assert "Traceback" not in result.output
        return result

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.dir / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8", newline="")
        else:
            path.write_bytes(content)
        return path

    def import_json(self, *args: object, input: str | bytes | None = None):
        """`import ... --json`: (result, the report). The report is the only thing on stdout."""
        result = self.run("import", *args, "--json", input=input)
        report = json.loads(result.stdout)
        assert REPORT_KEYS <= set(report)
        return result, report

    def stock(self, product: str | None = None, *, store: str | None = None) -> list[dict]:
        args = ["stock"] + ([product] if product else []) + (["--store", store] if store else ["--all-stores"])
        result = self.run(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def line(self, product: str, store: str = "main") -> dict:
        lines = self.stock(product, store=store)
        assert len(lines) == 1, lines
        return lines[0]

    def history(self, product: str, store: str = "main") -> list[dict]:
        result = self.run("history", product, "--store", store, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def events(self) -> int:
        return events_in(self.db)


@pytest.fixture
def tool(tmp_path: Path) -> Tool:
    return Tool(tmp_path / "inv.db", tmp_path)


@pytest.fixture
def seeded(tool: Tool) -> Tool:
    """A database with history: A has 10 on hand in main, 2 of them reserved as R-SEED."""
    assert tool.run("add", "A", "10").exit_code == 0
    assert tool.run("reserve", "A", "2", "--customer", "seed", "--id", "R-SEED").exit_code == 0
    assert tool.events() == 2
    return tool


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Tool:
    """Like ``seeded``, one database for the tests that must leave it as it was."""
    workdir = tmp_path_factory.mktemp("shared")
    tool = Tool(workdir / "inv.db", workdir)
    assert tool.run("add", "A", "10").exit_code == 0
    assert tool.run("reserve", "A", "2", "--customer", "seed", "--id", "R-SEED").exit_code == 0
    return tool


def assert_nothing_written(tool: Tool, events_before: int, stock_before: list[dict]) -> None:
    assert tool.events() == events_before
    assert tool.stock() == stock_before


# -- formats and sources -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rows.ndjson", "rows.jsonl", "ROWS.NDJSON"])
def test_ndjson_file_is_applied(tool: Tool, name: str) -> None:
    path = tool.file(name, ndjson(
        {"op": "add", "product": "A", "quantity": 7},
        {"op": "add", "product": "B", "quantity": 3, "reason": "delivery"},
        {"op": "remove", "product": "A", "quantity": 2},
    ))
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    assert report == {"applied": 3, "duplicates": 0, "rejected": 0, "errors": []}
    assert result.stderr == ""
    assert tool.events() == 3
    assert (tool.line("A")["on_hand"], tool.line("B")["on_hand"]) == (5, 3)
    assert tool.history("B")[0]["reason"] == "delivery"


def test_csv_file_is_applied_and_empty_cells_are_absent(tool: Tool) -> None:
    path = tool.file("rows.csv", (
        "op,product,quantity,reason,store,customer,reservation_id\n"
        "add,A,7,,,,\n"
        "add,A,3,delivery,north,,\n"
        "reserve,A,2,,,c-1,R-CSV\n"
        "remove,A,1,,,,\n"
    ))
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    assert report["applied"] == 4 and report["rejected"] == 0
    main = tool.line("A", "main")
    assert (main["on_hand"], main["reserved"], main["available"]) == (6, 2, 4)
    assert tool.line("A", "north")["on_hand"] == 3
    reasons = [event["reason"] for event in tool.history("A")]
    assert reasons == ["received", None, "sold"]  # empty cells took the defaults


def test_csv_with_bom_and_crlf_line_endings(tool: Tool) -> None:
    path = tool.file("excel.csv", "\ufeffop,product,quantity\r\nadd,A,4\r\nadd,B,5\r\n".encode("utf-8"))
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    assert report["applied"] == 2
    assert tool.line("B")["on_hand"] == 5


@pytest.mark.parametrize("argv", [["-"], []], ids=["dash", "no-file-argument"])
def test_ndjson_from_stdin(tool: Tool, argv: list[str]) -> None:
    rows = ndjson({"op": "add", "product": "A", "quantity": 4}, {"op": "count", "product": "A", "quantity": 3})
    result, report = tool.import_json(*argv, input=rows)
    assert result.exit_code == EXIT_OK, result.output
    assert report["applied"] == 2
    assert tool.line("A")["on_hand"] == 3


def test_csv_from_stdin_with_format(tool: Tool) -> None:
    result, report = tool.import_json("-", "--format", "csv", input="op,product,quantity\nadd,A,4\n")
    assert result.exit_code == EXIT_OK, result.output
    assert report["applied"] == 1
    assert tool.line("A")["on_hand"] == 4


def test_bad_rows_from_stdin_are_reported_with_their_lines(tool: Tool) -> None:
    rows = ndjson({"op": "add", "product": "A", "quantity": 4}) + "\n" + ndjson({"op": "add", "product": "A", "quantity": 0})
    result, report = tool.import_json("-", input=rows)
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [3]
    assert tool.events() == 0


def test_empty_files_apply_nothing(tool: Tool) -> None:
    for path in (tool.file("e.ndjson", ""), tool.file("e.csv", ""), tool.file("h.csv", "op,product,quantity\n")):
        result, report = tool.import_json(path)
        assert result.exit_code == EXIT_OK, (path, result.output)
        assert report == {"applied": 0, "duplicates": 0, "rejected": 0, "errors": []}
    assert tool.events() == 0


# -- every op and its fields -------------------------------------------------------------------


def test_every_op_with_its_fields_and_reservations_made_earlier_in_the_file(tool: Tool) -> None:
    path = tool.file("ops.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 10, "reason": "delivery"},
        {"op": "reserve", "product": "A", "quantity": 3, "customer": "c-1", "reservation_id": "R-1"},
        {"op": "reserve", "product": "A", "quantity": 2, "customer": "c-2", "id": "R-2"},
        {"op": "fulfill", "reservation_id": "R-1"},
        {"op": "release", "reservation_id": "R-2", "reason": "cancelled"},
        {"op": "remove", "product": "A", "quantity": 1, "reason": "damaged"},
        {"op": "count", "product": "A", "quantity": 4},
        {"op": "count", "product": "B", "quantity": 0},
    ))
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    assert report == {"applied": 8, "duplicates": 0, "rejected": 0, "errors": []}

    events = tool.history("A")
    assert [(e["type"], e["quantity"]) for e in events] == [
        ("StockAdded", 10), ("StockReserved", 3), ("StockReserved", 2), ("ReservationFulfilled", 3),
        ("StockReleased", 2), ("StockRemoved", 1), ("StockCounted", -2),
    ]
    assert events[0]["reason"] == "delivery"
    assert (events[1]["customer"], events[1]["reservation_id"]) == ("c-1", "R-1")
    assert (events[2]["customer"], events[2]["reservation_id"]) == ("c-2", "R-2")
    assert events[4]["reason"] == "cancelled"
    assert events[5]["reason"] == "damaged"
    assert [(e["on_hand"], e["reserved"]) for e in events] == [
        (10, 0), (10, 3), (10, 5), (7, 2), (7, 0), (6, 0), (4, 0),
    ]
    line = tool.line("A")
    assert (line["on_hand"], line["reserved"], line["available"], line["version"]) == (4, 0, 4, 7)
    assert tool.line("B")["on_hand"] == 0  # a count of 0 starts the line
    assert tool.events() == 8


def test_rows_act_on_reservations_made_before_the_import(seeded: Tool) -> None:
    path = seeded.file("r.ndjson", ndjson({"op": "fulfill", "reservation_id": "R-SEED"}))
    result, report = seeded.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    line = seeded.line("A")
    assert (line["on_hand"], line["reserved"]) == (8, 0)


def test_store_per_row_and_default_from_the_store_option(tool: Tool) -> None:
    path = tool.file("stores.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 5},
        {"op": "add", "product": "A", "quantity": 7, "store": "north"},
        {"op": "reserve", "product": "A", "quantity": 2, "customer": "c", "reservation_id": "R-N", "store": "north"},
        {"op": "release", "reservation_id": "R-N"},  # finds the store itself
    ))
    result = tool.run("import", path, "--store", "south", "--json")
    assert result.exit_code == EXIT_OK, result.output
    lines = {(line["store"], line["product"]): line for line in tool.stock()}
    assert set(lines) == {("south", "A"), ("north", "A")}
    assert lines["south", "A"]["on_hand"] == 5
    assert (lines["north", "A"]["on_hand"], lines["north", "A"]["reserved"]) == (7, 0)
    assert [e["type"] for e in tool.history("A", "north")] == ["StockAdded", "StockReserved", "StockReleased"]


def test_transfer_and_receive_rows(tool: Tool) -> None:
    path = tool.file("moves.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 10, "id": "t-0"},
        {"op": "transfer", "product": "A", "quantity": 4, "from": "main", "to": "north", "transfer_id": "T-1"},
        {"op": "receive", "transfer_id": "T-1", "quantity": 3, "id": "t-2"},
        {"op": "transfer", "product": "A", "quantity": 2, "from": "main", "to": "north", "id": "T-2"},
    ))
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    assert report["applied"] == 4
    main, north = tool.line("A", "main"), tool.line("A", "north")
    assert (main["on_hand"], main["available"]) == (4, 4)
    assert (north["on_hand"], north.get("incoming")) == (3, 2)
    assert [e["type"] for e in tool.history("A", "north")] == [
        "TransferAnnounced", "TransferReceived", "TransferLost", "TransferAnnounced",
    ]
    events = tool.events()
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    assert (report["applied"], report["duplicates"]) == (0, 4)
    assert tool.events() == events


def test_bad_transfer_and_receive_rows(seeded: Tool) -> None:
    before = seeded.events()
    path = seeded.file("moves.ndjson", ndjson(
        {"op": "transfer", "product": "A", "quantity": 1, "from": "main", "to": "north"},
        {"op": "transfer", "product": "A", "quantity": 1, "from": "main", "to": "main"},
        {"op": "transfer", "product": "A", "quantity": 100, "from": "main", "to": "north"},
        {"op": "transfer", "product": "A", "quantity": 1, "to": "north"},
        {"op": "receive", "transfer_id": "T-NOPE"},
    ))
    result, report = seeded.import_json(path)
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [2, 3, 4, 5]
    assert seeded.events() == before


def test_user_per_row_and_default_actor(tool: Tool) -> None:
    path = tool.file("who.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 1, "user": "bob"},
        {"op": "add", "product": "A", "quantity": 1},
    ))
    result = tool.run("import", path, "--json", env={"INVENTORY_USER": "carol"})
    assert result.exit_code == EXIT_OK, result.output
    assert [e.get("actor") for e in tool.history("A")] == ["bob", "carol"]

    bad = tool.file("bad-user.ndjson", ndjson({"op": "add", "product": "A", "quantity": 1, "user": " bob"}))
    result, report = tool.import_json(bad)
    assert result.exit_code == EXIT_BAD_DATA
    assert "user" in report["errors"][0]["error"]
    assert tool.events() == 2


def test_store_default_from_the_environment(tool: Tool) -> None:
    path = tool.file("a.ndjson", ndjson({"op": "add", "product": "A", "quantity": 5}))
    result = tool.run("import", path, env={"INVENTORY_STORE": "east"})
    assert result.exit_code == EXIT_OK, result.output
    assert [(line["store"], line["on_hand"]) for line in tool.stock()] == [("east", 5)]


def test_quantity_as_text_and_as_number_are_the_same(tool: Tool) -> None:
    path = tool.file("q.ndjson", ndjson({"op": "add", "product": "A", "quantity": "5"}))
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    assert tool.line("A")["on_hand"] == 5


def test_codes_are_stored_as_given_after_nfc(tool: Tool) -> None:
    path = tool.file("u.ndjson", ndjson(
        {"op": "add", "product": "Cafe\u0301 'x'; 50%/y", "quantity": 1},
        {"op": "add", "product": "Caf\u00e9 'x'; 50%/y", "quantity": 2},
    ))
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    assert [(line["product"], line["on_hand"]) for line in tool.stock()] == [("Caf\u00e9 'x'; 50%/y", 3)]


# -- all or nothing --------------------------------------------------------------------------


def test_good_and_bad_rows_write_nothing_and_every_bad_row_is_reported(seeded: Tool) -> None:
    before, stock_before = seeded.events(), seeded.stock()
    path = seeded.file("mixed.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 5},                 # 1 good
        {"op": "add", "product": "A", "quantity": 0},                 # 2 bad
        {"op": "add", "product": "B", "quantity": 5},                 # 3 good
    ) + "\n" + ndjson(                                                # 4 blank
        {"op": "remove", "product": "A", "quantity": 1000},           # 5 refused: more than available
        {"op": "release", "reservation_id": "NOPE"},                  # 6 refused: unknown reservation
        {"op": "count", "product": "A", "quantity": 1},               # 7 refused: below reserved (2)
        {"op": "add", "product": "C", "quantity": 1},                 # 8 good
    ))
    result, report = seeded.import_json(path)
    assert result.exit_code == EXIT_BAD_DATA
    assert report["applied"] == 0
    assert report["rejected"] == 4
    assert [e["line"] for e in report["errors"]] == [2, 5, 6, 7]
    assert all(isinstance(e["error"], str) and e["error"] for e in report["errors"])
    assert "NOPE" in report["errors"][2]["error"]
    assert_nothing_written(seeded, before, stock_before)
    assert seeded.run("stock", "B", "--json").stdout.strip() == "[]"


def test_bad_rows_without_json_go_to_stderr_with_line_numbers(seeded: Tool) -> None:
    before = seeded.events()
    path = seeded.file("mixed.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 5},
        {"op": "add", "product": "A", "quantity": -1},
        {"op": "add", "product": "A", "quantity": 1.5},
    ))
    result = seeded.run("import", path)
    assert result.exit_code == EXIT_BAD_DATA
    assert result.stdout == ""
    assert "line 2" in result.stderr and "line 3" in result.stderr
    assert "line 1:" not in result.stderr
    assert seeded.events() == before


def test_many_bad_rows_all_listed_in_json(tool: Tool) -> None:
    path = tool.file("bad.ndjson", ndjson(*({"op": "add", "product": "A", "quantity": 0} for _ in range(30))))
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_BAD_DATA
    assert report["rejected"] == 30
    assert [e["line"] for e in report["errors"]] == list(range(1, 31))
    plain = tool.run("import", path)
    assert plain.exit_code == EXIT_BAD_DATA
    assert "line 1:" in plain.stderr and "30" in plain.stderr
    assert tool.events() == 0


GOOD = '{"op": "add", "product": "A", "quantity": 1}'


@pytest.mark.parametrize(
    ("bad_line", "mentions"),
    [
        ('{"op": "add", "product": "A", "quantity": 0}', "quantity"),
        ('{"op": "add", "product": "A", "quantity": -1}', "quantity"),
        ('{"op": "add", "product": "A", "quantity": 1.5}', "quantity"),
        ('{"op": "add", "product": "A", "quantity": "abc"}', "quantity"),
        ('{"op": "add", "product": "A", "quantity": "1.5"}', "quantity"),
        ('{"op": "add", "product": "A", "quantity": true}', "quantity"),
        ('{"op": "add", "product": "A", "quantity": null}', "quantity"),
        ('{"op": "add", "product": "A", "quantity": 1000000001}', "quantity"),
        ('{"op": "add", "product": "A", "quantity": 100000000000000000000000000000}', "quantity"),
        ('{"op": "add", "product": "A", "quantity": "99999999999999999999999999"}', "quantity"),
        ('{"op": "add", "product": "A", "quantity": 1e400}', "quantity"),
        ('{"op": "add", "product": "A", "quantity": ' + "9" * 5000 + "}", "JSON|quantity"),
        ('{"op": "add", "product": "A"}', "quantity"),
        ('{"op": "count", "product": "A", "quantity": -1}', "quantity"),
        ('{"op": "add", "product": "", "quantity": 1}', "product"),
        ('{"op": "add", "product": " A", "quantity": 1}', "product"),
        ('{"op": "add", "product": "A ", "quantity": 1}', "product"),
        ('{"op": "add", "product": "A\\u0007", "quantity": 1}', "product"),
        ('{"op": "add", "product": "' + "P" * 65 + '", "quantity": 1}', "product"),
        ('{"op": "add", "product": 5, "quantity": 1}', "product"),
        ('{"op": "add", "quantity": 1}', "product"),
        ('{"op": "add", "product": "A", "quantity": 1, "store": " north"}', "store"),
        ('{"op": "add", "product": "A", "quantity": 1, "store": ""}', "store"),
        ('{"op": "add", "product": "A", "quantity": 1, "reason": ""}', "reason"),
        ('{"op": "add", "product": "A", "quantity": 1, "id": " k"}', "id"),
        ('{"op": "reserve", "product": "A", "quantity": 1}', "customer"),
        ('{"op": "release"}', "reservation_id"),
        ('{"op": "fulfill", "reservation_id": ""}', "reservation id"),
        ('{"product": "A", "quantity": 1}', "op"),
        ('{"op": "steal", "product": "A", "quantity": 1}', "steal"),
        ('{"op": "ADD", "product": "A", "quantity": 1}', "ADD"),
        ('{"op": "add", "product": "A", "quantity": 1, "quantiy": 2}', "quantiy"),
        ('{"op": "add", "product": "A", "quantity": 1, "at": "yesterday"}', "yesterday"),
        ("[1, 2]", "object"),
        ('"add A 1"', "object"),
        ("42", "object"),
        ("null", "object"),
        ('{"op": "add", "product": "A",', "JSON"),
        ("op=add product=A", "JSON"),
        ('{"op": "add", "product": "A", "quantity": 1}}', "JSON"),
    ],
)
def test_bad_ndjson_row(shared: Tool, bad_line: str, mentions: str) -> None:
    before, stock_before = shared.events(), shared.stock()
    path = shared.file("rows.ndjson", f"{GOOD}\n{bad_line}\n{GOOD}\n")
    result, report = shared.import_json(path)
    assert result.exit_code == EXIT_BAD_DATA
    assert report["applied"] == 0 and report["rejected"] == 1
    [error] = report["errors"]
    assert error["line"] == 2
    assert any(word.lower() in error["error"].lower() for word in mentions.split("|")), error
    assert_nothing_written(shared, before, stock_before)


def test_invalid_utf8_in_ndjson_is_a_bad_row(seeded: Tool) -> None:
    before = seeded.events()
    content = (GOOD + "\n").encode() + b'{"op": "add", "product": "\xff\xfeA", "quantity": 1}\n' + b"\xc3\n"
    result, report = seeded.import_json(seeded.file("bytes.ndjson", content))
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [2, 3]
    assert seeded.events() == before


CSV_HEADER = "op,product,quantity,reason,store"


@pytest.mark.parametrize(
    ("bad_line", "mentions"),
    [
        ("add,A,0,,", "quantity"),
        ("add,A,1.5,,", "quantity"),
        ("add,A,abc,,", "quantity"),
        ("add,A,-1,,", "quantity"),
        ("add,A, 1,,", "quantity"),
        ("add,A,1000000001,,", "quantity"),
        ("add,A,,,", "quantity"),
        ("add, A,1,,", "product"),
        ('add,"A ",1,,', "product"),
        ("add,,1,,", "product"),
        ("add,A,1,, north", "store"),
        (",A,1,,", "op"),
        ("steal,A,1,,", "steal"),
        ("add,A,1", "cells"),
        ("add,A,1,,,extra", "cells"),
    ],
)
def test_bad_csv_row(shared: Tool, bad_line: str, mentions: str) -> None:
    before, stock_before = shared.events(), shared.stock()
    path = shared.file("rows.csv", f"{CSV_HEADER}\nadd,A,1,,\n{bad_line}\nadd,A,1,,\n")
    result, report = shared.import_json(path)
    assert result.exit_code == EXIT_BAD_DATA
    assert report["applied"] == 0 and report["rejected"] == 1
    [error] = report["errors"]
    assert error["line"] == 3
    assert mentions.lower() in error["error"].lower(), error
    assert_nothing_written(shared, before, stock_before)


def test_invalid_utf8_in_csv_is_a_bad_row(seeded: Tool) -> None:
    before = seeded.events()
    content = f"{CSV_HEADER}\nadd,A,1,,\n".encode() + b"add,A,1,\xff\xfe,\n" + b"add,A,0,,\n"
    result, report = seeded.import_json(seeded.file("bytes.csv", content))
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [3, 4]
    assert seeded.events() == before


@pytest.mark.parametrize("header", ["op,product,quantiy", "op,product,quantity,colour", "op,product,quantity,quantity"])
def test_unknown_or_repeated_csv_column_makes_the_file_bad(tool: Tool, header: str) -> None:
    width = header.count(",") + 1
    row = ",".join(["add", "A", "5"] + ["5"] * (width - 3))
    path = tool.file("cols.csv", f"{header}\n{row}\n")
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_BAD_DATA
    assert report["applied"] == 0 and report["rejected"] >= 1
    assert report["errors"][0]["line"] == 1
    assert header.split(",")[-1] in report["errors"][0]["error"]
    assert tool.events() == 0


def test_csv_line_numbers_count_physical_lines(tool: Tool) -> None:
    content = (
        "op,product,quantity,reason\n"  # 1
        "add,A,5,\n"                    # 2
        'add,A,1,"two\n'                # 3  a quoted cell over two lines (bad: a line break in a reason)
        'lines"\n'                      # 4
        "\n"                            # 5  blank
        "add,A,0,\n"                    # 6  bad
        "add,B,3,\n"                    # 7
        "\n"                            # 8  blank
        "add,B,x,\n"                    # 9  bad
    )
    result, report = tool.import_json(tool.file("lines.csv", content))
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [3, 6, 9]
    assert tool.events() == 0


def test_ndjson_line_numbers_count_blank_lines(tool: Tool) -> None:
    content = f"{GOOD}\n\n   \n{GOOD}\r\n\n" + '{"op": "add", "product": "A", "quantity": 0}\n'
    result, report = tool.import_json(tool.file("blank.ndjson", content))
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [6]
    assert tool.events() == 0


def _long_file(flush_every: int) -> list[dict]:
    """Rows around the point where a long import hands its first chunk of events to storage."""
    rows: list[dict] = [{"op": "add", "product": f"P{n % 3}", "quantity": 1} for n in range(flush_every - 1)]
    rows.append({"op": "reserve", "product": "P0", "quantity": 2, "customer": "c", "reservation_id": "R-EDGE"})
    rows.append({"op": "fulfill", "reservation_id": "R-EDGE", "id": "edge-1"})
    rows.append({"op": "fulfill", "reservation_id": "R-EDGE", "id": "edge-1"})  # the same row again
    rows += [{"op": "add", "product": "P1", "quantity": 1} for _ in range(50)]
    return rows


@pytest.fixture
def flush_every() -> int:
    from inventory_cli.application import importer

    return getattr(importer, "FLUSH_EVERY", 5_000)


def test_an_id_seen_again_after_a_chunk_was_handed_to_storage_is_a_duplicate(tool: Tool, flush_every: int) -> None:
    # Keys are looked up a few hundred rows ahead; a key first used in a row whose events
    # were then handed to storage must still count as used when it comes again.
    rows: list[dict] = [{"op": "add", "product": "P0", "quantity": 1, "id": "first"}] * 2  # one duplicate
    rows += [{"op": "add", "product": f"P{n % 3}", "quantity": 1} for n in range(flush_every - 2)]
    rows += [{"op": "add", "product": "P1", "quantity": 5, "id": "again"}]  # the event that fills a chunk
    rows += [{"op": "add", "product": "P2", "quantity": 1},
             {"op": "add", "product": "P1", "quantity": 5, "id": "again"},
             {"op": "add", "product": "P1", "quantity": 6, "id": "again"}]  # the same id, another content
    result, report = tool.import_json(tool.file("again.ndjson", ndjson(*rows)))
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [len(rows)]
    rows.pop()
    result, report = tool.import_json(tool.file("again.ndjson", ndjson(*rows)))
    assert result.exit_code == EXIT_OK, result.output
    assert (report["applied"], report["duplicates"]) == (len(rows) - 2, 2)
    assert tool.events() == len(rows) - 2


def test_long_file_across_storage_chunks(tool: Tool, flush_every: int) -> None:
    rows = _long_file(flush_every)
    result, report = tool.import_json(tool.file("long.ndjson", ndjson(*rows)))
    assert result.exit_code == EXIT_OK, result.output
    assert (report["applied"], report["duplicates"]) == (len(rows) - 1, 1)
    assert tool.events() == len(rows) - 1
    added_to_p0 = sum(1 for row in rows if row["op"] == "add" and row["product"] == "P0")
    p0 = tool.line("P0")
    assert (p0["on_hand"], p0["reserved"]) == (added_to_p0 - 2, 0)  # 2 reserved, then fulfilled


def test_long_file_with_a_bad_last_row_writes_nothing(seeded: Tool, flush_every: int) -> None:
    before, stock_before = seeded.events(), seeded.stock()
    rows = _long_file(flush_every) + [{"op": "remove", "product": "A", "quantity": 1000}]
    result, report = seeded.import_json(seeded.file("long.ndjson", ndjson(*rows)))
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [len(rows)]
    assert_nothing_written(seeded, before, stock_before)


def test_long_file_with_a_bad_first_row_reports_later_rows_too(tool: Tool, flush_every: int) -> None:
    rows = [{"op": "add", "product": "A", "quantity": 0}] + _long_file(flush_every)
    rows.append({"op": "release", "reservation_id": "R-EDGE"})  # already fulfilled above
    rows.append({"op": "add", "product": "B", "quantity": 1, "id": "edge-1"})  # the key is taken
    result, report = tool.import_json(tool.file("long.ndjson", ndjson(*rows)))
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [1, len(rows) - 1, len(rows)]
    assert tool.events() == 0


def test_a_reservation_closed_chunks_earlier_is_still_known_as_closed(tool: Tool, flush_every: int) -> None:
    """Closed reservations leave memory once written; a later row about one still gets the right answer."""
    rows = [
        {"op": "add", "product": "P0", "quantity": 5},
        {"op": "reserve", "product": "P0", "quantity": 1, "customer": "c", "reservation_id": "R-OLD"},
        {"op": "fulfill", "reservation_id": "R-OLD"},
    ]
    rows += [{"op": "add", "product": "P0", "quantity": 1} for _ in range(flush_every + 10)]
    rows += [{"op": "release", "reservation_id": "R-OLD"}, {"op": "fulfill", "reservation_id": "R-OLD"}]
    result, report = tool.import_json(tool.file("long.ndjson", ndjson(*rows)))
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [len(rows) - 1, len(rows)]
    assert all("'R-OLD' is already fulfilled" in e["error"] for e in report["errors"]), report["errors"]
    assert tool.events() == 0


def test_long_dry_run_writes_nothing(seeded: Tool, flush_every: int) -> None:
    before, stock_before = seeded.events(), seeded.stock()
    rows = _long_file(flush_every)
    result, report = seeded.import_json(seeded.file("long.ndjson", ndjson(*rows)), "--dry-run")
    assert result.exit_code == EXIT_OK, result.output
    assert (report["applied"], report["duplicates"], report.get("would_apply")) == (0, 1, len(rows) - 1)
    assert_nothing_written(seeded, before, stock_before)


def test_same_rows_in_csv_and_ndjson_are_the_same_commands(tool: Tool) -> None:
    csv_path = tool.file("a.csv", "op,product,quantity,id\nadd,A,5,k-1\nremove,A,2,k-2\n")
    nd_path = tool.file("a.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 5, "id": "k-1"},
        {"op": "remove", "product": "A", "quantity": 2, "id": "k-2"},
    ))
    assert tool.run("import", csv_path).exit_code == EXIT_OK
    result, report = tool.import_json(nd_path)
    assert result.exit_code == EXIT_OK, result.output
    assert (report["applied"], report["duplicates"]) == (0, 2)
    assert tool.line("A")["on_hand"] == 3


# -- at ------------------------------------------------------------------------------------------


def test_at_in_the_past_is_the_occurred_at(tool: Tool) -> None:
    path = tool.file("at.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 5, "at": "2024-03-04T05:06:07+00:00"},
        {"op": "remove", "product": "A", "quantity": 1, "at": "2024-03-04T09:00:00+02:00"},
        {"op": "add", "product": "A", "quantity": 1, "at": "2024-03-05"},
        {"op": "add", "product": "A", "quantity": 1},
    ))
    started = datetime.now(timezone.utc)
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    events = tool.history("A")
    occurred = [at_of(e["occurred_at"]) for e in events]
    assert occurred[0] == datetime(2024, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    assert occurred[1] == datetime(2024, 3, 4, 7, 0, 0, tzinfo=timezone.utc)
    assert occurred[2] == datetime(2024, 3, 5).astimezone()  # a date alone: local midnight
    assert occurred[3] >= started - timedelta(seconds=1)  # no at: now
    assert all(at_of(e["recorded_at"]) >= started - timedelta(seconds=1) for e in events)
    assert all(e["occurred_at"][-6] in "+-" for e in events)  # with a UTC offset


def test_at_before_the_streams_latest_event_is_a_bad_row(seeded: Tool) -> None:
    before = seeded.events()
    path = seeded.file("late.ndjson", ndjson(
        {"op": "add", "product": "B", "quantity": 1, "at": "2024-01-02T00:00:00+00:00"},
        {"op": "add", "product": "B", "quantity": 1, "at": "2024-01-01T00:00:00+00:00"},  # before row 1
        {"op": "add", "product": "C", "quantity": 1, "at": "2023-01-01T00:00:00+00:00"},  # another stream: fine
        {"op": "add", "product": "A", "quantity": 1, "at": "2024-01-01T00:00:00+00:00"},  # before the seed
    ))
    result, report = seeded.import_json(path)
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [2, 4]
    assert seeded.events() == before


def test_at_in_the_future_is_a_bad_row(tool: Tool) -> None:
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    path = tool.file("future.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 1},
        {"op": "add", "product": "B", "quantity": 1, "at": tomorrow},
        {"op": "add", "product": "C", "quantity": 1, "at": "2999-01-01"},
    ))
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [2, 3]
    assert "future" in report["errors"][0]["error"]
    assert tool.events() == 0


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_at_out_of_range_is_a_bad_row(seeded: Tool, at: str) -> None:
    before = seeded.events()
    path = seeded.file("range.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 1},
        {"op": "add", "product": "A", "quantity": 1, "at": at},
    ))
    result = seeded.run("import", path, "--json")
    assert result.exit_code == EXIT_BAD_DATA, result.output
    assert [e["line"] for e in json.loads(result.stdout)["errors"]] == [2]
    assert seeded.events() == before


# -- idempotency -----------------------------------------------------------------------------------


def _keyed_rows() -> str:
    return ndjson(
        {"op": "add", "product": "A", "quantity": 10, "id": "d-1"},
        {"op": "reserve", "product": "A", "quantity": 3, "customer": "c", "reservation_id": "R-1", "id": "d-2"},
        {"op": "fulfill", "reservation_id": "R-1", "id": "d-3"},
        {"op": "remove", "product": "A", "quantity": 1, "id": "d-4"},
        {"op": "count", "product": "A", "quantity": 5, "id": "d-5"},
    )


def test_rerun_counts_duplicates_and_changes_nothing(tool: Tool) -> None:
    path = tool.file("keyed.ndjson", _keyed_rows())
    result, first = tool.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    assert (first["applied"], first["duplicates"]) == (5, 0)
    events, stock = tool.events(), tool.stock()

    result, again = tool.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    assert again == {"applied": 0, "duplicates": 5, "rejected": 0, "errors": []}
    assert tool.events() == events
    assert tool.stock() == stock
    assert tool.line("A")["on_hand"] == 5

    # Refused: applied is 0, and the duplicates and the bad row are still counted.
    path.write_text(_keyed_rows() + ndjson({"op": "remove", "product": "A", "quantity": 99, "id": "d-6"}))
    result, refused = tool.import_json(path)
    assert result.exit_code == EXIT_BAD_DATA
    assert refused["applied"] == 0 and refused["duplicates"] == 5 and refused["rejected"] == 1
    assert [e["line"] for e in refused["errors"]] == [6]
    assert tool.events() == events


def test_rerun_without_json_says_duplicates(tool: Tool) -> None:
    path = tool.file("keyed.ndjson", _keyed_rows())
    assert tool.run("import", path, "-q").exit_code == EXIT_OK
    result = tool.run("import", path)
    assert result.exit_code == EXIT_OK
    assert "5" in result.stdout and "duplicate" in result.stdout
    assert result.stderr == ""


def test_rerun_of_rows_with_at_is_still_a_duplicate(tool: Tool) -> None:
    path = tool.file("dated.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 3, "id": "a-1", "at": "2024-01-01T10:00:00+00:00"},
        {"op": "add", "product": "A", "quantity": 4, "id": "a-2", "at": "2024-01-02T10:00:00+00:00"},
    ))
    assert tool.run("import", path).exit_code == EXIT_OK
    assert tool.run("add", "A", "1").exit_code == EXIT_OK  # the stream moves on past those dates
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    assert (report["applied"], report["duplicates"]) == (0, 2)
    assert tool.line("A")["on_hand"] == 8


def test_partly_new_file_applies_only_the_new_rows(tool: Tool) -> None:
    first = tool.file("one.ndjson", ndjson({"op": "add", "product": "A", "quantity": 2, "id": "k-1"}))
    assert tool.run("import", first).exit_code == EXIT_OK
    both = tool.file("two.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 2, "id": "k-1"},
        {"op": "add", "product": "A", "quantity": 3, "id": "k-2"},
        {"op": "add", "product": "A", "quantity": 3, "id": "k-2"},  # the same row twice in one file
    ))
    result, report = tool.import_json(both)
    assert result.exit_code == EXIT_OK, result.output
    assert (report["applied"], report["duplicates"]) == (1, 2)
    assert tool.line("A")["on_hand"] == 5
    assert tool.events() == 2


def test_rows_with_and_without_ids_in_one_file(tool: Tool) -> None:
    """Only the rows with an id are skipped on a re-run; each event keeps its own key."""
    rows = tool.file("mixed.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 2, "id": "m-1"},
        {"op": "add", "product": "A", "quantity": 3},
        {"op": "add", "product": "B", "quantity": 4, "id": "m-3"},
        {"op": "add", "product": "B", "quantity": 5},
    ))
    result, report = tool.import_json(rows)
    assert result.exit_code == EXIT_OK, result.output
    again, report = tool.import_json(rows)
    assert (report["applied"], report["duplicates"]) == (2, 2)
    assert (tool.line("A")["on_hand"], tool.line("B")["on_hand"]) == (2 + 3 + 3, 4 + 5 + 5)
    assert [e["quantity"] for e in tool.history("A")] == [2, 3, 3]
    conn = sqlite3.connect(tool.db)
    try:
        keyed = conn.execute("SELECT idempotency_key, command_hash IS NOT NULL FROM events"
                             " ORDER BY position").fetchall()
        assert keyed == [("m-1", 1), (None, 0), ("m-3", 1), (None, 0), (None, 0), (None, 0)]
    finally:
        conn.close()
    assert tool.run("verify").exit_code == EXIT_OK  # the chain covers the keys as stored


def test_same_id_with_different_content_is_a_bad_row(tool: Tool) -> None:
    first = tool.file("one.ndjson", ndjson({"op": "add", "product": "A", "quantity": 2, "id": "k-1"}))
    assert tool.run("import", first).exit_code == EXIT_OK
    changed = tool.file("two.ndjson", ndjson(
        {"op": "add", "product": "B", "quantity": 1, "id": "k-9"},
        {"op": "add", "product": "A", "quantity": 3, "id": "k-1"},
    ))
    result, report = tool.import_json(changed)
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [2]
    assert "k-1" in report["errors"][0]["error"]
    assert tool.events() == 1


def test_same_id_with_different_content_within_one_file_is_a_bad_row(tool: Tool) -> None:
    path = tool.file("dup.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 2, "id": "k-1"},
        {"op": "remove", "product": "A", "quantity": 2, "id": "k-1"},
    ))
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [2]
    assert tool.events() == 0


def test_keys_are_shared_with_the_write_commands(tool: Tool) -> None:
    assert tool.run("add", "A", "5", "--id", "cli-1").exit_code == EXIT_OK
    assert tool.run("reserve", "A", "2", "--customer", "c", "--id", "R-CLI").exit_code == EXIT_OK
    path = tool.file("same.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 5, "id": "cli-1", "user": "someone-else"},
        {"op": "reserve", "product": "A", "quantity": 2, "customer": "c", "reservation_id": "R-CLI"},
    ))
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    assert (report["applied"], report["duplicates"]) == (0, 2)
    assert tool.events() == 2

    other = tool.file("other.ndjson", ndjson({"op": "add", "product": "A", "quantity": 6, "id": "cli-1"}))
    result, report = tool.import_json(other)
    assert result.exit_code == EXIT_BAD_DATA
    assert tool.events() == 2


def test_a_used_reservation_id_is_a_bad_row(seeded: Tool) -> None:
    before = seeded.events()
    path = seeded.file("r.ndjson", ndjson(
        {"op": "add", "product": "B", "quantity": 5},
        {"op": "reserve", "product": "B", "quantity": 1, "customer": "x", "reservation_id": "R-SEED"},
        {"op": "reserve", "product": "B", "quantity": 1, "customer": "y", "reservation_id": "R-NEW"},
        {"op": "reserve", "product": "B", "quantity": 1, "customer": "z", "reservation_id": "R-NEW"},
        {"op": "fulfill", "reservation_id": "R-SEED"},
        {"op": "fulfill", "reservation_id": "R-SEED"},  # already fulfilled
        {"op": "reserve", "product": "B", "quantity": 50, "customer": "w"},  # more than available
    ))
    result, report = seeded.import_json(path)
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [2, 4, 6, 7]
    assert seeded.events() == before


# -- batches ------------------------------------------------------------------------------------


def _batch_rows(bad_quantity: int) -> str:
    """Seven keyed rows; the 5th (in the 3rd batch of 2) has ``bad_quantity``."""
    rows = [{"op": "add", "product": "A", "quantity": 1, "id": f"b-{n}"} for n in range(1, 8)]
    rows[4]["quantity"] = bad_quantity
    rows[5] = {"op": "reserve", "product": "A", "quantity": 2, "customer": "c", "reservation_id": "R-B", "id": "b-6"}
    rows[6] = {"op": "release", "reservation_id": "R-B", "id": "b-7"}
    return ndjson(*rows)


def test_interrupted_import_rerun_completes_without_doubling(tool: Tool) -> None:
    path = tool.file("batches.ndjson", _batch_rows(bad_quantity=0))
    result, report = tool.import_json(path, "--batch-size", "2")
    assert result.exit_code == EXIT_BAD_DATA
    assert report["applied"] == 4  # batches 1 and 2 were committed
    assert [e["line"] for e in report["errors"]] == [5]
    assert tool.events() == 4
    assert tool.line("A")["on_hand"] == 4

    path.write_text(_batch_rows(bad_quantity=1))
    result, report = tool.import_json(path, "--batch-size", "2")
    assert result.exit_code == EXIT_OK, result.output
    assert report == {"applied": 3, "duplicates": 4, "rejected": 0, "errors": []}
    assert tool.events() == 7
    line = tool.line("A")
    assert (line["on_hand"], line["reserved"]) == (5, 0)
    assert [e["type"] for e in tool.history("A")].count("StockAdded") == 5

    result, report = tool.import_json(path, "--batch-size", "2")
    assert result.exit_code == EXIT_OK
    assert (report["applied"], report["duplicates"]) == (0, 7)
    assert tool.events() == 7


def test_batch_size_larger_than_the_file_is_one_transaction(tool: Tool) -> None:
    path = tool.file("batches.ndjson", _batch_rows(bad_quantity=0))
    result, report = tool.import_json(path, "--batch-size", "100")
    assert result.exit_code == EXIT_BAD_DATA
    assert report["applied"] == 0
    assert tool.events() == 0


def test_batch_size_requires_an_id_on_every_row(tool: Tool) -> None:
    path = tool.file("noid.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 1, "id": "n-1"},
        {"op": "add", "product": "A", "quantity": 1},
        {"op": "reserve", "product": "A", "quantity": 1, "customer": "c", "reservation_id": "R-9"},
    ))
    result, report = tool.import_json(path, "--batch-size", "10")
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [2]  # a chosen reservation id is a key too
    assert "id" in report["errors"][0]["error"]
    assert tool.events() == 0
    # Without --batch-size the same file is fine.
    result, report = tool.import_json(path)
    assert result.exit_code == EXIT_OK, result.output
    assert report["applied"] == 3


def test_batch_size_reports_rows_without_id_after_a_refused_batch(tool: Tool) -> None:
    path = tool.file("late.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 1, "id": "l-1"},
        {"op": "add", "product": "A", "quantity": 0, "id": "l-2"},  # batch 1: bad
        {"op": "add", "product": "A", "quantity": 1, "id": "l-3"},
        {"op": "add", "product": "A", "quantity": 1},               # batch 2: no id
    ))
    result, report = tool.import_json(path, "--batch-size", "2")
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [2, 4]


def test_batch_size_must_be_positive(tool: Tool) -> None:
    path = tool.file("a.ndjson", ndjson({"op": "add", "product": "A", "quantity": 1, "id": "z"}))
    result = tool.run("import", path, "--batch-size", "0")
    assert result.exit_code == EXIT_USAGE
    assert not tool.db.exists()


# -- dry run ------------------------------------------------------------------------------------


def test_dry_run_reports_and_writes_nothing(seeded: Tool) -> None:
    seeded.run("import", seeded.file("k.ndjson", ndjson({"op": "add", "product": "A", "quantity": 1, "id": "k"})))
    before, stock_before = seeded.events(), seeded.stock()
    path = seeded.file("dry.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 1, "id": "k"},  # already applied
        {"op": "add", "product": "B", "quantity": 5},
        {"op": "fulfill", "reservation_id": "R-SEED"},
    ))
    result, report = seeded.import_json(path, "--dry-run")
    assert result.exit_code == EXIT_OK, result.output
    assert report["applied"] == 0 and report["duplicates"] == 1 and report["rejected"] == 0
    assert report.get("would_apply") == 2
    assert_nothing_written(seeded, before, stock_before)

    plain = seeded.run("import", path, "--dry-run")
    assert plain.exit_code == EXIT_OK
    assert "2" in plain.stdout
    assert_nothing_written(seeded, before, stock_before)


def test_dry_run_with_bad_rows_reports_them(seeded: Tool) -> None:
    before = seeded.events()
    path = seeded.file("dry.ndjson", ndjson(
        {"op": "add", "product": "B", "quantity": 5},
        {"op": "remove", "product": "B", "quantity": 6},
    ))
    result, report = seeded.import_json(path, "--dry-run")
    assert result.exit_code == EXIT_BAD_DATA
    assert [e["line"] for e in report["errors"]] == [2]
    assert seeded.events() == before


def test_dry_run_on_a_missing_database_reports_and_creates_nothing(tool: Tool) -> None:
    # (Exited 74 "Cannot switch :memory: to WAL mode" up to commit dd42d57.)
    tool.db = tool.dir / "new" / "inv.db"
    path = tool.file("dry.ndjson", ndjson(
        {"op": "add", "product": "A", "quantity": 5},
        {"op": "reserve", "product": "A", "quantity": 2, "customer": "c", "reservation_id": "R-D"},
        {"op": "fulfill", "reservation_id": "R-D"},
    ))
    result = tool.run("import", path, "--dry-run", "--json")
    assert result.exit_code == EXIT_OK, result.output
    report = json.loads(result.stdout)
    assert (report["applied"], report["rejected"], report.get("would_apply")) == (0, 0, 3)
    assert not tool.db.exists()
    assert not tool.db.parent.exists()


# -- usage errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rows.txt", "rows", "rows.json", "rows.csv.bak"])
def test_other_extensions_need_format(tool: Tool, name: str) -> None:
    path = tool.file(name, ndjson({"op": "add", "product": "A", "quantity": 1}))
    result = tool.run("import", path)
    assert result.exit_code == EXIT_USAGE
    assert "--format" in result.stderr
    assert result.stdout == ""
    assert not tool.db.exists()


def test_format_csv_on_a_txt_file(tool: Tool) -> None:
    path = tool.file("rows.txt", "op,product,quantity\nadd,A,3\n")
    result, report = tool.import_json(path, "--format", "csv")
    assert result.exit_code == EXIT_OK, result.output
    assert tool.line("A")["on_hand"] == 3


def test_format_overrides_the_extension(tool: Tool) -> None:
    path = tool.file("rows.csv", ndjson({"op": "add", "product": "A", "quantity": 3}))
    result, report = tool.import_json(path, "--format", "ndjson")
    assert result.exit_code == EXIT_OK, result.output
    assert tool.line("A")["on_hand"] == 3


def test_unknown_format_is_a_usage_error(tool: Tool) -> None:
    path = tool.file("rows.ndjson", ndjson({"op": "add", "product": "A", "quantity": 3}))
    result = tool.run("import", path, "--format", "xml")
    assert result.exit_code == EXIT_USAGE
    assert not tool.db.exists()


def test_missing_file_is_a_usage_error(tool: Tool) -> None:
    result = tool.run("import", tool.dir / "nowhere.ndjson")
    assert result.exit_code == EXIT_USAGE
    assert "nowhere.ndjson" in result.stderr
    assert result.stdout == ""
    assert not tool.db.exists()


def test_directory_is_a_usage_error(tool: Tool) -> None:
    folder = tool.dir / "rows.csv"
    folder.mkdir()
    result = tool.run("import", folder)
    assert result.exit_code == EXIT_USAGE
    assert "directory" in result.stderr
    assert not tool.db.exists()


def test_invalid_store_option_is_a_usage_error(tool: Tool) -> None:
    path = tool.file("rows.ndjson", ndjson({"op": "add", "product": "A", "quantity": 3}))
    result = tool.run("import", path, "--store", " main")
    assert result.exit_code == EXIT_USAGE
    assert tool.events() == 0


# -- real processes: pipes and memory ---------------------------------------------------------------


def _process_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _TOOL_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
    return env


def _inventory(db: Path, *args: object) -> list[str]:
    return [sys.executable, "-m", "inventory_cli", "--db", str(db), *map(str, args)]


def test_in_a_pipe_no_progress_bar_and_no_ansi(tmp_path: Path) -> None:
    rows = tmp_path / "rows.ndjson"
    rows.write_text(ndjson(*({"op": "add", "product": f"P{n % 7}", "quantity": 1} for n in range(3000))))
    quiet = subprocess.run(_inventory(tmp_path / "q.db", "import", rows, "-q"), env=_process_env(),
                           capture_output=True, timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    assert (quiet.stdout, quiet.stderr) == (b"", b"")
    assert events_in(tmp_path / "q.db") == 3000

    loud = subprocess.run(_inventory(tmp_path / "l.db", "import", rows), env=_process_env(),
                          capture_output=True, timeout=120)
    assert loud.returncode == 0, loud.stderr
    assert loud.stderr == b""
    assert b"\x1b" not in loud.stdout and b"\r" not in loud.stdout
    assert len(loud.stdout.decode().splitlines()) == 1
    assert "3,000" in loud.stdout.decode() or "3000" in loud.stdout.decode()


def test_bad_rows_in_a_pipe_are_plain_lines_on_stderr(tmp_path: Path) -> None:
    rows = tmp_path / "rows.ndjson"
    rows.write_text(ndjson({"op": "add", "product": "A", "quantity": 1}, {"op": "add", "product": "A", "quantity": 0}))
    done = subprocess.run(_inventory(tmp_path / "b.db", "import", rows), env=_process_env(),
                          capture_output=True, timeout=120)
    assert done.returncode == EXIT_BAD_DATA
    assert done.stdout == b""
    assert b"\x1b" not in done.stderr and b"Traceback" not in done.stderr
    assert done.stderr.decode().startswith("line 2:")
    assert events_in(tmp_path / "b.db") == 0


# Runs the command given in argv[1:] and prints its exit code and the peak RSS of that
# child (ru_maxrss of RUSAGE_CHILDREN: KiB on Linux, bytes on macOS).
_PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(code, peak // 1024 if sys.platform == 'darwin' else peak)\n"
)


def _peak_rss_kib(db: Path, rows: Path, *options: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *_inventory(db, "import", rows, "-q", *options)],
        env=_process_env(), capture_output=True, text=True, timeout=300,
    )
    code, peak = done.stdout.split()
    assert int(code) == 0, done.stderr
    return int(peak)


def _assert_flat_memory(tmp_path: Path, small: int, large: int, line, *options: str) -> None:
    peaks = []
    for count in (small, large):
        rows = tmp_path / f"rows-{count}.ndjson"
        with rows.open("w", encoding="utf-8") as out:
            out.writelines(line(n) for n in range(count))
        db = tmp_path / f"mem-{count}.db"
        peaks.append(_peak_rss_kib(db, rows, *options))
        assert events_in(db) == count
        rows.unlink()
    smaller, larger = peaks
    assert larger <= 1.3 * smaller + 10 * 1024, f"peak RSS {smaller} KiB for {small} rows, {larger} KiB for {large}"


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="resource is POSIX only")


@posix_only
def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    _assert_flat_memory(
        tmp_path, 20_000, 200_000,
        lambda n: '{"op":"add","product":"P%d","quantity":1}\n' % (n % 50),
    )


@posix_only
def test_memory_does_not_grow_with_a_file_of_keyed_rows(tmp_path: Path) -> None:
    _assert_flat_memory(
        tmp_path, 10_000, 100_000,
        lambda n: '{"op":"add","product":"P%d","quantity":1,"id":"delivery-2026-11-27-%036d"}\n' % (n % 50, n),
    )


@posix_only
def test_memory_does_not_grow_with_a_file_of_many_products(tmp_path: Path) -> None:
    _assert_flat_memory(
        tmp_path, 8_000, 50_000,
        lambda n: '{"op":"add","product":"SKU-%d","quantity":1}\n' % n,
    )


# -- fuzzing: no input makes a traceback ---------------------------------------------------------------

_json_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 1, -1, 10**9, 10**9 + 1, 2**63, -(2**63) - 1, 10**400]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["", " ", "A", "R-SEED", "main", "\u0000", "\u202e", "e\u0301", "\ufeff", "\U0001d538", "1", "05", "1e3", "\u0663"]),
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)
# Dates in a plausible range, with and without offsets (the overflow at the ends of the
# datetime range is test_at_out_of_range_is_a_bad_row).
_dates = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)).flatmap(
    lambda moment: st.sampled_from([
        moment.isoformat(), moment.date().isoformat(),
        moment.replace(tzinfo=timezone(timedelta(hours=5))).isoformat(),
        moment.replace(tzinfo=timezone(timedelta(hours=-11, minutes=-30))).isoformat(),
    ])
)
_row_objects = st.fixed_dictionaries(
    {"op": st.one_of(
        st.sampled_from(["add", "remove", "reserve", "release", "fulfill", "count", "transfer", "receive"]),
        _json_values,
    )},
    optional={
        "product": st.one_of(st.sampled_from(["A", "B", "C"]), _json_values),
        "store": st.one_of(st.sampled_from(["main", "north"]), _json_values),
        "quantity": st.one_of(st.integers(min_value=-3, max_value=12), _json_values),
        "reason": _json_values,
        "customer": st.one_of(st.just("c"), _json_values),
        "reservation_id": st.one_of(st.sampled_from(["R-SEED", "R-1", "R-2"]), _json_values),
        "id": st.one_of(st.sampled_from(["k1", "k2", "k3"]), _json_values),
        "at": st.one_of(_dates, _json_values),
        "user": _json_values,
        "from": st.one_of(st.sampled_from(["main", "north"]), _json_values),
        "to": st.one_of(st.sampled_from(["main", "north"]), _json_values),
        "transfer_id": st.one_of(st.sampled_from(["T-1", "T-2"]), _json_values),
        "quantiy": _json_values,
    },
)


def _encode(obj: dict, ascii_only: bool) -> bytes:
    return json.dumps(obj, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


_lines = st.one_of(
    st.tuples(_row_objects, st.booleans()).map(lambda pair: _encode(*pair)),
    st.tuples(_row_objects, st.booleans(), st.integers(min_value=0, max_value=60)).map(
        lambda t: _encode(t[0], t[1])[: t[2]]  # broken JSON: cut short
    ),
    _json_values.map(lambda value: json.dumps(value).encode()),  # JSON that is not a row
    st.binary(max_size=40),  # random bytes
    st.text(max_size=30).map(lambda text: text.encode("utf-8", "surrogatepass")),  # odd Unicode
    st.integers(min_value=1, max_value=5000).map(  # huge numbers
        lambda digits: b'{"op":"add","product":"A","quantity":' + b"9" * digits + b"}"
    ),
)


@pytest.fixture(scope="module")
def fuzz_tool(tmp_path_factory: pytest.TempPathFactory) -> Tool:
    workdir = tmp_path_factory.mktemp("fuzz")
    tool = Tool(workdir / "fuzz.db", workdir)
    assert tool.run("add", "A", "10").exit_code == 0
    assert tool.run("reserve", "A", "2", "--customer", "seed", "--id", "R-SEED").exit_code == 0
    return tool


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(lines=st.lists(_lines, min_size=1, max_size=6))
def test_random_lines_never_crash(fuzz_tool: Tool, lines: list[bytes]) -> None:
    tool = fuzz_tool
    content = b"\n".join(line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines) + b"\n"
    path = tool.file("fuzz.ndjson", content)
    before = tool.events()
    result = tool.run("import", path, "--json")
    assert "Traceback" not in result.output
    assert result.exit_code in (EXIT_OK, EXIT_BAD_DATA), result.output
    report = json.loads(result.stdout)
    assert REPORT_KEYS <= set(report)
    if result.exit_code == EXIT_BAD_DATA:
        assert tool.events() == before
        assert report["applied"] == 0
        assert report["rejected"] == len(report["errors"]) >= 1
        assert all(1 <= e["line"] <= len(lines) for e in report["errors"])
    else:
        assert report["rejected"] == 0
        assert tool.events() == before + report["applied"]


def test_the_content_hash_of_a_command_never_changes() -> None:
    # Stored with every key: a changed canonical form would turn a re-sent command
    # into a conflict. The literals were computed by the first release's formula.
    from inventory_cli.application.commands import AddStock, ReserveStock, content_hash

    assert content_hash(AddStock("main", "SKU-1", 5, "received", key="k1")) == "cbd5ba6a212109b4cd895deb1b4880b5"
    assert content_hash(ReserveStock("nörd", "Ü;'%", 2, "c", reservation_id="R1", ttl_seconds=60,
                                     at="2026-01-01T00:00:00+00:00")) == "eb3017fc7aa77a46801342278d5f24a2"


def _first_release_content_hash(command) -> str:
    """content_hash as the first release computed it: a dict of the fields, encoded sorted."""
    import hashlib

    from inventory_cli.application.commands import OPS

    content = {name: getattr(command, name) for name in command._fields if name != "key"}
    content["op"] = OPS[type(command)]
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


_FIELD_VALUES = st.one_of(
    st.none(), st.text(max_size=12), st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(), st.sampled_from(["received", "P-00001", 'a"b\\c', "\u2028", "%s%%", "x\ud800"]),
)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_content_hash_is_the_first_releases_for_any_fields(data) -> None:
    # Any command type, any values (text with quotes, escapes, control characters,
    # lone surrogates; numbers; None; bools): the same hash, or the same refusal.
    from inventory_cli.application.commands import OPS, content_hash

    kind = data.draw(st.sampled_from(sorted(OPS, key=lambda k: k.__name__)))
    command = kind(*(data.draw(_FIELD_VALUES) for _ in kind._fields))
    try:
        expected = _first_release_content_hash(command)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            content_hash(command)
        return
    assert content_hash(command) == expected
