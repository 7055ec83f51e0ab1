"""Looking after the database: rebuild-projections, backup."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from inventory_cli.cli.boundary import EXIT_REFUSED, UsageProblem, fail, guarded
from inventory_cli.cli.context import settings_of
from inventory_cli.cli.options import Json

commands = typer.Typer()


@commands.command("rebuild-projections", epilog="Example: inventory rebuild-projections --check --json")
@guarded
def rebuild_projections(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option("--check", help="Only compare the projections with the log; exit 1 on any difference.")] = False,
    as_json: Json = False,
) -> None:
    """Rebuild every projection from the log (safe to run from cron while people work)."""
    from inventory_cli.cli import render

    started = time.perf_counter()
    store = settings_of(ctx).open(create=False)
    try:
        report = store.check_projections() if check else store.rebuild_projections()
    finally:
        store.close()
    events, streams, differences = report.events, report.streams, report.differences
    document: dict = {"events": events, "streams": streams, "seconds": round(time.perf_counter() - started, 3)}
    if check:
        document["ok"] = not differences
        document["differences"] = differences
    if as_json:
        render.print_json(document)
    elif check:
        render.print_message(
            f"Projections match the log ({events} events, {streams} streams)." if not differences
            else f"{render.plural(len(differences), 'projection row')} "
                 f"{'differs' if len(differences) == 1 else 'differ'} from the log; run "
                 "`inventory rebuild-projections` to rebuild them."
        )
    else:
        render.print_message(f"Rebuilt the projections from {events} events over {streams} streams "
                             f"in {document['seconds']} s.")
    if differences:
        raise typer.Exit(EXIT_REFUSED)


@commands.command(epilog="Example: inventory backup /mnt/usb/shop-2026-12-05.db\n\n"
                  "A single file that needs no -wal beside it; copying the database with cp "
                  "while a -wal exists is not a backup.")
@guarded
def backup(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(metavar="PATH", help="The new file to write (an existing one is refused).", show_default=False)],
    as_json: Json = False,
) -> None:
    """Write a consistent copy of the database to a new file, while others keep working."""
    from inventory_cli.cli import render
    from inventory_cli.storage.sqlite.backup import BackupRefused, back_up

    settings = settings_of(ctx)
    if settings.is_postgres:
        raise UsageProblem(
            "backup copies a SQLite file. On a PostgreSQL server use pg_dump, or "
            "`inventory export > FILE` as the logical backup (docs/postgresql.md)."
        )
    if not path:
        raise UsageProblem("Give the backup's file name: inventory backup PATH.")
    try:
        report = back_up(settings.db, path, busy_timeout=settings.busy_timeout())
    except BackupRefused as refusal:
        fail(str(refusal), EXIT_REFUSED)
    if as_json:
        render.print_json(report._asdict())
    else:
        render.print_message(
            f"Backed up {render.plural(report.events, 'event')} to {report.path} "
            f"({report.size:,} bytes; head {report.head_position}:{report.head_hash})."
        )


def register(app: typer.Typer) -> None:
    """Add rebuild-projections and backup to the app."""
    app.registered_commands.extend(commands.registered_commands)
