"""Snapshots on PostgreSQL: written with the events, rebuilt and checked like a
projection, ignored when they fail their check; the answers are SQLite's."""

from __future__ import annotations

import json
import uuid

from conftest import data
from inventory_cli.domain.snapshots import SNAPSHOT_EVERY
from inventory_cli.storage.postgresql import schema
from pg_fixtures import PgSchema, admin_connection, pg_schema, pg_url  # noqa: F401  (fixtures)
from test_snapshots import long_stream_rows


def _without_time(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in ("updated_at", "position")}


def test_a_long_stream_gets_a_snapshot_and_answers_as_on_sqlite(invoke, pg_schema: PgSchema, tmp_path):
    source = tmp_path / "rows.ndjson"
    source.write_text(long_stream_rows(SNAPSHOT_EVERY + 500))
    for db in (pg_schema.url, tmp_path / "same.db"):
        assert invoke("import", source, "-q", json=False, db=db).exit_code == 0
    [(version, state)] = pg_schema.sql("SELECT version, state FROM snapshots")
    assert version == SNAPSHOT_EVERY + 500 and json.loads(state)["open"]
    for args in (["add", "HOT", "1"], ["reserve", "HOT", "2", "--id", "NEW"], ["fulfill", "R1495"],
                 ["release", "NEW"], ["fulfill", "R5"]):
        on_server, in_file = invoke(*args, db=pg_schema.url), invoke(*args, db=tmp_path / "same.db")
        assert (on_server.exit_code, on_server.stderr) == (in_file.exit_code, in_file.stderr)
        if on_server.exit_code == 0:
            assert _without_time(data(on_server)) == _without_time(data(in_file))
    assert data(invoke("verify", db=pg_schema.url))["ok"] is True


def test_an_edited_snapshot_is_ignored_by_writers_and_reported_until_rebuilt(invoke, pg_schema: PgSchema, tmp_path):
    source = tmp_path / "rows.ndjson"
    source.write_text(long_stream_rows(SNAPSHOT_EVERY + 10))
    assert invoke("import", source, "-q", json=False, db=pg_schema.url).exit_code == 0
    truth = data(invoke("stock", "HOT", db=pg_schema.url))[0]
    pg_schema.sql("UPDATE snapshots SET state = replace(state, '\"on_hand\":', '\"on_hand\":9')")
    checked = invoke("rebuild-projections", "--check", db=pg_schema.url)
    assert checked.exit_code == 1 and [d["table"] for d in data(checked)["differences"]] == ["snapshots"]
    assert data(invoke("verify", db=pg_schema.url))["projections_ok"] is False
    added = data(invoke("add", "HOT", "1", db=pg_schema.url))  # folded from the first event
    assert added["on_hand"] == truth["on_hand"] + 1
    pg_schema.sql("DELETE FROM snapshots")
    assert data(invoke("rebuild-projections", "--check", db=pg_schema.url))["ok"] is True  # missing: no error
    assert invoke("rebuild-projections", json=False, db=pg_schema.url).exit_code == 0
    assert pg_schema.sql("SELECT version FROM snapshots") == [(SNAPSHOT_EVERY + 11,)]
    assert data(invoke("verify", db=pg_schema.url))["ok"] is True


def test_the_upgrade_that_adds_snapshots_grants_them_to_the_roles_that_append(invoke, pg_schema: PgSchema, tmp_path):
    clerk = f"clerk_{uuid.uuid4().hex[:8]}"
    with admin_connection() as conn:
        conn.execute(f'CREATE ROLE "{clerk}" LOGIN')
    try:
        with admin_connection() as conn:  # a schema of version 2, as an earlier release made it
            conn.execute(f'SET search_path TO "{pg_schema.name}"')
            for script in schema.MIGRATIONS[:2]:
                conn.execute(script)
            conn.execute("INSERT INTO inventory_schema (application, version) VALUES (%s, 2)", (schema.APPLICATION,))
            s = pg_schema.name  # the GRANTs of that release's docs: no snapshots
            conn.execute(f'GRANT USAGE ON SCHEMA "{s}" TO "{clerk}";'
                         f'GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA "{s}" TO "{clerk}";'
                         f'GRANT UPDATE ON "{s}".stock, "{s}".reservations, "{s}".products, "{s}".transfers TO "{clerk}";'
                         f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{s}" TO "{clerk}"')
        assert invoke("migrate", json=False, db=pg_schema.url).exit_code == 0
        source = tmp_path / "rows.ndjson"
        source.write_text(long_stream_rows(SNAPSHOT_EVERY + 1))
        as_clerk = pg_schema.url.replace("postgres@", f"{clerk}@", 1)
        imported = invoke("import", source, "-q", json=False, db=as_clerk)
        assert imported.exit_code == 0, imported.stderr
        assert pg_schema.sql("SELECT version FROM snapshots") == [(SNAPSHOT_EVERY + 1,)]
    finally:
        with admin_connection() as conn:
            conn.execute(f'DROP OWNED BY "{clerk}"')
            conn.execute(f'DROP ROLE "{clerk}"')


def test_a_command_that_crosses_the_snapshot_point_writes_it_with_its_append(invoke, pg_schema: PgSchema, tmp_path):
    source = tmp_path / "rows.ndjson"
    source.write_text(long_stream_rows(SNAPSHOT_EVERY - 1))  # one flush below COPY's size: the append function
    assert invoke("import", source, "-q", json=False, db=pg_schema.url).exit_code == 0
    assert pg_schema.sql("SELECT count(*) FROM snapshots") == [(0,)]
    added = data(invoke("add", "HOT", "1", db=pg_schema.url))
    assert added["version"] == SNAPSHOT_EVERY
    [(version, state)] = pg_schema.sql("SELECT version, state FROM snapshots")
    assert version == SNAPSHOT_EVERY and json.loads(state)["on_hand"] == added["on_hand"]
    assert data(invoke("rebuild-projections", "--check", db=pg_schema.url))["ok"] is True
