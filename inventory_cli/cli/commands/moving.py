"""Setting a database up and moving a log between databases: migrate, restore."""

from __future__ import annotations

from typing import Annotated

import typer

from inventory_cli.cli.boundary import EXIT_BAD_DATA, UsageProblem, fail, guarded
from inventory_cli.cli.context import settings_of
from inventory_cli.cli.options import Json

commands = typer.Typer()


@commands.command("migrate", epilog="Example: inventory --db postgresql://owner@db/inventory migrate")
@guarded
def migrate(ctx: typer.Context, as_json: Json = False) -> None:
    """Create the tables, or upgrade them to this version (for roles without DDL rights)."""
    from inventory_cli.cli import render

    store = settings_of(ctx).open(create=True, tables_now=True)
    try:
        head = store.head_position()
    finally:
        store.close()
    if as_json:
        render.print_json({"ok": True, "events": head})
    else:
        render.print_message(f"The database is ready for this version of inventory ({render.plural(head, 'event')}).")


@commands.command("restore", epilog="Example: inventory --db shop.db export | inventory --db postgresql://clerk@db/inventory restore -")
@guarded
def restore(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="A stream written by `inventory export` (- for stdin).", show_default=False)],
    as_json: Json = False,
) -> None:
    """Load an export into an empty database, keeping every position, time, key and hash."""
    import sys

    from inventory_cli.application.restore import BrokenStream, checked_events
    from inventory_cli.cli import render

    settings = settings_of(ctx)
    try:
        lines = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
    except OSError as error:
        raise UsageProblem(f"Cannot read {source}: {error.strerror}.") from None
    created = settings.is_new()
    try:
        store = settings.open(create=True)
        try:
            count = store.restore(checked_events(lines))
            report = store.verify_chain()
        finally:
            store.close()
    except BrokenStream as error:
        _remove_if_created(settings.db, created)
        fail(str(error), EXIT_BAD_DATA)
    except BaseException:
        _remove_if_created(settings.db, created)
        raise
    finally:
        if lines is not sys.stdin.buffer:
            lines.close()
    document = {"events": count, "head_position": report.head_position, "head_hash": report.head_hash}
    if as_json:
        render.print_json(document)
    else:
        render.print_message(f"Restored {render.plural(count, 'event')}; head {report.head_position}:{report.head_hash}.")


def _remove_if_created(db: str, created: bool) -> None:
    """A refused restore into a new SQLite file leaves no file behind."""
    import os

    if created:
        for path in (db, db + "-wal", db + "-shm"):
            try:
                os.remove(path)
            except OSError:
                pass


def register(app: typer.Typer) -> None:
    """Add migrate and restore to the app."""
    app.registered_commands.extend(commands.registered_commands)
