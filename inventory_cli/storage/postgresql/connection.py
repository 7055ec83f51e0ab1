"""Connecting to PostgreSQL: start-up settings, retries, error mapping, schema state.

A server that cannot be reached is temporary (retried until the busy timeout,
then StorageBusy: exit 75); a refused login, an unknown database or a missing
privilege is not (StorageError: exit 74). Passwords never reach a message.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from inventory_cli.storage.errors import ConcurrencyConflict, ConnectionLost, StorageBusy, StorageError
from inventory_cli.storage.postgresql import schema

if TYPE_CHECKING:
    import psycopg

URL_SCHEMES = ("postgresql://", "postgres://")
APPLICATION_NAME = "inventory"
# SQLSTATEs a writer retries with the same idempotency key: serialization failure,
# deadlock, and a unique violation (another writer took the version or the key first).
RETRY_STATES = {"40001", "40P01", "23505"}
# Connection-time SQLSTATEs that pass: the server is starting, shutting down or full.
TEMPORARY_CONNECT_STATES = {"57P03", "53300", "57P01", "57P02"}
# A session ended by the server (pg_terminate_backend, a shutdown, a crash of another
# backend); class 08 is a connection exception.
LOST_STATES = {"57P01", "57P02", "57P03"}


def is_postgres_url(location: str) -> bool:
    return location.startswith(URL_SCHEMES)


def redacted(url: str) -> str:
    """The URL without its password (in the user part or as a query parameter)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "the PostgreSQL URL"
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = "&".join(
        item for item in parts.query.split("&") if not item.lower().startswith(("password=", "sslpassword="))
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def startup_options(url: str, busy_timeout: float) -> dict[str, str]:
    """Connection keywords: the URL's own ``options`` with our session settings appended.

    Sent in the start-up packet, they cost no round trip.
    """
    from psycopg.conninfo import conninfo_to_dict

    given = conninfo_to_dict(url).get("options") or ""
    wait_ms = max(1, int(busy_timeout * 1000))  # 0 would mean "wait forever"
    ours = (
        f"-c lock_timeout={wait_ms} -c statement_timeout=600000"
        " -c idle_in_transaction_session_timeout=60000"
    )
    return {
        "options": f"{given} {ours}".strip(),
        "application_name": APPLICATION_NAME,
        "connect_timeout": str(max(2, min(10, int(busy_timeout) or 2))),
    }


def connect(url: str, busy_timeout: float) -> psycopg.Connection:
    """An autocommit connection (transactions are explicit), retried while unreachable."""
    import psycopg

    keywords = startup_options(url, busy_timeout)
    deadline = time.monotonic() + busy_timeout
    delay = 0.05
    while True:
        try:
            return psycopg.connect(url, autocommit=True, prepare_threshold=None, **keywords)
        except psycopg.OperationalError as error:
            refused = _refusal(error)
            if refused is not None:
                raise mapped(refused, url) from None
            if time.monotonic() + delay > deadline:
                raise StorageBusy(
                    f"The PostgreSQL server at {redacted(url)} could not be reached "
                    f"({_first_line(error)})"
                ) from None
            time.sleep(delay)
            delay = min(1.0, delay * 2)
        except psycopg.Error as error:
            raise mapped(error, url) from None


class _Refused(Exception):
    """A server's answer to a connection attempt, with the SQLSTATE libpq does not expose."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


# The server's FATAL messages at start-up that are not worth waiting for (libpq gives
# connection failures no SQLSTATE: the message is all there is).
_REFUSALS = (
    ("does not exist", "database", "3D000"),
    ("authentication failed", "", "28P01"),
    ("pg_hba.conf", "", "28000"),
    ("does not exist", "role", "28000"),
    ("permission denied", "", "42501"),
)
_PASSING = ("starting up", "shutting down", "too many", "recovery mode", "not yet accepting")


def _refusal(error: BaseException) -> BaseException | None:
    """The error when the server refused the connection for good, None when it may pass."""
    state = getattr(error, "sqlstate", None)
    if state is not None:
        return None if state in TEMPORARY_CONNECT_STATES else error
    text = str(error)
    if "FATAL:" not in text or any(words in text for words in _PASSING):
        return None
    for words, subject, code in _REFUSALS:
        if words in text and subject in text:
            return _Refused(_first_line(error), code)
    return _Refused(_first_line(error), "08004")


def _first_line(error: BaseException) -> str:
    """The server's own message (not the SQL quoted after it), or libpq's last line."""
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:
        return primary
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    for line in lines:
        if "FATAL:" in line:
            return line.split("FATAL:", 1)[1].strip()
    # libpq's first line says what failed ("consuming input failed: server closed the
    # connection unexpectedly"); the lines after it are hints.
    return re.sub(r"^[a-z ]+ failed: ", "", lines[0]) if lines else type(error).__name__


def is_lost_connection(error: BaseException, conn: psycopg.Connection | None) -> bool:
    """True when ``error`` ended the session: the statement may be repeated on a new one."""
    import psycopg

    state = getattr(error, "sqlstate", None)
    if state is None:
        if isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError)):
            return True
    elif state in LOST_STATES or state.startswith("08"):
        return True
    return conn is not None and conn.closed


def reconnect(url: str, busy_timeout: float, lost: BaseException) -> psycopg.Connection:
    """A new connection after ``lost`` ended the last one; ConnectionLost, saying both, when
    the server stays unreachable for the busy timeout."""
    try:
        return connect(url, busy_timeout)
    except StorageBusy as error:
        why = str(error).rpartition(" could not be reached ")[2]  # "(connection refused …)"
        raise ConnectionLost(
            f"The connection to the PostgreSQL server at {redacted(url)} was lost ({_first_line(lost)}), "
            f"and the server could not be reached again within {busy_timeout:g} s {why}"
        ) from None


def close_if_lost(conn: psycopg.Connection, error: BaseException) -> None:
    """Close a connection that ``error`` says is lost, so that the next use makes a new one."""
    if is_lost_connection(error, conn):
        try:
            conn.close()
        except Exception:  # noqa: BLE001 (already broken)
            pass


def rollback_quietly(conn: psycopg.Connection) -> None:
    """End a failed transaction; a connection that cannot even do that is closed."""
    import psycopg

    if conn.closed:
        return
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
    except psycopg.Error:
        conn.close()


def mapped(error: BaseException, url: str, *, writing: bool = False) -> Exception:
    """The storage error a psycopg error means for the user."""
    state = getattr(error, "sqlstate", None)
    where = redacted(url)
    if state in RETRY_STATES:
        return ConcurrencyConflict(f"another writer got there first ({_first_line(error)})")
    if state in ("55P03", "57014"):  # lock_timeout, statement_timeout
        return StorageBusy(f"The database at {where} stayed busy ({_first_line(error)})")
    if state in ("28P01", "28000"):
        return StorageError(
            f"The PostgreSQL server at {where} refused the login ({_first_line(error)}). "
            "Check the user, the password (.pgpass or PGPASSWORD) and pg_hba.conf; nothing was written."
        )
    if state == "3D000":
        return StorageError(
            f"The database in {where} does not exist on that server ({_first_line(error)}). "
            "Create it (createdb) or fix the URL; nothing was written."
        )
    if state == "42501":
        needed = "INSERT (and UPDATE on the projections)" if writing else "SELECT"
        return StorageError(
            f"The database at {where} refused this command: {_first_line(error)}. It needs the "
            f"{needed} privilege, which this role lacks (see docs/postgresql.md for the clerk "
            "and reader roles); nothing was written."
        )
    if is_lost_connection(error, None):
        if writing:  # retried by the caller with the same idempotency key
            return ConcurrencyConflict(f"the connection was lost before the commit was confirmed ({_first_line(error)})")
        return ConnectionLost(f"The connection to {where} was lost ({_first_line(error)})")
    return StorageError(f"The database at {where} can't be used: {_first_line(error)}. Nothing was written.")


# -- schema state -------------------------------------------------------------------

_PATH = "SELECT current_setting('search_path'), current_user, current_schema()"
# The same, with which of our tables current_schema() holds: one round trip, not two.
_PATH_AND_TABLES = (
    _PATH + ", ARRAY(SELECT c.relname::text FROM pg_class AS c"
    " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relname = ANY(%s))"
)


def first_schema(conn: psycopg.Connection) -> tuple[str, bool]:
    """The first schema named in search_path, and whether it exists."""
    row = conn.execute(_PATH).fetchone()
    assert row is not None
    first = _first_named(row[0], row[1])
    return first, row[2] == first


def _first_named(path: str, user: str) -> str:
    first = _split_path(path)[0] if path.strip() else "public"
    return user if first == "$user" else first


def _split_path(path: str) -> list[str]:
    names, current, quoted = [], "", False
    for char in path:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            names.append(current.strip())
            current = ""
        else:
            current += char
    names.append(current.strip())
    return [name.strip('"') if name.startswith('"') else name for name in names]


def schema_state(conn: psycopg.Connection, url: str) -> str:
    """'empty' (none of our tables), 'current' or 'old'; StorageError for anything else."""
    row = conn.execute(_PATH_AND_TABLES, (list(schema.TABLES),)).fetchone()
    assert row is not None
    path, user, current, tables = row
    name = _first_named(path, user)
    present = set(tables)
    if current != name or not present:  # the first schema named does not exist, or is not ours
        return "empty"
    where = redacted(url)
    if "inventory_schema" not in present:
        raise StorageError(
            f"The schema {name!r} at {where} has tables of another application under inventory's "
            f"names ({', '.join(sorted(present))}). Pick another schema (options=-csearch_path%3DNAME); "
            "it was left untouched."
        )
    row = conn.execute(
        "SELECT version FROM inventory_schema WHERE application = %s", (schema.APPLICATION,)
    ).fetchone()
    if row is None:
        raise StorageError(
            f"The schema {name!r} at {where} belongs to another application. Pick another schema; "
            "it was left untouched."
        )
    version = row[0]
    if version > schema.CURRENT_VERSION:
        raise StorageError(
            f"The schema {name!r} at {where} was written by a newer version of inventory (schema "
            f"{version}, this one knows {schema.CURRENT_VERSION}). Upgrade inventory; it was left untouched."
        )
    return "current" if version == schema.CURRENT_VERSION else "old"


def migrate(conn: psycopg.Connection, url: str) -> bool:
    """Create or upgrade the tables in a transaction of their own; False if they were current."""
    with conn.transaction():
        return create_tables(conn, url)


def begin_with_tables(conn: psycopg.Connection, url: str) -> None:
    """BEGIN, then create or upgrade the tables in that transaction: the first write that
    follows commits them with its events, or its refusal rolls them back with it."""
    import psycopg

    try:
        conn.execute("BEGIN")
        create_tables(conn, url)
    except BaseException as error:
        close_if_lost(conn, error)
        rollback_quietly(conn)
        if isinstance(error, psycopg.Error):
            raise mapped(error, url, writing=True) from None
        raise


def create_tables(conn: psycopg.Connection, url: str) -> bool:
    """Inside the caller's transaction: create or upgrade the tables (DDL is transactional, so
    they vanish if the transaction rolls back); False if they were current already."""
    import psycopg

    name, _ = first_schema(conn)
    try:
        conn.execute(schema.MIGRATION_LOCK_SQL, (name,))
        if not first_schema(conn)[1]:  # looked at under the lock: another writer may have made it
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(name)}")
        state = schema_state(conn, url)  # again, under the lock: another writer may have won
        if state == "current":
            return False
        version = 0
        if state == "old":
            version = conn.execute("SELECT version FROM inventory_schema").fetchone()[0]  # type: ignore[index]
        for script in schema.MIGRATIONS[version:]:
            conn.execute(script)  # type: ignore[arg-type]
        conn.execute(
            "INSERT INTO inventory_schema (application, version) VALUES (%s, %s)"
            " ON CONFLICT (application) DO UPDATE SET version = excluded.version",
            (schema.APPLICATION, schema.CURRENT_VERSION),
        )
    except psycopg.errors.InsufficientPrivilege as error:
        raise StorageError(
            f"The role may not create inventory's tables in schema {name!r} at {redacted(url)} "
            f"({_first_line(error)}): it needs the CREATE privilege on the schema. Run "
            "`inventory migrate` once as the owner role (see docs/postgresql.md); nothing was written."
        ) from None
    except psycopg.Error as error:
        raise mapped(error, url, writing=True) from None
    return True


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def retryable(error: BaseException) -> bool:
    return isinstance(error, (ConcurrencyConflict, StorageBusy))
