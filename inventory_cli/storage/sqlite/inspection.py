"""Looking at a database file before SQLite may change it.

SQLite changes a file as soon as a connection that may write opens it: a ``-wal``
beside it is replayed and checkpointed into it, whoever wrote that ``-wal``. So
the path is first inspected without changing anything: what is there (a symlink
loop, a FIFO, a device or a directory is refused at once, without opening it for
reading), the file's header, and, when a ``-wal`` lies beside it that no
connection has open, whether the file with that ``-wal`` still continues the log
the file alone holds. Only then is the file opened for writing.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from typing import Literal, NamedTuple

from inventory_cli.storage.errors import StorageError
from inventory_cli.storage.sqlite.schema import APPLICATION_ID as _APPLICATION_ID

SQLITE_HEADER = b"SQLite format 3\x00"
_LEAF_TABLE_PAGE = 0x0D
_WAL_HEADER_SIZE = 32
_SHM_DEAD_MAN_SWITCH = 128  # the -shm byte every open connection holds a read lock on

Kind = Literal["missing", "present"]


def inspect_database_path(location: str, *, create: bool) -> Kind:
    """What is at a database path, refusing (StorageError) whatever is not a database
    file that may be ours. Nothing is created or changed."""
    try:
        info = os.stat(location)
    except FileNotFoundError:
        if create and _has_frames(f"{location}-wal"):
            raise StorageError(
                f"There is no database at {location}, but a {location}-wal file lies there, "
                "left by a database that was moved or deleted. Move it aside before the first "
                "write, or it would be read into the new database; it was left untouched."
            ) from None
        return "missing"
    except OSError as error:
        raise StorageError(_unreachable(location, error)) from None
    if stat.S_ISDIR(info.st_mode):
        raise StorageError(f"{location} is a directory, not a database file. Give a file path with --db.")
    if not stat.S_ISREG(info.st_mode):
        raise StorageError(
            f"{location} is not a regular file (it is a {_kind(info.st_mode)}); point --db at a "
            "database file. Nothing was read from it or written to it."
        )
    head = _first_bytes(location)
    if head and not head.startswith(SQLITE_HEADER):
        raise StorageError(
            f"{location} is not an SQLite database. Check the --db path or INVENTORY_DB; "
            "the file was left untouched."
        )
    if _has_frames(f"{location}-wal") and not _open_elsewhere(location):
        _check_wal_belongs(location)
    elif _foreign(head):
        raise StorageError(_foreign_message(location))
    return "present"


def _unreachable(location: str, error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return (f"{location} is a symbolic link that leads back to itself (a loop of symbolic "
                "links); point --db at a database file.")
    return f"Cannot read {location}: {error.strerror}."


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def _first_bytes(location: str) -> bytes:
    """The header and page 1's b-tree header; O_NONBLOCK so that a FIFO swapped in
    after the stat cannot make the open wait for a writer."""
    try:
        fd = os.open(location, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as error:
        raise StorageError(_unreachable(location, error)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StorageError(f"{location} is not a regular file; point --db at a database file.")
        return os.read(fd, 108)
    except OSError as error:
        raise StorageError(_unreachable(location, error)) from None
    finally:
        os.close(fd)


def _foreign(head: bytes) -> bool:
    """True when the header shows another application's database: an application id
    not ours, or tables without ours. (A short header is left to SQLite to judge.)"""
    if len(head) < 108:
        return False
    application_id = int.from_bytes(head[68:72], "big")
    if application_id == _APPLICATION_ID:
        return False
    no_tables = head[100] == _LEAF_TABLE_PAGE and int.from_bytes(head[103:105], "big") == 0
    return application_id != 0 or not no_tables


def _foreign_message(location: str) -> str:
    return (
        f"The database {location} belongs to another application "
        "(it has tables but not inventory's schema). Use another --db path; "
        "the file was left untouched."
    )


def _has_frames(wal: str) -> bool:
    try:
        return os.path.getsize(wal) > _WAL_HEADER_SIZE
    except OSError:
        return False


def _open_elsewhere(location: str) -> bool:
    """True when some connection has the database open (its -wal is then in use, not
    left over), or when that cannot be told on this system.

    Every open connection holds a POSIX read lock on byte 128 of the -shm. Linux
    lists the locks in /proc/locks, which is read without opening the -shm: closing
    any descriptor of a file drops all of this process's POSIX locks on it, those of
    SQLite connections the same process may hold included. Elsewhere the lock is
    probed through a descriptor of our own (safe in the one-command CLI process).
    """
    shm = f"{location}-shm"
    try:
        info = os.stat(shm)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    listed = _listed_lock(info)
    return _probed_lock(shm) if listed is None else listed


def _listed_lock(info: os.stat_result) -> bool | None:
    """Whether /proc/locks shows a lock over the dead-man-switch byte (None: no such list)."""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as listing:
            lines = listing.read().splitlines()
    except OSError:
        return None
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in lines:
        fields = line.split()
        if device not in fields:
            continue
        at = fields.index(device)
        try:
            start, end = fields[at + 1:at + 3]
            if int(start) <= _SHM_DEAD_MAN_SWITCH and (end == "EOF" or _SHM_DEAD_MAN_SWITCH <= int(end)):
                return True
        except ValueError:  # a line in a form this code does not know: do not guess
            return None
    return False


def _probed_lock(shm: str) -> bool:
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fd = os.open(shm, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DEAD_MAN_SWITCH)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _SHM_DEAD_MAN_SWITCH)
        return False
    finally:
        os.close(fd)


class _View(NamedTuple):
    application_id: int
    tables: int
    head: tuple[int, str, str, str] | None  # position, type, data, recorded_at of the last event


def _uri(location: str, parameters: str) -> str:
    from urllib.parse import quote  # only on this rare path

    return f"file:{quote(os.path.abspath(location))}?{parameters}"


def _view(location: str, parameters: str) -> _View:
    """The file read through SQLite without writing: ``immutable=1`` reads the file alone
    (its -wal ignored), ``mode=ro`` the file with its -wal applied in memory only."""
    conn = sqlite3.connect(_uri(location, parameters), uri=True)
    try:
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        head = None
        if application_id == _APPLICATION_ID and tables:
            head = conn.execute("SELECT position, type, data, recorded_at FROM events "
                                "ORDER BY position DESC LIMIT 1").fetchone()
        return _View(application_id, tables, head)
    finally:
        conn.close()


def _check_wal_belongs(location: str) -> None:
    """Refuse a -wal that does not continue the database beside it.

    A -wal no connection has open is replayed into the file at the next open. The
    one a crash leaves only adds to the log the file holds; one left by another
    database (a file copied in without its own -wal) replaces pages at random.
    """
    try:
        alone = _view(location, "immutable=1")
    except sqlite3.DatabaseError:
        alone = None
    if alone is not None and alone.application_id != _APPLICATION_ID and alone.tables:
        raise StorageError(_foreign_message(location))  # whatever the -wal would make of it
    try:
        combined = _view(location, "mode=ro")
        continues = _continues(location, alone, combined)
    except sqlite3.DatabaseError as error:
        code = getattr(error, "sqlite_errorcode", 0) & 0xFF
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return  # another connection is at work on the pair: its -wal is in use
        if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM,
                    sqlite3.SQLITE_IOERR):
            raise StorageError(
                f"The database {location} has a -wal file beside it, left by a connection that "
                f"did not close, and SQLite cannot read the two together here ({error}). Open it "
                "once where its folder can be written; both were left untouched."
            ) from None
        raise StorageError(_mismatch_message(location, f"with it the file reads as damaged: {error}")) from None
    if combined.application_id != _APPLICATION_ID and combined.tables:
        raise StorageError(_foreign_message(location))
    if not continues:
        raise StorageError(_mismatch_message(
            location, "the file's own last event is not in the log the two make together"))


def _continues(location: str, alone: _View | None, combined: _View) -> bool:
    if alone is None or alone.head is None:
        return True  # nothing in the file alone that the -wal could have replaced
    if combined.application_id != _APPLICATION_ID or combined.head is None:
        return False
    conn = sqlite3.connect(_uri(location, "mode=ro"), uri=True)
    try:
        row = conn.execute(
            "SELECT position, type, data, recorded_at FROM events WHERE position = ?", (alone.head[0],)
        ).fetchone()
    finally:
        conn.close()
    return row == alone.head


def _mismatch_message(location: str, why: str) -> str:
    return (
        f"The database {location} and the {location}-wal beside it do not belong together "
        f"({why}): the -wal was probably left by another database, or the file was copied "
        "in without its own -wal. Both were left untouched. If the file alone is the "
        "database you want, move the -wal (and -shm) aside; else restore from a backup "
        "(`inventory backup` makes one)."
    )
