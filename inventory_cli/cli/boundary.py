"""The single place where errors become exit codes and one-line messages on stderr."""

from __future__ import annotations

import functools
import os
import sqlite3
import sys
import warnings
from collections.abc import Callable
from typing import NoReturn, TypeVar

import typer

from inventory_cli.application.errors import RetriesExhausted
from inventory_cli.domain.errors import InvalidValue, RuleViolation
from inventory_cli.storage.errors import ConcurrencyConflict, ConnectionLost, StorageBusy, StorageError

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_BAD_DATA = 65
EXIT_INTERNAL = 70
EXIT_UNUSABLE = 74
EXIT_TEMPORARY = 75

F = TypeVar("F", bound=Callable[..., object])


class UsageProblem(Exception):
    """A usage error found after parsing (exit 2)."""


def fail(message: str, code: int) -> NoReturn:
    from inventory_cli.cli.render import visible  # messages may quote what a file holds

    sys.stderr.write(f"inventory: {visible(message)}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


def flush_stdout() -> None:
    """Flush stdout before the process ends, quietly if its reader has gone."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        from inventory_cli.cli.render import reader_left

        reader_left()
    except OSError as error:  # a full disk under `> file`: the output is incomplete
        sys.stderr.write(f"inventory: the output could not be written: {error.strerror}.\n")
        raise SystemExit(EXIT_UNUSABLE) from None


def exit_code_for(error: BaseException) -> tuple[int, str]:
    """The exit code and message for an error, or (EXIT_INTERNAL, …) for a bug."""
    if isinstance(error, KeyboardInterrupt):
        return 130, "interrupted; the unfinished command (or import batch) was not written."
    if isinstance(error, (InvalidValue, UsageProblem)):
        return EXIT_USAGE, f"{error} Nothing was written."
    if isinstance(error, RuleViolation):
        return EXIT_REFUSED, f"{error} Nothing was written."
    if isinstance(error, StorageError):
        return EXIT_UNUSABLE, str(error)
    if isinstance(error, ConnectionLost):
        return EXIT_TEMPORARY, f"{error}. Nothing was written; try again in a moment, or raise INVENTORY_BUSY_TIMEOUT."
    # A conflict that reaches here was not retried (an import): temporary all the same.
    if isinstance(error, (StorageBusy, RetriesExhausted, ConcurrencyConflict)):
        return EXIT_TEMPORARY, _busy_message(error)
    if isinstance(error, sqlite3.DatabaseError):
        code = getattr(error, "sqlite_errorcode", 0) & 0xFF
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return EXIT_TEMPORARY, _busy_message(error)
        if str(error).startswith("Could not decode to UTF-8"):
            return EXIT_UNUSABLE, (
                "The database holds text that is not UTF-8, which inventory never writes: the "
                "file was changed behind its back. Run `inventory verify` to find the first "
                "changed event; nothing was written."
            )
        if code == sqlite3.SQLITE_READONLY:
            return EXIT_UNUSABLE, (
                "The database is read-only: it can be queried but not written. "
                "Nothing was written; copy it somewhere writable to change it."
            )
        return EXIT_UNUSABLE, (
            f"The database can't be used: {error}. Check the file and free disk space; "
            "nothing was written."
        )
    if isinstance(error, OSError):
        return EXIT_UNUSABLE, f"The database can't be used: {error}. Nothing was written."
    return EXIT_INTERNAL, (
        f"unexpected error: {error!r}. This is a bug; please report it "
        "(set INVENTORY_DEBUG=1 to see the traceback)."
    )


def _busy_message(error: BaseException) -> str:
    return (
        f"The database stayed busy ({error}). Nothing was written; try again in a moment, "
        "or raise INVENTORY_BUSY_TIMEOUT."
    )


def _show_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """A warning of the tool (a clock behind the log) as one line on stderr."""
    from inventory_cli.cli.render import visible

    sys.stderr.write(f"inventory: warning: {visible(str(message))}\n")


def guarded(function: F | None = None, *, query: bool = False) -> F:
    """Run a command body, turning every error into a message and an exit code.

    ``@guarded(query=True)`` marks a command that writes nothing: its output goes
    through the pager at a terminal, and interrupted, it ends with exit 130 without a
    word about what was not written.
    """
    if function is None:
        return functools.partial(guarded, query=query)  # type: ignore[return-value]

    @functools.wraps(function)
    def wrapper(*args: object, **kwargs: object) -> object:
        warnings.showwarning = _show_warning
        try:
            if query and sys.stdout.isatty():
                from inventory_cli.cli.pager import paging

                settings = getattr(kwargs.get("ctx"), "obj", None)
                with paging(enabled=getattr(settings, "pager", True)):
                    return function(*args, **kwargs)
            return function(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except BrokenPipeError:
            # Only stdout is a pipe we write to; its reader left (`| head`), which is
            # not an error, and a write that got this far was committed.
            from inventory_cli.cli.render import reader_left

            reader_left()
            raise typer.Exit(0) from None
        except KeyboardInterrupt as error:
            if query:
                raise typer.Exit(130) from None
            fail(exit_code_for(error)[1], 130)
        except Exception as error:
            if os.environ.get("INVENTORY_DEBUG", "").lower() in ("1", "true", "yes"):
                raise
            code, message = exit_code_for(error)
            fail(message, code)

    return wrapper  # type: ignore[return-value]
