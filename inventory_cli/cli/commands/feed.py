"""The feed's companions: `consumers` (followers' positions) and `metrics` (monitoring).

`export --follow` itself is with export, in audit.py.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from inventory_cli.cli.boundary import guarded
from inventory_cli.cli.context import settings_of
from inventory_cli.cli.options import Json

commands = typer.Typer()


def _with_feed(ctx: typer.Context, read):
    feed = settings_of(ctx).open_feed()
    try:
        return read(feed)
    finally:
        feed.close()


@commands.command(epilog="Example: inventory consumers --json")
@guarded(query=True)
def consumers(ctx: typer.Context, as_json: Json = False) -> None:
    """Each consumer of the feed (export --consumer): its saved position and lag behind the head."""
    from inventory_cli.cli import render

    positions = _with_feed(ctx, lambda feed: feed.consumers())
    if as_json:
        render.print_json([position._asdict() for position in positions])
    elif not positions:
        render.print_message("No consumer yet: `inventory export --follow --consumer NAME` makes one.")
    else:
        from inventory_cli.cli.tables import Column

        render.print_table((Column("consumer"), Column("position", "number"), Column("lag", "number")),
                           positions)


@commands.command(epilog="Example (node_exporter's textfile collector, from cron):\n\n"
             "inventory metrics --textfile /var/lib/node_exporter/textfile/inventory.prom")
@guarded(query=True)
def metrics(
    ctx: typer.Context,
    textfile: Annotated[Optional[str], typer.Option(metavar="PATH", help="Write atomically to PATH (for node_exporter's textfile collector) instead of stdout.", show_default=False)] = None,
) -> None:
    """The state in the Prometheus text format: events by type, head, per-store counts, consumer lag."""
    from inventory_cli.cli import metrics_output
    from inventory_cli.timestamps import utc_now

    metrics_output.check_installed()
    figures = _with_feed(ctx, lambda feed: feed.figures(utc_now()))
    if textfile is None:
        from inventory_cli.cli import render

        render.print_lines(metrics_output.exposition(figures))
    else:
        metrics_output.write_textfile(figures, textfile)


def register(app: typer.Typer) -> None:
    """Add consumers and metrics to the app, in that order."""
    app.registered_commands.extend(commands.registered_commands)
