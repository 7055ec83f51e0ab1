"""The three roles of docs/postgresql.md: an owner migrates, a clerk writes without DDL
rights, a reader reads and is refused every write (exit 74 in the CLI: StorageError)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from inventory_cli.application.commands import AddStock
from inventory_cli.application.handlers import run_command
from inventory_cli.storage.errors import StorageError
from inventory_cli.storage.postgresql.store import open_store
from pg_fixtures import PG_SERVER, PgSchema, admin_connection, pg_schema, pg_url  # noqa: F401  (fixtures)

# The GRANTs docs/postgresql.md gives, for a schema "{s}" and roles "{clerk}", "{reader}".
CLERK_GRANTS = """
GRANT USAGE ON SCHEMA "{s}" TO "{clerk}";
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA "{s}" TO "{clerk}";
GRANT UPDATE ON "{s}".stock, "{s}".reservations, "{s}".products, "{s}".transfers, "{s}".snapshots TO "{clerk}";
GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{s}" TO "{clerk}";
"""
READER_GRANTS = """
GRANT USAGE ON SCHEMA "{s}" TO "{reader}";
GRANT SELECT ON ALL TABLES IN SCHEMA "{s}" TO "{reader}";
"""


@pytest.fixture
def roles(pg_schema: PgSchema) -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    names = {"clerk": f"clerk_{suffix}", "reader": f"reader_{suffix}"}
    with admin_connection() as conn:
        for name in names.values():
            conn.execute(f'CREATE ROLE "{name}" LOGIN')
    try:
        yield names
    finally:
        with admin_connection() as conn:
            for name in names.values():
                conn.execute(f'DROP OWNED BY "{name}"')
                conn.execute(f'DROP ROLE "{name}"')


def _as(role: str, schema: PgSchema) -> str:
    return schema.url.replace("postgres@", f"{role}@", 1)


def test_a_clerk_without_ddl_rights_is_told_to_migrate_then_writes(pg_schema: PgSchema, roles) -> None:
    with admin_connection() as conn:
        conn.execute(f'GRANT USAGE ON SCHEMA "{pg_schema.name}" TO "{roles["clerk"]}"')
    with pytest.raises(StorageError, match="inventory migrate"):
        open_store(_as(roles["clerk"], pg_schema), create=True)
    open_store(pg_schema.url, create=True).close()  # the owner migrates
    with admin_connection() as conn:
        conn.execute(CLERK_GRANTS.format(s=pg_schema.name, clerk=roles["clerk"]))
    clerk = open_store(_as(roles["clerk"], pg_schema), create=True)
    assert run_command(clerk, AddStock("main", "A", 3)).line.on_hand == 3
    assert run_command(clerk, AddStock("main", "A", 2, key="again")).line.on_hand == 5
    clerk.close()


def test_a_reader_reads_and_its_write_is_refused_naming_the_privilege(pg_schema: PgSchema, roles) -> None:
    owner = open_store(pg_schema.url, create=True)
    run_command(owner, AddStock("main", "A", 3))
    with admin_connection() as conn:
        conn.execute(READER_GRANTS.format(s=pg_schema.name, reader=roles["reader"]))
    reader = open_store(_as(roles["reader"], pg_schema), create=False)
    assert [line.on_hand for line in reader.stock_lines(None, None)] == [3]
    assert reader.verify_chain().events == 1
    with pytest.raises(StorageError, match="INSERT"):
        run_command(reader, AddStock("main", "A", 1))
    assert owner.head_position() == 1
    reader.close()
    owner.close()
