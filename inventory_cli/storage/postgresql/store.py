"""PostgresEventStore: the storage port on a PostgreSQL server, and opening it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from inventory_cli.storage.empty import EmptyStore
from inventory_cli.storage.errors import StorageError, TargetNotEmpty
from inventory_cli.storage.port import RecordedEvent, VerifyReport

from inventory_cli.storage.postgresql import connection
from inventory_cli.storage.postgresql.log import EventLog
from inventory_cli.storage.postgresql.overview import Overview
from inventory_cli.storage.postgresql.projections import ProjectionQueries
from inventory_cli.storage.postgresql.reports import Reports

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")


class PostgresEventStore(EventLog, ProjectionQueries, Overview, Reports):
    """The PostgreSQL implementation of the storage port (storage/port.py)."""

    def __init__(
        self, conn: psycopg.Connection, url: str, busy_timeout: float, *, tables_pending: bool = False
    ) -> None:
        self.conn = conn
        self.url = url
        self.location = connection.redacted(url)
        self.busy_timeout = busy_timeout
        # True until a write commits the tables it created (or upgraded) in its own transaction.
        self.tables_pending = tables_pending
        self._init_log()

    def close(self) -> None:
        self.conn.close()

    def run_read(self, query: Callable[[PostgresEventStore], T]) -> T:
        """``query(self)``, once more on a new connection if the connection was lost (a read
        is safe to repeat); the server's errors become the port's."""
        import psycopg

        try:
            return query(self)
        except psycopg.Error as error:
            if not connection.is_lost_connection(error, self.conn):
                raise connection.mapped(error, self.url) from None
            lost = error
        self.conn.close()
        self.conn = connection.reconnect(self.url, self.busy_timeout, lost)
        try:
            return query(self)
        except psycopg.Error as error:
            raise connection.mapped(error, self.url) from None

    def verify(self, anchor: tuple[int, str] | None = None) -> VerifyReport:
        return VerifyReport(self.verify_chain(anchor), self.check_projections())

    def restore(self, events: Iterable[RecordedEvent]) -> int:
        """Load an exported log into this empty database; the number of events.

        Raises TargetNotEmpty if it has events; whatever ``events`` raises rolls it all back.
        """
        from inventory_cli.storage.postgresql.restore import NotEmpty, restore_log

        try:
            count = restore_log(self.conn, self.url, events, create_tables=self.tables_pending)
            self.tables_pending = False
            return count
        except NotEmpty:
            raise TargetNotEmpty(
                f"The database at {self.location} already has events; restore loads into an empty "
                "one only."
            ) from None


def open_store(
    url: str, *, create: bool, busy_timeout: float = 30.0, defer_tables: bool = False
) -> PostgresEventStore | EmptyStore:
    """Connect to the server at ``url`` and check (or, with ``create``, make) the schema.

    A schema with none of our tables, opened with ``create`` false, is an EmptyStore:
    a query on a database that does not exist yet answers with nothing and creates
    nothing. With ``defer_tables`` the tables are made in the first write's (or the
    restore's) own transaction, so that a refused one leaves none behind; until then
    only writes may be called. Raises StorageError for a schema that is not ours or is
    too new, and StorageBusy when the server stays unreachable for ``busy_timeout`` seconds.
    """
    import psycopg

    conn = connection.connect(url, busy_timeout)
    try:
        state = connection.schema_state(conn, url)
        if state == "empty" and not create:
            conn.close()
            return EmptyStore(connection.redacted(url))
        if state != "current" and not (create and defer_tables):
            connection.migrate(conn, url)
    except psycopg.Error as error:
        conn.close()
        raise connection.mapped(error, url) from None
    except BaseException:
        conn.close()
        raise
    return PostgresEventStore(conn, url, busy_timeout, tables_pending=state != "current")
