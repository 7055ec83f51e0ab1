"""Applying a file of commands: import (the work itself is in `cli/import_command.py`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from inventory_cli.cli.boundary import UsageProblem, guarded
from inventory_cli.cli.context import actor, settings_of
from inventory_cli.cli.options import MAX_INTEGER, Json, Store, User

commands = typer.Typer()


@commands.command("import", epilog="Example: inventory import deliveries.csv --batch-size 5000")
@guarded
def import_(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="CSV or NDJSON file, or - for stdin (the default).")] = "-",
    fmt: Annotated[Optional[str], typer.Option("--format", help="csv or ndjson (default: from the extension; ndjson for stdin).", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, max=MAX_INTEGER, help="Commit every N rows (each batch all or nothing); every row then needs an id.", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report without writing.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary on success.")] = False,
    store: Store = "main",
    user: User = None,
    as_json: Json = False,
) -> None:
    """Apply a batch of commands from a file, all or nothing."""
    from inventory_cli.cli.import_command import import_file
    from inventory_cli.domain import values as v

    if fmt is not None and fmt not in ("csv", "ndjson"):
        raise UsageProblem(f"--format must be csv or ndjson, not {fmt!r}.")
    import_file(settings_of(ctx), file, fmt, store_code=v.StoreCode(store), actor=actor(user),
                batch_size=batch_size, dry_run=dry_run, quiet=quiet, as_json=as_json)


def register(app: typer.Typer) -> None:
    """Add import to the app."""
    app.registered_commands.extend(commands.registered_commands)
