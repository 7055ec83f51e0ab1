"""A consistent copy of a database in one new file, taken while others keep writing.

``VACUUM INTO`` reads the whole database in one read transaction (in WAL mode that
does not stop writers) and writes a compact copy that needs no ``-wal``. The copy
is written under a temporary name beside the target and linked into place only
when it is complete and on disk, so a target that exists, or appears meanwhile, is
never overwritten, and an interrupted backup leaves no half-written file under
the target's name.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from typing import NamedTuple
from urllib.parse import quote

from inventory_cli.storage.errors import StorageError
from inventory_cli.storage.sqlite.connection import open_store
from inventory_cli.storage.sqlite.store import SqliteEventStore


_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class BackupRefused(Exception):
    """The backup was refused (exit 1): its target exists, or there is nothing to copy."""


class BackupReport(NamedTuple):
    path: str
    events: int
    head_position: int
    head_hash: str | None
    size: int


def back_up(location: str, target: str, *, busy_timeout: float) -> BackupReport:
    """Copy the database at ``location`` into the new file ``target``."""
    if os.path.lexists(target):
        raise BackupRefused(f"{target} already exists; give the backup a new file name. "
                            "It was left as it was.")
    store = open_store(location, create=False, busy_timeout=busy_timeout)
    try:
        if not isinstance(store, SqliteEventStore):
            raise BackupRefused(f"There is no database at {location} yet: nothing to back up.")
        folder = os.path.dirname(os.path.abspath(target))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            raise StorageError(f"Cannot create the folder for {target}: {error.strerror}.") from None
        partial = os.path.join(folder, f".{os.path.basename(target)}.partial-{secrets.token_hex(6)}")
        try:
            store.conn.execute("VACUUM INTO ?", (partial,))
            report = _finish(partial, target)
        except (sqlite3.Error, OSError) as error:
            if isinstance(error, sqlite3.Error) and error.sqlite_errorcode & 0xFF in _BUSY:
                raise
            raise StorageError(
                f"Cannot write the backup {target} ({getattr(error, 'strerror', None) or error}). "
                "Check that folder's free space and permissions; nothing was left there."
            ) from None
        finally:
            _remove(partial)
    finally:
        store.close()
    _sync_folder(folder)
    return report


def _finish(partial: str, target: str) -> BackupReport:
    """Make the copy a WAL database like the original, sync it, read its head, and link
    it in under the target's name (which must still be free)."""
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # closing the only connection removes the -wal
    finally:
        conn.close()
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    conn = sqlite3.connect(f"file:{quote(partial)}?immutable=1", uri=True)
    try:
        events, = conn.execute("SELECT count(*) FROM events").fetchone()
        head = conn.execute("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    try:
        os.link(partial, target)
    except FileExistsError:
        raise BackupRefused(f"{target} appeared while the backup was written; it was left as "
                            "it was. Give the backup a new file name.") from None
    except OSError:  # a filesystem without hard links: the target was free a moment ago
        if os.path.lexists(target):
            raise BackupRefused(f"{target} already exists; it was left as it was.") from None
        os.rename(partial, target)
    head_position, head_hash = head if head else (0, None)
    return BackupReport(target, events, head_position, head_hash, os.path.getsize(target))


def _remove(path: str) -> None:
    for leftover in (path, f"{path}-wal", f"{path}-shm"):
        try:
            os.unlink(leftover)
        except FileNotFoundError:
            pass


def _sync_folder(folder: str) -> None:
    """Make the new name durable (the copy itself is synced before it is linked)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
