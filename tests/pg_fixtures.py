"""PostgreSQL for tests: each test gets a schema of its own on the local server, dropped after.

The server is part of the test environment (CI starts it, see .ci/run): if it
does not answer, these tests fail; they never skip.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

PG_SERVER = os.environ.get("INVENTORY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def schema_url(schema: str, base: str = PG_SERVER) -> str:
    """The URL whose first search_path schema is ``schema``."""
    return f"{base}?options=-csearch_path%3D{schema}"


def admin_connection():
    import psycopg

    try:
        return psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(
            f"The test PostgreSQL server at {PG_SERVER} does not answer ({error}). Start it: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )


class PgSchema:
    """A fresh schema: ``url`` points the tool at it; ``sql`` runs a statement in it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.url = schema_url(name)

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        with admin_connection() as conn:
            conn.execute(f'SET search_path TO "{self.name}"')
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []


@contextlib.contextmanager
def fresh_schema() -> Iterator[PgSchema]:
    """A new, empty schema, dropped (with everything in it) on leaving."""
    name = "t_" + uuid.uuid4().hex[:12]
    with admin_connection() as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield PgSchema(name)
    finally:
        with admin_connection() as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def pg_schema() -> Iterator[PgSchema]:
    with fresh_schema() as schema:
        yield schema


@pytest.fixture
def pg_url(pg_schema: PgSchema) -> str:
    return pg_schema.url
