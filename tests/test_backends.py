"""The same commands on SQLite and on PostgreSQL give the same outputs and exit codes.

One scenario through the CLI (typer's CliRunner) covers every command; times,
hashes and the keys a server makes for writes without --id differ by nature and
are masked, everything else must be equal, byte for byte.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import cli_env
from inventory_cli.cli.main import app
from pg_fixtures import pg_schema, pg_url  # noqa: F401  (fixtures)
from typer.testing import CliRunner

_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_HASH = re.compile(r"\b[0-9a-f]{64}\b")
_MADE_KEY = re.compile(r'"auto-[0-9a-f]{32}"')
_SECONDS = re.compile(r'"seconds": [0-9.]+')

IMPORT = "\n".join(json.dumps(row) for row in [
    {"op": "add", "product": "C", "quantity": 7, "id": "imp-1"},
    {"op": "remove", "product": "C", "quantity": 2, "id": "imp-2"},
    {"op": "add", "product": "D", "quantity": 1, "store": "north", "id": "imp-3"},
]) + "\n"
BAD_IMPORT = json.dumps({"op": "remove", "product": "C", "quantity": 99}) + "\n"

SCENARIO: list[tuple[str, ...]] = [
    ("stock", "--json"),
    ("export",),
    ("add", "A", "10", "--json"),
    ("add", "A", "5", "--store", "north", "--id", "k1", "--json"),
    ("add", "A", "5", "--store", "north", "--id", "k1", "--json"),
    ("add", "A", "6", "--store", "north", "--id", "k1", "--json"),
    ("remove", "A", "3", "--reason", "sold", "--json"),
    ("remove", "A", "100", "--json"),
    ("count", "B", "4", "--json"),
    ("reserve", "A", "2", "--customer", "ann", "--id", "R1", "--json"),
    ("reserve", "A", "1", "--customer", "bob", "--id", "R2", "--ttl", "1h", "--json"),
    ("reserve", "A", "99", "--customer", "cy", "--json"),
    ("reservations", "--all-stores", "--json"),
    ("release", "R1", "--json"),
    ("fulfill", "R2", "--json"),
    ("release", "R2", "--json"),
    ("product", "set", "A", "--name", "Widget ü", "--reorder-point", "6", "--json"),
    ("product", "list", "--json"),
    ("transfer", "A", "3", "--from", "main", "--to", "north", "--id", "T1", "--json"),
    ("transfers", "--open", "--json"),
    ("receive", "T1", "--quantity", "2", "--json"),
    ("transfers", "--json"),
    ("import", "-", "--json"),
    ("import", "-", "--json"),
    ("stock", "--all-stores", "--json"),
    ("stock", "--all-stores"),
    ("stock", "--low", "--json"),
    ("history", "A", "--json"),
    ("history", "--json"),
    ("replay", "--all-stores", "--position", "5", "--json"),
    ("diff", "--all-stores", "--from-position", "3", "--to-position", "9", "--json"),
    ("expire", "--json"),
    ("verify", "--json"),
    ("rebuild-projections", "--json"),
    ("rebuild-projections", "--check", "--json"),
    ("export",),
    ("export", "--after-position", "12"),
]


def _masked(text: str) -> str:
    text = _MADE_KEY.sub("null", text)
    return _SECONDS.sub('"seconds": 0', _HASH.sub("<hash>", _TIME.sub("<time>", text)))


def _run_scenario(db: str) -> list[tuple[tuple[str, ...], int, str, str]]:
    runner = CliRunner()
    outcomes = []
    for argv in SCENARIO:
        given = None
        if argv[0] == "import":
            given = BAD_IMPORT if outcomes and outcomes[-1][0][0] == "import" else IMPORT
        result = runner.invoke(app, list(argv), env=cli_env(db), input=given, catch_exceptions=False)
        outcomes.append((argv, result.exit_code, _masked(result.stdout), _masked(result.stderr)))
    return outcomes


def test_every_command_answers_the_same_on_both_backends(pg_url: str, tmp_path: Path) -> None:
    on_sqlite = _run_scenario(str(tmp_path / "inv.db"))
    on_postgres = _run_scenario(pg_url)
    for sqlite_outcome, pg_outcome in zip(on_sqlite, on_postgres):
        assert pg_outcome == sqlite_outcome
    codes = {argv: code for argv, code, _, _ in on_sqlite}
    assert codes["remove", "A", "100", "--json"] == 1 and codes["release", "R2", "--json"] == 1
    assert sorted(set(codes.values())) == [0, 1, 65]  # the scenario exercises refusals too


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_query_on_a_database_that_does_not_exist_yet_creates_nothing(backend, pg_schema, tmp_path) -> None:
    db = str(tmp_path / "inv.db") if backend == "sqlite" else pg_schema.url
    runner = CliRunner()
    for argv in (["stock", "--json"], ["verify", "--json"], ["export"], ["history", "--json"]):
        assert runner.invoke(app, argv, env=cli_env(db), catch_exceptions=False).exit_code == 0
    if backend == "sqlite":
        assert not Path(db).exists()
    else:
        assert pg_schema.sql("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (pg_schema.name,)) == [(0,)]


def _invoke(db: str, *argv: str, input: str | None = None):
    return CliRunner().invoke(app, list(argv), env=cli_env(db), input=input, catch_exceptions=False)


def test_restore_round_trips_sqlite_to_postgresql_to_sqlite_with_the_same_head_hash(pg_url, tmp_path) -> None:
    shop = str(tmp_path / "shop.db")
    _run_scenario(shop)
    exported = _invoke(shop, "export").stdout
    restored = _invoke(pg_url, "restore", "-", "--json", input=exported)
    assert restored.exit_code == 0, restored.stderr
    head = json.loads(_invoke(shop, "verify", "--json").stdout)
    assert json.loads(_invoke(pg_url, "verify", "--json").stdout) == head
    assert json.loads(restored.stdout) == {
        "events": head["events"], "head_position": head["head_position"], "head_hash": head["head_hash"],
    }
    assert _invoke(pg_url, "export").stdout == exported
    for argv in (("stock", "--all-stores", "--json"), ("transfers", "--json"), ("history", "--json")):
        assert _invoke(pg_url, *argv).stdout == _invoke(shop, *argv).stdout
    copy = tmp_path / "audit-copy.ndjson"
    copy.write_text(_invoke(pg_url, "export").stdout)
    back = str(tmp_path / "back.db")
    assert _invoke(back, "restore", str(copy)).exit_code == 0
    assert json.loads(_invoke(back, "verify", "--json").stdout) == head
    # A command repeated with its --id after the move changes nothing.
    again = _invoke(pg_url, "add", "A", "5", "--store", "north", "--id", "k1", "--json")
    assert again.exit_code == 0 and json.loads(_invoke(pg_url, "verify", "--json").stdout) == head


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_restore_refuses_a_target_with_events_and_a_broken_stream(backend, pg_schema, tmp_path) -> None:
    shop = str(tmp_path / "shop.db")
    _run_scenario(shop)
    lines = _invoke(shop, "export").stdout.splitlines(keepends=True)
    db = str(tmp_path / "target.db") if backend == "sqlite" else pg_schema.url
    gap = "".join(lines[:3] + lines[4:])
    done = _invoke(db, "restore", "-", input=gap)
    assert done.exit_code == 65 and "line 4" in done.stderr
    broken = "".join(lines[:6] + [lines[6].replace('"actor": "', '"actor": "x', 1)] + lines[7:])
    done = _invoke(db, "restore", "-", input=broken)
    assert done.exit_code == 65 and "line 7" in done.stderr
    assert _invoke(db, "export").stdout == ""
    if backend == "sqlite":
        assert not Path(db).exists()
    assert _invoke(db, "restore", "-", input="".join(lines)).exit_code == 0
    done = _invoke(db, "restore", "-", input="".join(lines))
    assert done.exit_code == 1 and "already has events" in done.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrate_creates_the_tables_once_and_then_changes_nothing(backend, pg_schema, tmp_path) -> None:
    db = str(tmp_path / "inv.db") if backend == "sqlite" else pg_schema.url
    for _ in range(2):
        done = _invoke(db, "migrate", "--json")
        assert done.exit_code == 0, done.stderr
        assert json.loads(done.stdout) == {"ok": True, "events": 0}
    assert _invoke(db, "add", "A", "1").exit_code == 0
    assert json.loads(_invoke(db, "migrate", "--json").stdout)["events"] == 1
    if backend == "postgresql":
        pg_schema.sql("UPDATE inventory_schema SET version = version + 1")
        for argv in (("stock",), ("add", "A", "1"), ("migrate",)):
            done = _invoke(db, *argv)
            assert done.exit_code == 74 and "newer version" in done.stderr
        assert pg_schema.sql("SELECT count(*) FROM events") == [(1,)]


def test_tables_of_another_application_in_the_schema_exit_74_untouched(pg_schema) -> None:
    pg_schema.sql("CREATE TABLE stock (sku text, qty int)")
    pg_schema.sql("INSERT INTO stock VALUES ('x', 1)")
    for argv in (("stock",), ("add", "A", "1"), ("migrate",), ("restore", "-")):
        done = _invoke(pg_schema.url, *argv, input="")
        assert done.exit_code == 74 and "another application" in done.stderr
    assert pg_schema.sql("SELECT * FROM stock") == [("x", 1)]
    assert pg_schema.sql("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (pg_schema.name,)) == [(1,)]


def test_a_postgresql_url_without_the_driver_is_a_usage_error_saying_what_to_install(pg_url, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a))
    done = _invoke(pg_url, "stock")
    assert done.exit_code == 2
    assert "pip install 'inventory-cli[postgresql]'" in done.stderr


def test_sqlite_commands_never_load_the_postgresql_driver(tmp_path) -> None:
    from conftest import run_inventory

    db = tmp_path / "inv.db"
    for argv in (("add", "A", "1"), ("stock",), ("export",), ("verify",)):
        done = run_inventory(db, *argv, env={"PYTHONPROFILEIMPORTTIME": "1"})
        assert done.returncode == 0, done.stderr
        assert "| inventory_cli.cli" in done.stderr  # the import report is there…
        assert "psycopg" not in done.stderr and "storage.postgresql" not in done.stderr  # …without the driver


def test_backup_of_a_server_is_a_usage_error_pointing_to_pg_dump_and_export(pg_url, tmp_path) -> None:
    done = _invoke(pg_url, "backup", str(tmp_path / "copy.db"))
    assert done.exit_code == 2 and "pg_dump" in done.stderr and "export" in done.stderr
    assert not (tmp_path / "copy.db").exists()


def test_reports_consumers_and_metrics_answer_on_a_server(pg_url) -> None:
    import json

    assert _invoke(pg_url, "add", "A", "5").exit_code == 0
    assert _invoke(pg_url, "remove", "A", "2").exit_code == 0
    done = _invoke(pg_url, "report", "movements", "--json")
    assert done.exit_code == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert (row["product"], row["added"], row["removed"], row["on_hand_end"]) == ("A", 5, 2, 3)
    done = _invoke(pg_url, "export", "--consumer", "warehouse")
    assert done.exit_code == 0, done.stderr
    assert [json.loads(line)["position"] for line in done.stdout.splitlines()] == [1, 2]
    assert json.loads(_invoke(pg_url, "consumers", "--json").stdout) == [
        {"consumer": "warehouse", "position": 2, "lag": 0}]
    assert _invoke(pg_url, "export", "--consumer", "warehouse").stdout == ""  # resumes after 2
    metrics = _invoke(pg_url, "metrics")
    assert metrics.exit_code == 0, metrics.stderr
    assert "inventory_head_position 2.0" in metrics.stdout
