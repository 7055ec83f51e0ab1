"""Reading stock and its past: stock, history, replay, diff."""

from __future__ import annotations

from itertools import chain
from typing import Annotated, Optional

import typer

from inventory_cli.cli.boundary import UsageProblem, guarded
from inventory_cli.cli.context import parse_time, read
from inventory_cli.cli.options import MAX_INTEGER, AllStores, Csv, Json, OptionalProduct, Store

commands = typer.Typer()


@commands.command(epilog="Example: inventory stock SKU-1 --all-stores")
@guarded(query=True)
def stock(
    ctx: typer.Context,
    product: OptionalProduct = None,
    all_stores: AllStores = False,
    low: Annotated[bool, typer.Option("--low", help="Only lines whose available is at or below their reorder point.")] = False,
    store: Store = "main",
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """Current stock, from the projections."""
    from inventory_cli.application import queries
    from inventory_cli.cli import csv_output
    from inventory_cli.domain import values as v

    csv_output.check_one_format(as_json, as_csv)
    store_code = None if all_stores else v.StoreCode(store)
    product_code = None if product is None else v.ProductCode(product)
    lines = read(ctx, lambda s: queries.stock(s, store_code, product_code, low=low))
    if not lines and product_code is not None and store_code is not None and not low:
        from inventory_cli.cli import suggestions

        suggestions.unknown_product(ctx, store_code, product_code)
    if low:
        empty = "No line is at or below its reorder point" + (f" in store {store_code}." if store_code else ".")
    else:
        of = "" if product_code is None else f" of {product_code}"
        empty = f"No stock{of} recorded yet" + (f" in store {store_code}." if store_code else ".")
    _print_lines(lines, as_json, as_csv, empty)


@commands.command(epilog="Example: inventory history SKU-1 --since 2026-11-01 --limit 20\n\n"
                  "Example (the whole store, for an end-of-day review): inventory history --since 2026-11-27")
@guarded(query=True)
def history(
    ctx: typer.Context,
    product: OptionalProduct = None,
    since: Annotated[Optional[str], typer.Option(help="From this date or time on (inclusive; local time unless an offset is given).", show_default=False)] = None,
    until: Annotated[Optional[str], typer.Option(help="Up to this date or time (inclusive).", show_default=False)] = None,
    limit: Annotated[Optional[int], typer.Option(min=0, max=MAX_INTEGER, help="Keep only the latest N events (oldest first).", show_default=False)] = None,
    store: Store = "main",
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """Events in order, each with the balances after it: of one product, or of the whole store."""
    from inventory_cli.application import queries
    from inventory_cli.cli import csv_output
    from inventory_cli.domain import values as v

    csv_output.check_one_format(as_json, as_csv)
    store_code = v.StoreCode(store)
    product_code = None if product is None else v.ProductCode(product)
    since_at, until_at = parse_time(since, "--since"), parse_time(until, "--until", end_of_day=True)
    writing = False

    def show(s) -> None:  # run again on a new connection if the first one is lost before any output
        nonlocal writing
        if writing:
            from inventory_cli.storage.errors import ConnectionLost

            raise ConnectionLost("The connection to the server was lost while the history was being written")
        with s.snapshot():
            if product_code is None:
                entries = queries.store_history(s, store_code, since=since_at, until=until_at, limit=limit)
            else:
                entries = queries.history(s, store_code, product_code, since=since_at, until=until_at,
                                          limit=limit)
            first = next(entries, None)
            writing = True
            _show_history(ctx, first, entries, store_code, product_code, as_json, as_csv, since or until)

    read(ctx, show)


def _show_history(ctx, first, entries, store_code, product_code, as_json, as_csv, period) -> None:
    from inventory_cli.cli import csv_output, render

    if first is None and product_code is not None:
        from inventory_cli.cli import suggestions

        suggestions.unknown_product(ctx, store_code, product_code)
    entries = chain([first], entries) if first is not None else iter(())
    if as_csv:
        csv_output.write_csv(csv_output.history_columns(), (render.history_json(e) for e in entries))
        return
    if as_json:
        render.print_json_array(render.history_json(e) for e in entries)
        return
    if first is None:
        subject = f"{product_code} in store {store_code}" if product_code else f"store {store_code}"
        render.print_message(f"No events for {subject}" + (" in that period." if period else "."))
    else:
        render.print_history_table(entries, with_product=product_code is None)


@commands.command(epilog="Example: inventory replay SKU-1 --until 2026-11-01T18:00")
@guarded(query=True)
def replay(
    ctx: typer.Context,
    product: OptionalProduct = None,
    all_stores: AllStores = False,
    until: Annotated[Optional[str], typer.Option(help="Stock as it was at this date or time (on occurred_at, inclusive).", show_default=False)] = None,
    position: Annotated[Optional[int], typer.Option(min=0, max=MAX_INTEGER, help="Stock as it was after the event at this log position.", show_default=False)] = None,
    store: Store = "main",
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """Time travel: stock as it was, computed from the event log alone."""
    from inventory_cli.application import queries
    from inventory_cli.cli import csv_output
    from inventory_cli.domain import values as v

    csv_output.check_one_format(as_json, as_csv)
    if until is not None and position is not None:
        raise UsageProblem("Give either --until or --position, not both.")
    store_code = None if all_stores else v.StoreCode(store)
    product_code = None if product is None else v.ProductCode(product)
    until_at = parse_time(until, "--until", end_of_day=True)
    lines = read(ctx, lambda s: queries.replay(s, store_code, product_code, position=position, until=until_at))
    _print_lines(lines, as_json, as_csv, "No stock at that point.")


@commands.command(epilog="Example: inventory diff --since 2026-11-26 --until 2026-11-27\n\n"
                  "Example: inventory diff SKU-1 --from-position 100 --to-position 250 --json")
@guarded(query=True)
def diff(
    ctx: typer.Context,
    product: OptionalProduct = None,
    all_stores: AllStores = False,
    since: Annotated[Optional[str], typer.Option(help="Compare from the state at this date or time …", show_default=False)] = None,
    until: Annotated[Optional[str], typer.Option(help="… to the state at this one (default: now).", show_default=False)] = None,
    from_position: Annotated[Optional[int], typer.Option(min=0, max=MAX_INTEGER, help="Compare from the state after this log position …", show_default=False)] = None,
    to_position: Annotated[Optional[int], typer.Option(min=0, max=MAX_INTEGER, help="… to the state after this one (default: now).", show_default=False)] = None,
    store: Store = "main",
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """What changed in each stock line between two times or two log positions."""
    from inventory_cli.application import queries
    from inventory_cli.cli import csv_output, render
    from inventory_cli.domain import values as v

    csv_output.check_one_format(as_json, as_csv)
    by_time = since is not None or until is not None
    by_position = from_position is not None or to_position is not None
    if by_time and by_position:
        raise UsageProblem("Compare either times (--since/--until) or positions (--from-position/--to-position), not both.")
    if since is None and from_position is None:
        raise UsageProblem("Say where to start: --since TIME or --from-position N.")
    store_code = None if all_stores else v.StoreCode(store)
    product_code = None if product is None else v.ProductCode(product)
    since_at, until_at = parse_time(since, "--since", end_of_day=True), parse_time(until, "--until", end_of_day=True)
    changes = read(ctx, lambda s: queries.diff(
        s, store_code, product_code, from_position=from_position, to_position=to_position,
        since=since_at, until=until_at,
    ))
    documents = [change.as_dict() for change in changes]
    if as_csv:
        csv_output.write_csv(csv_output.DIFF, documents)
    elif as_json:
        render.print_json(documents)
    elif not documents:
        render.print_message("No stock line changed between those points.")
    else:
        render.print_diff_table(documents)


@commands.command(epilog="Example: inventory stores --csv")
@guarded(query=True)
def stores(ctx: typer.Context, as_json: Json = False, as_csv: Csv = False) -> None:
    """Every store with its number of stock lines and units on hand, reserved and incoming."""
    from inventory_cli.cli import csv_output, render

    csv_output.check_one_format(as_json, as_csv)
    rows = [totals._asdict() for totals in read(ctx, lambda s: s.store_totals())]
    if as_csv:
        csv_output.write_csv(csv_output.STORE, rows)
    elif as_json:
        render.print_json(rows)
    elif not rows:
        render.print_message("No stores yet: the first write to a store creates it.")
    else:
        from inventory_cli.cli.tables import Column

        render.print_records((
            ("store", Column("store")), ("lines", Column("lines", "number")),
            ("on_hand", Column("on hand", "number")), ("reserved", Column("reserved", "number")),
            ("incoming", Column("incoming", "number")),
        ), rows)


def _print_lines(lines, as_json: bool, as_csv: bool, empty_message: str) -> None:
    from inventory_cli.cli import csv_output, render

    if as_csv:
        csv_output.write_csv(csv_output.STOCK_LINE, (line.as_dict() for line in lines))
    elif as_json:
        render.print_json([line.as_dict() for line in lines])
    elif not lines:
        render.print_message(empty_message)
    else:
        render.print_stock_table(lines)


def register(app: typer.Typer) -> None:
    """Add stock, history, replay, diff and stores to the app, in that order."""
    app.registered_commands.extend(commands.registered_commands)
