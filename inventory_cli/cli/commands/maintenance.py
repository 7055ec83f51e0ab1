"""Looking after the database: rebuild-projections, backup, and info (where the data is)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from inventory_cli.cli.boundary import EXIT_REFUSED, UsageProblem, fail, guarded
from inventory_cli.cli.context import read, settings_of
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
    if check:
        report = read(ctx, lambda store: store.check_projections())
    else:
        store = settings_of(ctx).open(create=False)
        try:
            report = store.rebuild_projections()
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
            f"Projections match the log ({render.plural(events, 'event')}, {render.plural(streams, 'stream')})."
            if not differences
            else f"{render.plural(len(differences), 'projection row')} "
                 f"{render.verb(len(differences), 'differs', 'differ')} from the log; run "
                 "`inventory rebuild-projections` to rebuild them."
        )
    else:
        render.print_message(f"Rebuilt the projections from {render.plural(events, 'event')} over "
                             f"{render.plural(streams, 'stream')} in {document['seconds']} s.")
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


@commands.command(epilog="Example: inventory info --json")
@guarded(query=True)
def info(ctx: typer.Context, as_json: Json = False) -> None:
    """Where the data is and what it holds: the database, its schema, events, streams, stores, head."""
    import os

    from inventory_cli.cli import render

    settings = settings_of(ctx)
    summary = read(ctx, lambda store: store.summary())
    backend = "postgresql" if settings.is_postgres else "sqlite"
    document = {"database": _without_password(settings.db), "backend": backend, **summary._asdict()}
    if as_json:
        render.print_json(document)
        return
    path = settings.db[len("file:"):].split("?")[0] if settings.db.startswith("file:") else settings.db
    if settings.is_postgres:
        size = ""
    elif os.path.isfile(path):
        size = f" ({render.plural(os.path.getsize(path), 'byte')})"
    else:
        size = " (does not exist yet)"
    head = f"{summary.head_position}:{summary.head_hash}" if summary.head_hash else "none (no events yet)"
    rows = [
        ("database", document["database"] + size), ("backend", backend),
        ("schema version", str(summary.schema_version)), ("events", f"{summary.events:,}"),
        ("streams", f"{summary.streams:,}"), ("stores", f"{summary.stores:,}"), ("head", head),
    ]
    for name, value in rows:
        render.print_message(f"{name + ':':<16}{value}")


def _without_password(location: str) -> str:
    """A URL's password is never printed (postgresql://user:secret@host/db -> user@host/db)."""
    if "://" not in location:
        return location
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(location)
    if parts.password is None:
        return location
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc}" if user else netloc))


def register(app: typer.Typer) -> None:
    """Add rebuild-projections, backup and info to the app."""
    app.registered_commands.extend(commands.registered_commands)
