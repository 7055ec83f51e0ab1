"""The first write on a server: the tables and the write commit together or not at all.

A first command, import or restore that is refused (by a rule, by bad rows, by the
server's privileges) leaves the schema as it found it: no empty tables, no schema
made for nothing. The contract: "nothing written" on refusal.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import cli_env, run_inventory
from inventory_cli.cli.main import app
from inventory_cli.storage.postgresql.schema import CURRENT_VERSION
from pg_fixtures import PgSchema, admin_connection, pg_schema, pg_url  # noqa: F401  (fixtures)
from test_postgresql_roles import roles  # noqa: F401  (fixture)


def _invoke(db: str, *argv: str, input: str | None = None):
    return CliRunner().invoke(app, list(argv), env=cli_env(db), input=input, catch_exceptions=False)


def _objects(schema: str) -> list[str]:
    """Every table, view, sequence, index and function in the schema."""
    with admin_connection() as conn:
        relations = conn.execute(
            "SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s", (schema,)
        ).fetchall()
        functions = conn.execute(
            "SELECT p.proname FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace"
            " WHERE n.nspname = %s", (schema,)
        ).fetchall()
    return sorted(name for name, in relations + functions)


def _schema_exists(name: str) -> bool:
    with admin_connection() as conn:
        return conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (name,)).fetchone()[0] == 1


@pytest.mark.parametrize("argv, code", [
    (("remove", "A", "5"), 1),
    (("release", "R-NONE"), 1),
    (("transfer", "A", "1", "--from", "main", "--to", "north"), 1),
])
def test_a_refused_first_command_leaves_no_tables(pg_schema: PgSchema, argv, code) -> None:
    done = _invoke(pg_schema.url, *argv)
    assert done.exit_code == code and "Nothing was written" in done.stderr
    assert _objects(pg_schema.name) == []
    assert json.loads(_invoke(pg_schema.url, "stock", "--json").stdout) == []


def test_a_refused_first_import_leaves_no_tables(pg_schema: PgSchema) -> None:
    rows = [{"op": "add", "product": "A", "quantity": 2}, {"op": "remove", "product": "A", "quantity": 5},
            {"op": "add", "product": "B", "quantity": 1, "at": "2999-01-01T00:00:00Z"}]  # the server's clock says no
    done = _invoke(pg_schema.url, "import", "-", "--format", "ndjson",
                   input="".join(json.dumps(row) + "\n" for row in rows))
    assert done.exit_code == 65 and "line 2" in done.stderr and "line 3" in done.stderr
    assert _objects(pg_schema.name) == []


def test_a_refused_first_restore_leaves_no_tables(pg_schema: PgSchema, tmp_path) -> None:
    shop = str(tmp_path / "shop.db")
    for argv in (("add", "A", "3"), ("add", "B", "1"), ("remove", "A", "1")):
        assert _invoke(shop, *argv).exit_code == 0
    lines = _invoke(shop, "export").stdout.splitlines(keepends=True)
    done = _invoke(pg_schema.url, "restore", "-", input=lines[0] + lines[2])  # a gap at position 2
    assert done.exit_code == 65 and "line 2" in done.stderr
    assert _objects(pg_schema.name) == []
    assert _invoke(pg_schema.url, "restore", "-", input="".join(lines)).exit_code == 0


def test_a_role_without_create_rights_is_told_to_migrate_and_creates_nothing(pg_schema: PgSchema, roles) -> None:  # noqa: F811
    with admin_connection() as conn:
        conn.execute(f'GRANT USAGE ON SCHEMA "{pg_schema.name}" TO "{roles["clerk"]}"')
    clerk = pg_schema.url.replace("postgres@", f"{roles['clerk']}@", 1)
    for argv in (("add", "A", "1"), ("import", "-", "--format", "ndjson")):
        done = run_inventory(clerk, *argv)
        assert done.returncode == 74, done.stderr
        assert "permission denied for schema" in done.stderr and "inventory migrate" in done.stderr
        assert "^" not in done.stderr  # the server's message, not the caret under its SQL
    assert _objects(pg_schema.name) == []


def test_a_reader_writing_where_the_schema_does_not_exist_creates_no_schema(pg_schema: PgSchema, roles) -> None:  # noqa: F811
    missing = pg_schema.name + "_new"
    url = pg_schema.url.replace(pg_schema.name, missing).replace("postgres@", f"{roles['reader']}@", 1)
    done = run_inventory(url, "add", "A", "1")
    assert done.returncode == 74 and "inventory migrate" in done.stderr
    assert not _schema_exists(missing)


def test_the_first_write_creates_the_tables_with_its_event(pg_schema: PgSchema) -> None:
    done = _invoke(pg_schema.url, "add", "A", "4", "--json")
    assert done.exit_code == 0, done.stderr
    assert pg_schema.sql("SELECT count(*) FROM events") == [(1,)]
    assert pg_schema.sql("SELECT version FROM inventory_schema") == [(CURRENT_VERSION,)]
    assert "events" in _objects(pg_schema.name) and "inventory_append" in _objects(pg_schema.name)
