"""The `report` group: movements per period and days of cover, from the log."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from inventory_cli.cli.boundary import UsageProblem, guarded
from inventory_cli.cli.context import parse_time, read
from inventory_cli.cli.options import AllStores, Json, OptionalProduct, Store

report_app = typer.Typer(
    help="Reports for the manager: what moved per period, how long the stock will last.",
    no_args_is_help=True,
)



Csv = Annotated[bool, typer.Option("--csv", help="Print CSV: a header row, then one row per item.")]
Since = Annotated[Optional[str], typer.Option(help="From this date or time on (inclusive; local time unless an offset is given).", show_default=False)]


def _format(as_json: bool, as_csv: bool) -> None:
    if as_json and as_csv:
        raise UsageProblem("Give either --json or --csv, not both.")


@report_app.command(epilog="Example: inventory report movements --all-stores --by week --since 2026-10-01")
@guarded(query=True)
def movements(
    ctx: typer.Context,
    product: OptionalProduct = None,
    all_stores: AllStores = False,
    by: Annotated[str, typer.Option("--by", metavar="day|week|month", help="The period: a day, an ISO week (from Monday) or a month, in local time.")] = "month",
    since: Since = None,
    until: Annotated[Optional[str], typer.Option(help="Up to this date or time (inclusive).", show_default=False)] = None,
    store: Store = "main",
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """Units in and out per period and product, and the on hand at each period's end."""
    from inventory_cli.application import reports
    from inventory_cli.cli import render, report_render
    from inventory_cli.domain import values as v

    _format(as_json, as_csv)
    if by not in reports.PERIODS:
        raise UsageProblem(f"--by must be day, week or month, not {by!r}.")
    store_code = None if all_stores else v.StoreCode(store)
    product_code = None if product is None else v.ProductCode(product)
    since_at, until_at = parse_time(since, "--since"), parse_time(until, "--until", end_of_day=True)
    rows = read(ctx, lambda s: reports.movements(s, store_code, product_code, by=by,
                                                  since=since_at, until=until_at))
    if as_json:
        render.print_json_array(row._asdict() for row in rows)
    elif as_csv:
        report_render.write_csv(rows, reports.MovementRow._fields)
    elif not rows:
        where = f" in store {store_code}" if store_code else ""
        render.print_message(f"No movements{where}" + (" in that period." if since or until else "."))
    else:
        report_render.print_movements_table(rows, by)


@report_app.command(epilog="Example: inventory report cover --days 28 --target-days 14\n\n"
                    "Example (as it was on a past day): inventory report cover --until 2026-11-01")
@guarded(query=True)
def cover(
    ctx: typer.Context,
    all_stores: AllStores = False,
    days: Annotated[int, typer.Option("--days", min=1, max=3660, help="The sales of this many days before set the rate.")] = 28,
    target_days: Annotated[int, typer.Option("--target-days", min=0, max=3660, help="Days of cover to order for.")] = 14,
    until: Annotated[Optional[str], typer.Option(help="As of this date or time (the stock replayed to it); default now.", show_default=False)] = None,
    store: Store = "main",
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """Days of cover at the recent rate of sales, and what to order to reach the target."""
    from inventory_cli.application import reports
    from inventory_cli.cli import render, report_render
    from inventory_cli.domain import values as v
    from inventory_cli.timestamps import utc_now

    _format(as_json, as_csv)
    store_code = None if all_stores else v.StoreCode(store)
    until_at = parse_time(until, "--until", end_of_day=True)
    rows = read(ctx, lambda s: reports.cover(s, store_code, now=utc_now(), days=days,
                                              target_days=target_days, until=until_at))
    if as_json:
        render.print_json_array(row._asdict() for row in rows)
    elif as_csv:
        report_render.write_csv(rows, reports.CoverRow._fields)
    elif not rows:
        where = f" in store {store_code}" if store_code else ""
        render.print_message(f"No stock recorded{where}" + (" at that time." if until else " yet."))
    else:
        report_render.print_cover_table(rows, days, target_days)

def register(app: typer.Typer) -> None:
    """Add the `report` group to the app."""
    app.add_typer(report_app, name="report")
