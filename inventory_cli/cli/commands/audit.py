"""Checking and handing out the log: verify, export."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from inventory_cli.cli.boundary import EXIT_REFUSED, UsageProblem, guarded
from inventory_cli.cli.context import parse_time, read, settings_of
from inventory_cli.cli.options import MAX_INTEGER, Json

commands = typer.Typer()


@commands.command(epilog="Example: inventory verify --anchor 1200:3f5a…\n\n"
                  "Exit 0 when the chain and the projections hold; 1 naming the first bad position.")
@guarded(query=True)
def verify(
    ctx: typer.Context,
    anchor: Annotated[Optional[str], typer.Option(metavar="POSITION:HASH", help="A head written down earlier (from `verify --json`) that the chain must still pass through.", show_default=False)] = None,
    as_json: Json = False,
) -> None:
    """Recompute the hash chain of the log and compare the projections with it."""
    from inventory_cli.cli import render

    anchor_point = _anchor(anchor)
    chain, checked = read(ctx, lambda store: store.verify(anchor_point))
    projections_ok = not checked.differences
    document = {
        "ok": chain.first_bad_position is None and projections_ok and chain.anchor_ok is not False,
        "events": chain.events,
        "first_bad_position": chain.first_bad_position,
        "projections_ok": projections_ok,
        "head_position": chain.head_position,
        "head_hash": chain.head_hash,
    }
    if chain.anchor_ok is not None:
        document["anchor_ok"] = chain.anchor_ok
    if chain.dated_after_recorded:  # a clock was ahead once; the chain itself holds
        document["dated_after_recorded"] = chain.dated_after_recorded
        document["first_dated_after_recorded"] = chain.first_dated_after_recorded
    if as_json:
        render.print_json(document)
    else:
        render.print_message(render.verify_sentence(document, anchor))
    if not document["ok"]:
        raise typer.Exit(EXIT_REFUSED)


def _anchor(text: str | None) -> tuple[int, str] | None:
    if text is None:
        return None
    position, _, digest = text.partition(":")
    digest = digest.strip().lower()
    position = position.strip()
    sound_position = position.isascii() and position.isdigit() and int(position[:20]) <= MAX_INTEGER
    if not sound_position or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise UsageProblem(
            f"--anchor must be POSITION:HASH, e.g. 1200:{'0' * 64} (from `inventory verify --json`); "
            f"got {text!r}."
        )
    return int(position), digest


def _not_paged(ctx: typer.Context, follow: bool) -> bool:
    """A follower writes for as long as it runs: never through a pager."""
    if follow:
        settings_of(ctx).pager = False
    return follow


@commands.command(epilog="Example: inventory export --after-position 1200 > events.ndjson\n\n"
                  "Example (a relay into a broker): inventory export --follow --consumer nats | …")
@guarded(query=True)
def export(
    ctx: typer.Context,
    after_position: Annotated[Optional[int], typer.Option(min=0, max=MAX_INTEGER, help="Only events after this position (resume from the last one you saw).", show_default=False)] = None,
    until: Annotated[Optional[str], typer.Option(help="Only events that occurred up to this date or time.", show_default=False)] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", callback=_not_paged, help="After the backlog, keep writing each new event as it commits, until Ctrl-C or SIGTERM (exit 0).")] = False,
    consumer: Annotated[Optional[str], typer.Option(metavar="NAME", help="Save the position of each line written under NAME; the next run resumes after it.", show_default=False)] = None,
) -> None:
    """Write the events as NDJSON in position order: the feed for backups and other systems."""
    from inventory_cli.cli import render

    until_at = parse_time(until, "--until", end_of_day=True)
    settings = settings_of(ctx)
    if follow or consumer is not None:
        from inventory_cli.cli.follow import export_feed
        from inventory_cli.domain.values import ConsumerName

        if until_at is not None:
            raise UsageProblem("--until cannot be combined with --follow or --consumer: "
                               "a follower and a consumer take every event in order.")
        export_feed(
            settings.open_feed, after_position=after_position,
            consumer=None if consumer is None else ConsumerName(consumer), follow=follow,
            database_missing=settings.is_new,
        )
        return
    last = after_position or 0  # of the lines written: after a lost connection, go on from there

    def lines(store):
        nonlocal last
        for event in store.read_log(after_position=last, until_time=until_at):
            yield render.export_json(event)
            last = event.position  # asked for the next line: this one is written

    def write_lines(store) -> None:
        with store.snapshot():
            render.write_ndjson(lines(store))

    read(ctx, write_lines)


def register(app: typer.Typer) -> None:
    """Add verify and export to the app, in that order."""
    app.registered_commands.extend(commands.registered_commands)
