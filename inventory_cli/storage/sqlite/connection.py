"""Opening an SQLite file: check that it is ours, initialise or migrate it.

WAL, ``synchronous=FULL`` and ``BEGIN IMMEDIATE`` writers; a file is used only
when it is new, empty or carries our ``application_id`` (see ``schema``). A
database that does not exist, opened only to read, is an ``EmptyStore``.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Literal

from inventory_cli.storage.empty import EmptyStore
from inventory_cli.storage.errors import StorageBusy, StorageError
from inventory_cli.storage.sqlite import schema
from inventory_cli.storage.sqlite.inspection import inspect_database_path
from inventory_cli.storage.sqlite.store import SqliteEventStore

_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
# Failures of the disk or the permissions around a sound file, not of its content.
_ENVIRONMENT_CODES = {
    sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM,
}


def is_busy(error: sqlite3.Error) -> bool:
    return (getattr(error, "sqlite_errorcode", 0) & 0xFF) in _BUSY_CODES


def open_store(
    location: str, *, create: bool, busy_timeout: float = 30.0
) -> SqliteEventStore | EmptyStore:
    """Open the database at ``location`` (a path or a ``file:`` URI).

    A database that does not exist yet (or an empty file), opened with ``create``
    false, is an EmptyStore: every read answers with nothing and nothing is
    created. Raises StorageError for a file that is not ours or not usable.
    """
    is_uri = location.startswith("file:")
    if not is_uri and location != ":memory:":
        _refuse_unclean_read_only(location)
        if inspect_database_path(location, create=create) == "missing":
            if not create:
                return EmptyStore(location)
            try:
                Path(location).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StorageError(f"Cannot create the folder for {location}: {error.strerror}.") from None
        elif _read_only(Path(location)):
            if create:
                raise StorageError(
                    f"The database {location} is read-only (a read-only disk, or a file or "
                    "folder you may not write): it can be queried but not written. Nothing "
                    "was written; copy it somewhere writable to change it."
                )
            return _open_read_only(Path(location), location, busy_timeout)
    try:
        conn = sqlite3.connect(
            location, timeout=busy_timeout, isolation_level=None, uri=is_uri, check_same_thread=False
        )
    except sqlite3.Error as error:
        raise StorageError(f"Cannot open the database {location}: {error}.") from None
    try:
        state = _schema_state(conn, location)
        if state == "empty" and not create:
            conn.close()
            return EmptyStore(location)
        if state != "current":
            _initialise(conn, location)
        conn.execute("PRAGMA synchronous = FULL")
    except BaseException:
        conn.close()
        raise
    return SqliteEventStore(conn, location)


def _read_only(path: Path) -> bool:
    """The file, or its folder (where SQLite keeps the -wal and -shm files), can't be written."""
    return not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK)


def _refuse_unclean_read_only(location: str) -> None:
    """A read-only file whose -wal holds changes can't be read: applying them is a write."""
    try:
        unclean = os.stat(f"{location}-wal").st_size > 0
    except OSError:
        return
    path = Path(location)
    if unclean and path.is_file() and _read_only(path):
        raise StorageError(
            f"The database {location} is read-only and was not closed cleanly ({path.name}-wal "
            "holds changes not yet in it). Open it once where it can be written, or copy it "
            "together with its -wal file; the file was left untouched."
        )


def _open_read_only(path: Path, location: str, busy_timeout: float) -> SqliteEventStore | EmptyStore:
    """A database we may only read (a backup on read-only media, someone else's file),
    closed cleanly. Where SQLite can't keep its shared-memory file beside it, the file
    is read as immutable, which is what a read-only disk is.
    """
    from urllib.parse import quote  # only here: a read-only file is rare

    uri = "file:" + quote(str(path.resolve()))
    for options in ("?mode=ro", "?mode=ro&immutable=1"):
        conn = sqlite3.connect(uri + options, timeout=busy_timeout, isolation_level=None, uri=True,
                               check_same_thread=False)
        try:
            state = _schema_state(conn, location)
        except StorageError:
            conn.close()
            if options.endswith("immutable=1"):
                raise
            continue
        if state == "empty":
            conn.close()
            return EmptyStore(location)
        if state == "old":
            conn.close()
            raise StorageError(
                f"The database {location} is read-only and from an older version of inventory; "
                "it must be upgraded, which writes to it. Copy it somewhere writable first; "
                "the file was left untouched."
            )
        return SqliteEventStore(conn, location)
    raise AssertionError("unreachable")


def _schema_state(conn: sqlite3.Connection, location: str) -> Literal["empty", "old", "current"]:
    """What the file holds: nothing yet, an older schema of ours, or today's."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as error:
        if is_busy(error):
            raise StorageBusy(str(error)) from None
        if (getattr(error, "sqlite_errorcode", 0) & 0xFF) in _ENVIRONMENT_CODES:
            if disk_is_full(location):
                raise StorageError(full_disk_message(location)) from None
            raise StorageError(
                f"The database {location} can't be opened ({error}). Check the free "
                "disk space and the permissions of the file and its folder; the file was "
                "left untouched."
            ) from None
        raise StorageError(
            f"The database {location} is damaged or not a database ({error}). "
            "Restore it from a backup; the file was left untouched."
        ) from None
    if app_id == schema.APPLICATION_ID:
        if version > schema.CURRENT_VERSION:
            raise StorageError(
                f"The database {location} was written by a newer version of inventory "
                f"(schema {version}, this one knows {schema.CURRENT_VERSION}). "
                "Upgrade inventory; the file was left untouched."
            )
        return "current" if version == schema.CURRENT_VERSION else "old"
    if app_id == 0 and objects == 0:  # a user_version alone holds nothing to lose
        return "empty"
    raise StorageError(
        f"The database {location} belongs to another application "
        "(it has tables but not inventory's schema). Use another --db path; "
        "the file was left untouched."
    )


# SQLite needs room for the -shm (32 KiB) and the -wal before it can even read.
_ROOM_NEEDED = 256 * 1024


def disk_is_full(location: str) -> bool:
    """True when the folder of the database has (almost) no free space left: SQLite
    then often says "disk I/O error" (its -shm cannot grow) rather than "full"."""
    try:
        folder = os.statvfs(os.path.dirname(os.path.abspath(location)))
    except (OSError, AttributeError):  # no statvfs on this system
        return False
    return folder.f_bavail * folder.f_frsize < _ROOM_NEEDED


def full_disk_message(location: str) -> str:
    return (f"The disk that holds {location} is full: SQLite has no room for its working "
            "files. Free some disk space and try again; nothing was written and the file was "
            "left untouched.")


def _initialise(conn: sqlite3.Connection, location: str) -> None:
    """Switch to WAL and bring the schema to today's, in one write transaction."""
    mode = _switch_to_wal(conn)
    if mode.lower() != "wal" and location != ":memory:" and not location.startswith("file:"):
        raise StorageError(f"Cannot switch {location} to WAL mode (got {mode}).")
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have initialised the file while we waited.
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if app_id != schema.APPLICATION_ID or version != schema.CURRENT_VERSION:
            schema.migrate(conn, version if app_id == schema.APPLICATION_ID else 0)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """Set WAL mode; two processes creating the same new file may collide here."""
    for attempt in range(50):
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as error:
            if not is_busy(error) or attempt == 49:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")
