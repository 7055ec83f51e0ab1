"""The audit features as a user, an auditor and a cron job see them (docs/audit.md).

Who did what (``actor``), the hash chain checked by an independent script (the one
printed in docs/audit.md), ``verify`` against files edited behind the tool's back,
``diff``, ``history`` of a whole store, ``export`` as a resumable feed, and the
migration of a version-1 file. Every test works on real SQLite files under
``tmp_path``; the fixtures are in this file.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inventory_cli.cli.main import app

REPO_ROOT = Path(__file__).resolve().parent.parent

# Variables that change what the tool does; every run sets what it needs and unsets the rest.
TOOL_ENV = ("INVENTORY_DB", "INVENTORY_STORE", "INVENTORY_USER", "INVENTORY_DEBUG",
            "INVENTORY_BUSY_TIMEOUT", "NO_COLOR", "FORCE_COLOR")

VERIFY_KEYS = {"ok", "events", "first_bad_position", "projections_ok", "head_position", "head_hash"}
EXPORT_KEYS = {
    "position", "version", "type", "store", "product", "quantity", "occurred_at", "recorded_at",
    "reason", "customer", "reservation_id", "actor", "idempotency_key", "data", "hash",
}

# The checking script of docs/audit.md, character for character (test_docs_show_the_tested_script).
# It follows the definition in inventory_cli/storage/chain.py and imports nothing of the tool.
CHECK_CHAIN = '''\
import hashlib, sqlite3, sys  # check_chain.py DB: recompute inventory's hash chain
db, previous, head = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True), "0" * 64, 0
for *fields, stored in db.execute(
        "SELECT position, store, product, version, type, quantity, data, occurred_at, recorded_at,"
        " actor, coalesce(idempotency_key, ''), hash FROM event_log ORDER BY position"):
    expected = hashlib.sha256("\\n".join(map(str, [previous, *fields])).encode()).hexdigest()
    if expected != stored:
        sys.exit(f"position {fields[0]}: stored hash {stored}, expected {expected}")
    previous, head = stored, fields[0]
print(f"chain ok: {head}:{previous}")
'''
SCRIPT_COMPLAINT = re.compile(r"position (\d+): stored hash (\S+), expected ([0-9a-f]{64})\n")


# -- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "inv.db"


def run(db: Path, *args: object, env: dict[str, str | None] | None = None, input: str | None = None):
    """The CLI in-process (CliRunner) on ``db``; the tool's other variables unset unless given."""
    full_env: dict[str, str | None] = {name: None for name in TOOL_ENV}
    full_env["INVENTORY_DB"] = str(db)
    full_env.update(env or {})
    return CliRunner().invoke(app, [str(a) for a in args], env=full_env, input=input,
                              catch_exceptions=False)


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def doc(result):
    """The one JSON document on stdout."""
    return json.loads(result.stdout)


def usage_error(result) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.strip() and "Traceback" not in result.stderr


def ndjson(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def import_rows(db: Path, rows: list[dict], *args: str, env: dict[str, str | None] | None = None):
    return ok(run(db, "import", "-", "--format", "ndjson", "--json", *args, input=ndjson(rows), env=env))


def history(db: Path, *args: str) -> list[dict]:
    return doc(ok(run(db, "history", *args, "--json")))


def verify(db: Path, *args: str) -> tuple[int, dict]:
    result = run(db, "verify", "--json", *args)
    assert result.exit_code in (0, 1), (result.exit_code, result.stdout, result.stderr)
    document = doc(result)  # printed whatever the exit code
    assert VERIFY_KEYS <= document.keys()
    assert document["ok"] is (result.exit_code == 0)
    return result.exit_code, document


def export(db: Path, *args: str) -> list[dict]:
    result = ok(run(db, "export", *args))
    return [json.loads(line) for line in result.stdout.splitlines()]


def diff(db: Path, *args: str) -> list[dict]:
    return doc(ok(run(db, "diff", *args, "--json")))


def sql(db: Path, *statements: str, params: tuple = ()) -> list[tuple]:
    """Plain sqlite3, the way someone with the file would edit it behind the tool's back."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        rows: list[tuple] = []
        for statement in statements:
            rows = conn.execute(statement, params if statement is statements[-1] else ()).fetchall()
        return rows
    finally:
        conn.close()


def check_chain(db: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the independent script of docs/audit.md in a fresh interpreter that cannot even
    import the tool (-I -S: no site-packages, no PYTHONPATH, only the standard library)."""
    script = tmp_path / "check_chain.py"
    script.write_text(CHECK_CHAIN, encoding="utf-8")
    return subprocess.run([sys.executable, "-I", "-S", str(script), str(db)], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)


def forge_chain(db: Path, tmp_path: Path) -> int:
    """Make every stored hash match the content again, using only the script's own answers."""
    fixed = 0
    while (result := check_chain(db, tmp_path)).returncode != 0:
        match = SCRIPT_COMPLAINT.fullmatch(result.stderr)
        assert match, result.stderr
        sql(db, "UPDATE events SET hash = ? WHERE position = ?", params=(match[3], int(match[1])))
        fixed += 1
    return fixed


def backup(source: Path, target: Path) -> None:
    """A consistent copy of a WAL database (what a backup tool would keep)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


# Times in the past, with offsets so that the machine's time zone does not matter.
DAY1, DAY2, DAY3 = "2024-03-01", "2024-03-02", "2024-03-03"


def at(day: str, clock: str) -> str:
    return f"{day}T{clock}:00+00:00"


def build_rich_log(db: Path) -> None:
    """Every kind of event: import rows with ids, `at` and users (in batches), then CLI writes,
    non-ASCII codes (one typed decomposed), two stores, a count down and a count up."""
    import_rows(db, [
        {"op": "add", "product": "Äpfel-Ø", "quantity": 20, "reason": "Lieferung für Müller",
         "id": "imp-1", "at": at(DAY1, "09:00")},
        {"op": "add", "product": "SKU-1", "quantity": 10, "id": "imp-2", "at": at(DAY1, "10:00")},
        {"op": "reserve", "product": "SKU-1", "quantity": 4, "customer": "Zoë",
         "reservation_id": "R-imp", "id": "imp-3", "at": at(DAY2, "10:00"), "user": "Łucja"},
        {"op": "remove", "product": "Äpfel-Ø", "quantity": 5, "reason": "verdorben", "id": "imp-4",
         "at": at(DAY2, "11:00")},
        {"op": "add", "product": "SKU-1", "store": "köln-süd", "quantity": 7, "id": "imp-5",
         "at": at(DAY2, "12:00")},
        {"op": "count", "product": "SKU-1", "quantity": 12, "id": "imp-6", "at": at(DAY3, "08:00")},
        {"op": "fulfill", "reservation_id": "R-imp", "id": "imp-7", "at": at(DAY3, "09:00")},
    ], "--batch-size", "3", "--user", "importer")
    user = ["--user", "Jürgen"]
    ok(run(db, "add", "U\u0308nïcødé-ß", "9", "--reason", "geliefert", *user))  # typed as NFD
    ok(run(db, "reserve", "SKU-1", "2", "--customer", "c-1", "--id", "R-cli", *user))
    ok(run(db, "release", "R-cli", "--reason", "customer cancelled", *user))
    ok(run(db, "reserve", "SKU-1", "1", "--customer", "c-2", "--id", "R-cli-2", *user))
    ok(run(db, "fulfill", "R-cli-2", "--id", "ful-1", *user))
    ok(run(db, "count", "Äpfel-Ø", "11", "--id", "cnt-1", *user))  # 15 -> 11: quantity -4
    ok(run(db, "remove", "SKU-1", "3", "--reason", "damaged; box 7/8 \"wet\"", *user))
    ok(run(db, "add", "SKU-1", "5", "--store", "köln-süd", "--id", "k-add", *user))
    ok(run(db, "product", "set", "SKU-1", "--name", "Schraube M4 – verzinkt", "--reorder-point", "2",
           *user))
    ok(run(db, "transfer", "SKU-1", "3", "--from", "main", "--to", "köln-süd", "--id", "T-1", *user))
    ok(run(db, "receive", "T-1", "--quantity", "2", *user))  # one unit lost in transit


RICH_EVENTS = 20
STORE_OPERATION_TYPES = {"ProductDefined", "TransferAnnounced", "TransferShipped", "TransferReceived",
                         "TransferLost"}


@pytest.fixture(scope="module")
def rich_template(tmp_path_factory) -> Path:
    """Built once; every test gets its own copy (the log is the same, hashes included)."""
    template = tmp_path_factory.mktemp("rich") / "template.db"
    build_rich_log(template)
    return template


@pytest.fixture
def rich_db(db: Path, rich_template: Path) -> Path:
    backup(rich_template, db)
    return db


# -- who did what ------------------------------------------------------------------------------


def write_every_command(db: Path, product: str, how: list[str], env: dict[str, str | None]) -> None:
    """add, remove, reserve, release, reserve, fulfill, count on one product, all as ``how``."""
    rid = f"R-{product}"
    for args in (
        ["add", product, "10"],
        ["remove", product, "1"],
        ["reserve", product, "2", "--customer", "c-1", "--id", f"{rid}-1"],
        ["release", f"{rid}-1"],
        ["reserve", product, "3", "--customer", "c-2", "--id", f"{rid}-2"],
        ["fulfill", f"{rid}-2"],
        ["count", product, "4"],
    ):
        ok(run(db, *args, *how, "--json", env=env))


LOGIN = {"LOGNAME": "clerk-login", "USER": "clerk-login", "LNAME": "clerk-login", "USERNAME": "clerk-login"}


@pytest.mark.parametrize(
    "how, env, expected",
    [
        (["--user", "ana"], {"INVENTORY_USER": "bo", **LOGIN}, "ana"),  # the option wins
        ([], {"INVENTORY_USER": "bo", **LOGIN}, "bo"),
        ([], LOGIN, "clerk-login"),  # getpass.getuser(): LOGNAME, USER, LNAME, USERNAME
    ],
    ids=["option", "env", "login-name"],
)
def test_every_write_command_records_its_actor(db, how, env, expected):
    write_every_command(db, "SKU-A", how, env)
    events = history(db, "SKU-A")
    assert [e["type"] for e in events] == [
        "StockAdded", "StockRemoved", "StockReserved", "StockReleased", "StockReserved",
        "ReservationFulfilled", "StockCounted",
    ]
    assert [e["actor"] for e in events] == [expected] * 7
    table = ok(run(db, "history", "SKU-A")).stdout  # people see it too, in the "by" column
    assert " by " in table and table.count(expected) == 7


def test_login_name_is_whatever_getpass_answers(db, monkeypatch):
    import getpass

    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("USER", "nightshift")  # the first of the variables getpass reads that is set
    expected = getpass.getuser()
    assert expected == "nightshift"
    ok(run(db, "add", "SKU-1", "1"))
    assert history(db, "SKU-1")[0]["actor"] == expected


def test_import_rows_user_overrides_the_import_user(db):
    import_rows(db, [
        {"op": "add", "product": "SKU-1", "quantity": 5},
        {"op": "add", "product": "SKU-1", "quantity": 5, "user": "Łucja"},
        {"op": "reserve", "product": "SKU-1", "quantity": 2, "customer": "c", "reservation_id": "R-1"},
        {"op": "release", "reservation_id": "R-1", "user": "ops-bot"},
    ], "--user", "batch")
    assert [e["actor"] for e in history(db, "SKU-1")] == ["batch", "Łucja", "batch", "ops-bot"]

    # CSV: an empty `user` cell is absent; the import's own actor then comes from INVENTORY_USER.
    csv_file = db.parent / "rows.csv"
    csv_file.write_text("op,product,quantity,user\nadd,SKU-2,1,\nadd,SKU-2,2,kai\n", encoding="utf-8")
    ok(run(db, "import", str(csv_file), "--json", env={"INVENTORY_USER": "night-import", **LOGIN}))
    assert [e["actor"] for e in history(db, "SKU-2")] == ["night-import", "kai"]

    # Neither --user nor INVENTORY_USER: the login name.
    import_rows(db, [{"op": "add", "product": "SKU-3", "quantity": 1}], env=LOGIN)
    assert [e["actor"] for e in history(db, "SKU-3")] == ["clerk-login"]


def test_same_key_under_another_user_is_the_same_command(db):
    first = doc(ok(run(db, "add", "SKU-1", "5", "--id", "delivery-17", "--user", "ana", "--json")))
    again = doc(ok(run(db, "add", "SKU-1", "5", "--id", "delivery-17", "--user", "bo", "--json")))
    assert again["position"] == first["position"] == 1
    assert [e["actor"] for e in history(db, "SKU-1")] == ["ana"]


@pytest.mark.parametrize("bad", ["", " ana", "x" * 65, "tab\there"])
def test_an_invalid_user_is_a_usage_error_and_writes_nothing(db, bad):
    usage_error(run(db, "add", "SKU-1", "5", "--user", bad))
    if bad:  # an empty INVENTORY_USER counts as unset (test below)
        usage_error(run(db, "add", "SKU-1", "5", env={"INVENTORY_USER": bad}))
    assert not db.exists()


def test_an_empty_inventory_user_falls_back_to_the_login_name(db):
    ok(run(db, "add", "SKU-1", "5", env={"INVENTORY_USER": "", **LOGIN}))
    assert history(db, "SKU-1")[0]["actor"] == "clerk-login"


# -- the hash chain, checked by somebody else's script -------------------------------------------


def test_independent_script_recomputes_every_hash(rich_db, tmp_path):
    code, report = verify(rich_db)
    assert code == 0 and report["events"] == RICH_EVENTS
    result = check_chain(rich_db, tmp_path)
    assert result.returncode == 0, result.stderr
    # The script ends at the same head as the tool: the tool stores what chain.py defines.
    assert result.stdout == f"chain ok: {report['head_position']}:{report['head_hash']}\n"
    # It really did read every event (the log holds all kinds, non-ASCII codes included).
    rows = sql(rich_db, "SELECT type, store, product, actor, hash FROM event_log ORDER BY position")
    assert len(rows) == RICH_EVENTS and len({r[4] for r in rows}) == RICH_EVENTS
    assert {r[0] for r in rows} == {"StockAdded", "StockRemoved", "StockReserved", "StockReleased",
                                    "ReservationFulfilled", "StockCounted"} | STORE_OPERATION_TYPES
    assert {"Äpfel-Ø", "Ünïcødé-ß"} <= {r[2] for r in rows} and "köln-süd" in {r[1] for r in rows}
    assert {"importer", "Łucja", "Jürgen"} == {r[3] for r in rows}
    # And the script is not blind: a changed reason (the JSON payload) is named at its position.
    sql(rich_db, "DROP TRIGGER events_refuse_update",
        "UPDATE events SET data = replace(data, 'verdorben', 'gestohlen') WHERE position = 4")
    result = check_chain(rich_db, tmp_path)
    assert result.returncode == 1 and result.stderr.startswith("position 4: ")


def test_docs_show_the_tested_script():
    text = (REPO_ROOT / "docs" / "audit.md").read_text(encoding="utf-8")
    assert "```python\n" + CHECK_CHAIN + "```" in text


# -- tampering ------------------------------------------------------------------------------------


def test_an_edited_quantity_is_named_by_position(rich_db, tmp_path):
    code, before = verify(rich_db)
    assert code == 0
    sql(rich_db, "DROP TRIGGER events_refuse_update",
        "UPDATE events SET quantity = quantity + 1 WHERE position = 6")
    code, report = verify(rich_db)
    assert code == 1
    assert report["first_bad_position"] == 6
    assert report["ok"] is False and report["events"] == RICH_EVENTS
    human = run(rich_db, "verify")
    assert human.exit_code == 1 and "position 6" in human.stdout
    assert check_chain(rich_db, tmp_path).stderr.startswith("position 6: ")


def test_a_deleted_middle_event_is_named_by_the_position_after_the_gap(rich_db, tmp_path):
    sql(rich_db, "DROP TRIGGER events_refuse_delete", "DELETE FROM events WHERE position = 8")
    code, report = verify(rich_db)
    assert code == 1
    assert report["first_bad_position"] == 9
    assert report["events"] == RICH_EVENTS - 1
    assert check_chain(rich_db, tmp_path).stderr.startswith("position 9: ")


def test_a_deleted_event_is_caught_even_when_the_rest_is_rehashed(rich_db, tmp_path):
    sql(rich_db, "DROP TRIGGER events_refuse_delete", "DROP TRIGGER events_refuse_update",
        "DELETE FROM events WHERE position = 8")
    assert forge_chain(rich_db, tmp_path) == RICH_EVENTS - 8  # positions 9 to the head
    ok(run(rich_db, "rebuild-projections"))
    code, report = verify(rich_db)
    assert code == 1 and report["first_bad_position"] == 8  # verify also wants positions 1, 2, 3 …
    assert report["projections_ok"] is True


def test_streams_refuse_renames_and_a_forced_rename_is_caught(rich_db):
    first = sql(rich_db, "SELECT min(position) FROM event_log WHERE product = 'SKU-1' AND store = 'main'")[0][0]
    rename = "UPDATE streams SET product = 'SKU-9' WHERE product = 'SKU-1' AND store = 'main'"
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        sql(rich_db, rename)
    sql(rich_db, "DROP TRIGGER streams_refuse_update")
    sql(rich_db, rename)
    code, report = verify(rich_db)
    assert code == 1 and report["first_bad_position"] == first == 2


def test_an_event_inserted_behind_the_tools_back_is_named(rich_db):
    sql(rich_db, "INSERT INTO events (position, stream_id, version, type, quantity, data, occurred_at,"
                 " recorded_at, actor) SELECT position + 1, stream_id, 99, 'StockAdded', 1000,"
                 " '{\"reason\":\"received\"}', occurred_at, recorded_at, 'mallory'"
                 " FROM events WHERE position = ?", params=(RICH_EVENTS,))
    code, report = verify(rich_db)
    assert code == 1 and report["first_bad_position"] == RICH_EVENTS + 1


def test_a_consistent_rewrite_passes_without_an_anchor_and_fails_with_one(rich_db, tmp_path):
    _, before = verify(rich_db)
    anchor = f"{before['head_position']}:{before['head_hash']}"  # written down last night
    early_anchor = f"5:{sql(rich_db, 'SELECT hash FROM events WHERE position = 5')[0][0]}"
    untouched = tmp_path / "untouched.db"
    backup(rich_db, untouched)

    # Whoever can write the file: change a delivery, recompute every later hash with the
    # published script, put the trigger back and have the tool rebuild the projections.
    sql(rich_db, "DROP TRIGGER events_refuse_update",
        "UPDATE events SET quantity = 30 WHERE position = 8")  # add 9 -> add 30
    assert forge_chain(rich_db, tmp_path) == RICH_EVENTS - 7  # positions 8 to the head
    sql(rich_db, "CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events BEGIN"
                 " SELECT RAISE(ABORT, 'the event log is append-only: events cannot be updated'); END")
    ok(run(rich_db, "rebuild-projections"))
    stock = doc(ok(run(rich_db, "stock", "Ünïcødé-ß", "--json")))
    assert stock[0]["on_hand"] == 30  # the forgery took

    code, report = verify(rich_db)
    assert code == 0 and report["head_position"] == before["head_position"]
    assert report["head_hash"] != before["head_hash"]
    assert "anchor_ok" not in report

    code, report = verify(rich_db, "--anchor", anchor)
    assert code == 1 and report["anchor_ok"] is False
    assert report["first_bad_position"] is None and report["projections_ok"] is True
    human = run(rich_db, "verify", "--anchor", anchor)
    assert human.exit_code == 1 and "anchor" in human.stdout

    # An anchor only vouches for the events up to it: the rewrite came after position 5.
    code, report = verify(rich_db, "--anchor", early_anchor)
    assert code == 0 and report["anchor_ok"] is True

    code, report = verify(untouched, "--anchor", anchor.upper())  # hex in capitals is accepted
    assert code == 0 and report == {**before, "anchor_ok": True}


def test_deleting_the_last_events_is_only_caught_by_an_anchor(rich_db):
    _, before = verify(rich_db)
    anchor = f"{before['head_position']}:{before['head_hash']}"
    sql(rich_db, "DROP TRIGGER events_refuse_delete", "DELETE FROM events WHERE position >= 14")
    code, report = verify(rich_db)
    assert code == 1 and report["first_bad_position"] is None and report["projections_ok"] is False
    ok(run(rich_db, "rebuild-projections"))  # the projections follow the shortened log
    code, report = verify(rich_db)
    assert code == 0 and report["head_position"] == 13
    code, report = verify(rich_db, "--anchor", anchor)
    assert code == 1 and report["anchor_ok"] is False


def test_edited_projections_fail_verify_with_no_bad_position(rich_db):
    sql(rich_db, "UPDATE stock SET on_hand = on_hand + 5 WHERE product = 'SKU-1' AND store = 'main'")
    code, report = verify(rich_db)
    assert code == 1
    assert report["first_bad_position"] is None
    assert report["projections_ok"] is False
    assert report["events"] == RICH_EVENTS and report["head_position"] == RICH_EVENTS
    human = run(rich_db, "verify")
    assert human.exit_code == 1 and "rebuild-projections" in human.stdout
    ok(run(rich_db, "rebuild-projections"))
    assert verify(rich_db)[0] == 0


def test_verify_usage_errors_and_a_missing_database(db, rich_db):
    for bad in ("15", "15:", "x:" + "a" * 64, "15:" + "a" * 63, "15:" + "g" * 64, "-1:" + "a" * 64):
        usage_error(run(rich_db, "verify", "--json", "--anchor", bad))
    code, report = verify(rich_db, "--anchor", f"{RICH_EVENTS + 1}:{'a' * 64}")  # beyond the head
    assert code == 1 and report["anchor_ok"] is False

    missing = db.parent / "nowhere" / "missing.db"
    code, report = verify(missing)
    assert code == 0
    assert report == {"ok": True, "events": 0, "first_bad_position": None, "projections_ok": True,
                      "head_position": 0, "head_hash": None}
    code, report = verify(missing, "--anchor", f"1:{'a' * 64}")  # an anchor promises events
    assert code == 1 and report["anchor_ok"] is False
    assert not missing.parent.exists()


# -- diff ------------------------------------------------------------------------------------------


def build_diff_log(db: Path) -> None:
    import_rows(db, [
        {"op": "add", "product": "A", "quantity": 10, "at": at(DAY1, "09:00")},
        {"op": "add", "product": "B", "quantity": 5, "at": at(DAY1, "09:00")},
        {"op": "add", "product": "C", "quantity": 4, "at": at(DAY1, "09:00")},
        {"op": "add", "product": "F", "quantity": 2, "at": at(DAY1, "09:00")},
        {"op": "remove", "product": "A", "quantity": 3, "at": at(DAY2, "09:00")},  # 10 -> 7
        {"op": "reserve", "product": "B", "quantity": 2, "customer": "c", "at": at(DAY2, "09:00")},
        {"op": "add", "product": "E", "quantity": 6, "at": at(DAY2, "09:00")},  # a new line
        {"op": "add", "product": "F", "quantity": 1, "at": at(DAY2, "09:00")},
        {"op": "remove", "product": "F", "quantity": 1, "at": at(DAY2, "10:00")},  # back to 2
        {"op": "add", "product": "A", "store": "other", "quantity": 8, "at": at(DAY2, "09:00")},
        {"op": "add", "product": "A", "quantity": 100, "at": at(DAY3, "09:00")},
    ])


def change(store, product, on_hand, reserved, incoming=(0, 0)) -> dict:
    """A diff line from (before, after) pairs."""
    line = {"store": store, "product": product}
    available = (on_hand[0] - reserved[0], on_hand[1] - reserved[1])
    for name, (old, new) in (
        ("on_hand", on_hand), ("reserved", reserved), ("available", available), ("incoming", incoming)
    ):
        line.update({f"{name}_before": old, f"{name}_after": new, f"{name}_change": new - old})
    return line


def test_diff_between_two_times(db):
    build_diff_log(db)
    window = ["--since", at(DAY1, "12:00"), "--until", at(DAY2, "12:00")]
    a = change("main", "A", (10, 7), (0, 0))
    b = change("main", "B", (5, 5), (0, 2))
    e = change("main", "E", (0, 6), (0, 0))
    other_a = change("other", "A", (0, 8), (0, 0))
    # C did not move, F moved and came back: only lines that changed are listed.
    assert diff(db, *window) == [a, b, e]
    assert diff(db, *window, "--all-stores") == [a, b, e, other_a]
    assert diff(db, "A", *window) == [a]
    assert diff(db, "A", *window, "--all-stores") == [a, other_a]
    assert diff(db, "A", *window, "--store", "other") == [other_a]
    # Without --until: up to now, so the third day's delivery counts too.
    assert diff(db, "A", "--since", at(DAY1, "12:00")) == [change("main", "A", (10, 107), (0, 0))]
    assert diff(db, "--since", at(DAY3, "12:00")) == []
    table = ok(run(db, "diff", *window)).stdout
    assert "10 → 7" in table and "-3" in table and "+2" in table


def test_diff_between_two_positions(db):
    build_diff_log(db)
    # Positions 5..9 are the second day's events in main; 10 is store "other".
    assert diff(db, "--from-position", "4", "--to-position", "7") == [
        change("main", "A", (10, 7), (0, 0)),
        change("main", "B", (5, 5), (0, 2)),
        change("main", "E", (0, 6), (0, 0)),
    ]
    assert diff(db, "--from-position", "7", "--to-position", "9") == []  # F: +1 then -1
    assert diff(db, "--from-position", "0", "--to-position", "1") == [change("main", "A", (0, 10), (0, 0))]
    assert diff(db, "A", "--from-position", "9", "--all-stores") == [
        change("main", "A", (7, 107), (0, 0)),
        change("other", "A", (0, 8), (0, 0)),
    ]


def test_diff_lists_a_line_whose_incoming_changed(db):
    ok(run(db, "add", "SKU-1", "10"))
    ok(run(db, "transfer", "SKU-1", "4", "--from", "main", "--to", "north", "--id", "T-1"))
    replayed = doc(ok(run(db, "replay", "--all-stores", "--json")))
    assert [(l["store"], l["incoming"]) for l in replayed] == [("main", 0), ("north", 4)]
    changes = {c["store"]: c for c in diff(db, "--all-stores", "--from-position", "1")}
    assert changes["main"]["on_hand_change"] == -4
    assert "north" in changes, "the receiving store's line is missing from the diff"
    assert (changes["north"]["incoming_before"], changes["north"]["incoming_after"],
            changes["north"]["incoming_change"]) == (0, 4, 4)


def test_diff_usage_errors(db):
    build_diff_log(db)
    for args in (
        ["--since", at(DAY1, "12:00"), "--to-position", "3"],
        ["--from-position", "1", "--until", at(DAY2, "12:00")],
        ["--until", at(DAY2, "12:00")],
        ["--to-position", "3"],
        [],
        ["--since", "yesterday-ish"],
    ):
        result = run(db, "diff", *args, "--json")
        usage_error(result)
        assert result.stdout == "", args
    missing = db.parent / "missing.db"
    assert doc(ok(run(missing, "diff", "--from-position", "0", "--json"))) == []
    assert not missing.exists()


# -- history of a whole store ------------------------------------------------------------------------


def test_history_without_product_lists_the_whole_store(db):
    import_rows(db, [
        {"op": "add", "product": "A", "quantity": 10, "at": at(DAY1, "09:00")},
        {"op": "add", "product": "B", "quantity": 3, "at": at(DAY1, "10:00")},
        {"op": "add", "product": "A", "store": "other", "quantity": 50, "at": at(DAY1, "11:00")},
        {"op": "reserve", "product": "A", "quantity": 4, "customer": "c", "reservation_id": "R-A",
         "at": at(DAY2, "09:00")},
        {"op": "remove", "product": "B", "quantity": 1, "at": at(DAY2, "10:00"), "user": "kai"},
        {"op": "fulfill", "reservation_id": "R-A", "at": at(DAY3, "09:00")},
        {"op": "count", "product": "B", "quantity": 9, "at": at(DAY3, "10:00")},
    ], "--user", "ana")
    events = history(db)
    assert [(e["position"], e["product"], e["type"], e["on_hand"], e["reserved"], e["available"])
            for e in events] == [
        (1, "A", "StockAdded", 10, 0, 10),
        (2, "B", "StockAdded", 3, 0, 3),
        (4, "A", "StockReserved", 10, 4, 6),
        (5, "B", "StockRemoved", 2, 0, 2),
        (6, "A", "ReservationFulfilled", 6, 0, 6),
        (7, "B", "StockCounted", 9, 0, 9),
    ]
    assert {e["store"] for e in events} == {"main"}
    assert [e["actor"] for e in events] == ["ana", "ana", "ana", "kai", "ana", "ana"]
    assert [e["position"] for e in history(db, "--store", "other")] == [3]

    # The balances stay right when the period cuts off the first events.
    day2 = history(db, "--since", at(DAY2, "00:00"), "--until", at(DAY2, "23:59"))
    assert [(e["position"], e["on_hand"], e["reserved"]) for e in day2] == [(4, 10, 4), (5, 2, 0)]
    assert [e["position"] for e in history(db, "--until", at(DAY1, "23:59"))] == [1, 2]
    assert [e["position"] for e in history(db, "--since", at(DAY2, "10:00"))] == [5, 6, 7]  # inclusive
    assert [e["position"] for e in history(db, "--limit", "2")] == [6, 7]
    assert [e["position"] for e in history(db, "--since", at(DAY2, "00:00"), "--limit", "3")] == [5, 6, 7]
    assert history(db, "--limit", "0") == []

    table = ok(run(db, "history")).stdout
    assert "product" in table and "kai" in table
    assert ok(run(db.parent / "missing.db", "history")).stdout.startswith("No events for store main")


# -- export, the feed ------------------------------------------------------------------------------------


def test_export_writes_every_field_in_position_order(rich_db):
    events = export(rich_db)
    assert [e["position"] for e in events] == list(range(1, RICH_EVENTS + 1))
    stored = sql(rich_db, "SELECT position, version, type, store, product, quantity, occurred_at,"
                          " recorded_at, actor, idempotency_key, data, hash FROM event_log ORDER BY position")
    for event, row in zip(events, stored):
        assert EXPORT_KEYS <= event.keys()
        assert tuple(event[k] for k in ("position", "version", "type", "store", "product", "quantity",
                                        "occurred_at", "recorded_at", "actor", "idempotency_key",
                                        "data", "hash")) == row
        payload = json.loads(event["data"])
        for name in ("reason", "customer", "reservation_id"):
            assert event[name] == payload.get(name)

    by_position = {e["position"]: e for e in events}
    assert by_position[3]["customer"] == "Zoë" and by_position[3]["reservation_id"] == "R-imp"
    assert by_position[3]["actor"] == "Łucja" and by_position[3]["idempotency_key"] == "imp-3"
    assert by_position[3]["occurred_at"] == "2024-03-02T10:00:00.000000+00:00"
    assert by_position[13]["type"] == "StockCounted" and by_position[13]["quantity"] == -4
    assert by_position[8]["product"] == "Ünïcødé-ß" and by_position[8]["idempotency_key"] is None
    assert by_position[14]["reason"] == 'damaged; box 7/8 "wet"'
    shipped = [e for e in events if e["type"] == "TransferShipped"]
    assert [(e["store"], e["transfer_id"], e["quantity"]) for e in shipped] == [("main", "T-1", 3)]
    lost = [e for e in events if e["type"] == "TransferLost"]
    assert [(e["store"], e["quantity"], e["reason"]) for e in lost] == [("köln-süd", 1, "lost in transit")]
    history_by_position = {e["position"]: e for e in history(rich_db)}
    for position, entry in history_by_position.items():
        assert {k: by_position[position][k] for k in entry if k in EXPORT_KEYS} == \
            {k: v for k, v in entry.items() if k in EXPORT_KEYS}

    # Resuming: only what came after the last position seen.
    assert export(rich_db, "--after-position", "12") == events[12:]
    assert export(rich_db, "--after-position", str(RICH_EVENTS)) == []
    # --until filters on occurred_at (the imported rows happened in 2024, were recorded now).
    assert [e["position"] for e in export(rich_db, "--until", at(DAY2, "11:00"))] == [1, 2, 3, 4]
    assert [e["position"] for e in export(rich_db, "--after-position", "2", "--until", at(DAY3, "08:00"))] \
        == [3, 4, 5, 6]
    usage_error(run(rich_db, "export", "--after-position", "-1"))
    usage_error(run(rich_db, "export", "--until", "soon"))

    missing = rich_db.parent / "missing.db"
    assert ok(run(missing, "export")).stdout == "" and not missing.exists()


def process_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TOOL_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def inventory(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inventory_cli", "--db", str(db), *args],
                          env=process_env(), cwd=db.parent, capture_output=True, text=True, timeout=120)


def test_a_resuming_consumer_sees_every_event_exactly_once_while_writers_write(db):
    writers, writes_each = 3, 4
    assert inventory(db, "add", "SKU-0", "1").returncode == 0  # the file exists before the race
    failures: list[str] = []

    def writer(n: int) -> None:
        for _ in range(writes_each):
            result = inventory(db, "add", f"SKU-{n}", "1", "--user", f"writer-{n}")
            if result.returncode != 0:
                failures.append(result.stderr)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(1, writers + 1)]
    for thread in threads:
        thread.start()

    seen: list[int] = []

    def consume() -> None:
        last = seen[-1] if seen else 0
        result = inventory(db, "export", "--after-position", str(last))
        assert result.returncode == 0, result.stderr
        positions = [json.loads(line)["position"] for line in result.stdout.splitlines()]
        # Every batch continues exactly where the last one ended: no gap is filled in later.
        assert positions == list(range(last + 1, last + 1 + len(positions))), (last, positions)
        seen.extend(positions)

    while any(thread.is_alive() for thread in threads):
        consume()
        time.sleep(0.1)  # pacing only: leave the CPU to the writers
    for thread in threads:
        thread.join()
    consume()  # once more after the writers finished

    assert failures == []
    total = sql(db, "SELECT count(*) FROM events")[0][0]
    assert total == 1 + writers * writes_each
    assert seen == list(range(1, total + 1))
    assert len(set(seen)) == len(seen)


# -- migration of a version-1 file ---------------------------------------------------------------------


def build_version_1_file(path: Path) -> None:
    """A database as schema version 1 wrote it: no actor, no hash."""
    from inventory_cli.storage.sqlite.schema import migrate

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        conn.execute("BEGIN IMMEDIATE")
        migrate(conn, 0, to_version=1)
        t = [f"2025-01-0{d}T10:00:00.000000+00:00" for d in range(1, 6)]
        conn.executemany("INSERT INTO streams (stream_id, store, product) VALUES (?, ?, ?)",
                         [(1, "main", "OLD-1"), (2, "main", "Ölfass")])
        conn.executemany(
            "INSERT INTO events (position, stream_id, version, type, quantity, data, occurred_at,"
            " recorded_at, idempotency_key, command_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (1, 1, 1, "StockAdded", 10, '{"reason":"received"}', t[0], t[0], None, None),
                (2, 1, 2, "StockReserved", 3, '{"reservation_id":"R-OLD","customer":"Zoë"}', t[1], t[1],
                 "R-OLD", "c0ffee01"),
                (3, 2, 1, "StockAdded", 5, '{"reason":"geliefert"}', t[2], t[2], "k-old", "c0ffee02"),
                (4, 1, 3, "StockRemoved", 2, '{"reason":"sold"}', t[3], t[3], None, None),
                (5, 2, 2, "StockCounted", -1, '{"counted":4}', t[4], t[4], None, None),
            ],
        )
        conn.executemany(
            "INSERT INTO stock (stream_id, store, product, on_hand, reserved, version, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(1, "main", "OLD-1", 8, 3, 3, t[3]), (2, "main", "Ölfass", 4, 0, 2, t[4])],
        )
        conn.execute("INSERT INTO reservations (reservation_id, stream_id, quantity, customer, status,"
                     " created_at) VALUES ('R-OLD', 1, 3, 'Zoë', 'open', ?)", (t[1],))
        conn.executemany("INSERT INTO idempotency_keys (key, command_hash, stream_id, position)"
                         " VALUES (?, ?, ?, ?)", [("R-OLD", "c0ffee01", 1, 2), ("k-old", "c0ffee02", 2, 3)])
        conn.execute("COMMIT")
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        conn.close()


def test_a_version_1_file_gets_actors_and_a_chain(db, tmp_path):
    build_version_1_file(db)
    old = history(db, "OLD-1")  # the first open migrates
    assert [(e["position"], e["type"], e["actor"]) for e in old] == [
        (1, "StockAdded", "unknown"), (2, "StockReserved", "unknown"), (4, "StockRemoved", "unknown"),
    ]
    assert [e["on_hand"] for e in old] == [10, 10, 8]
    from inventory_cli.storage.sqlite.schema import CURRENT_VERSION

    assert CURRENT_VERSION >= 2 and sql(db, "PRAGMA user_version") == [(CURRENT_VERSION,)]

    code, report = verify(db)
    assert code == 0, report
    assert report["events"] == 5 and report["head_position"] == 5
    assert check_chain(db, tmp_path).stdout == f"chain ok: 5:{report['head_hash']}\n"

    # New writes chain on from the migrated head.
    ok(run(db, "fulfill", "R-OLD", "--user", "ana"))
    ok(run(db, "add", "Ölfass", "2", "--user", "bo"))
    code, after = verify(db, "--anchor", f"5:{report['head_hash']}")
    assert code == 0 and after["anchor_ok"] is True and after["events"] == 7
    assert check_chain(db, tmp_path).stdout == f"chain ok: 7:{after['head_hash']}\n"
    assert [e["actor"] for e in export(db)] == ["unknown"] * 5 + ["ana", "bo"]

    # The migration put the guards back: the log still refuses UPDATE and DELETE.
    for statement in ("UPDATE events SET quantity = 99 WHERE position = 1",
                      "DELETE FROM events WHERE position = 1",
                      "UPDATE events SET hash = NULL WHERE position = 3"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            sql(db, statement)
    assert verify(db)[0] == 0
