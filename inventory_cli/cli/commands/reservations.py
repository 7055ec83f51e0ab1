"""Holding stock for customers: reserve, release, fulfill, expire, reservations."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from inventory_cli.cli.boundary import guarded
from inventory_cli.cli.context import actor, optional_key, read, settings_of, write
from inventory_cli.cli.options import (
    QUANTITY_CONTEXT, AllStores, Csv, Json, Key, OptionalProduct, Product, QuantityArg, ReservationArg, Store,
    User,
)

commands = typer.Typer()


@commands.command(context_settings=QUANTITY_CONTEXT, epilog="Example: inventory reserve SKU-1 2 --customer c-17")
@guarded
def reserve(
    ctx: typer.Context,
    product: Product,
    quantity: QuantityArg,
    customer: Annotated[str, typer.Option(help="Who the units are held for.", show_default=False)],
    reservation_id: Annotated[
        Optional[str],
        typer.Option("--id", help="The reservation id to use; also the idempotency key."),
    ] = None,
    ttl: Annotated[
        Optional[str],
        typer.Option("--ttl", metavar="DURATION", help="Release it by itself after 90s, 30m, 2h, 3d…", show_default=False),
    ] = None,
    store: Store = "main",
    user: User = None,
    as_json: Json = False,
) -> None:
    """Hold QUANTITY units of PRODUCT for a customer; prints the reservation id."""
    from inventory_cli.application.commands import ReserveStock
    from inventory_cli.domain import values as v

    command = ReserveStock(
        v.StoreCode(store), v.ProductCode(product), v.Quantity(quantity), v.CustomerCode(customer),
        None if reservation_id is None else v.ReservationId(reservation_id),
        ttl_seconds=None if ttl is None else v.duration_seconds(ttl),
    )
    from inventory_cli.cli import suggestions

    with suggestions.on_refusal(ctx, command.store, command.product):
        write(ctx, command, as_json, lambda r: (
            f"Reserved {r.details.quantity:,} × {r.line.product} for {r.details.customer}: "
            f"reservation {r.details.reservation_id}"
            + (f", expires {r.details.expires_at}." if r.details.expires_at else ".")
        ), user)


@commands.command(epilog="Example: inventory release R-1A2B3C4D --reason 'customer cancelled'")
@guarded
def release(
    ctx: typer.Context,
    reservation_id: ReservationArg,
    reason: Annotated[str, typer.Option(help="Why the reservation ends.")] = "released",
    key: Key = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """Give a reservation's units back to available."""
    from inventory_cli.application.commands import ReleaseReservation
    from inventory_cli.domain import values as v

    command = ReleaseReservation(v.ReservationId(reservation_id), v.Reason(reason), optional_key(key))
    write(ctx, command, as_json, lambda r: (
        f"Released reservation {command.reservation_id} "
        f"({r.details.quantity:,} × {r.line.product} for {r.details.customer})."
    ), user)


@commands.command(epilog="Example: inventory fulfill R-1A2B3C4D")
@guarded
def fulfill(
    ctx: typer.Context,
    reservation_id: ReservationArg,
    key: Key = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """The reserved units leave the store: on hand and reserved both drop."""
    from inventory_cli.application.commands import FulfillReservation
    from inventory_cli.domain import values as v

    command = FulfillReservation(v.ReservationId(reservation_id), optional_key(key))
    write(ctx, command, as_json, lambda r: (
        f"Fulfilled reservation {command.reservation_id} "
        f"({r.details.quantity:,} × {r.line.product} to {r.details.customer})."
    ), user)


@commands.command(epilog="Example (cron, every 5 minutes): inventory expire --quiet")
@guarded
def expire(
    ctx: typer.Context,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing when all went well.")] = False,
    user: User = None,
    as_json: Json = False,
) -> None:
    """Release every open reservation past its expiry, in every store (reason `expired`)."""
    from inventory_cli.application.handlers import run_expiry
    from inventory_cli.cli import render

    store = settings_of(ctx).open(create=False)
    try:
        released = run_expiry(store, actor(user))
    finally:
        store.close()
    if as_json:
        render.print_json({"released": released})
    elif not quiet:
        render.print_message(f"Released {render.plural(released, 'expired reservation')}.")


@commands.command(epilog="Example: inventory reservations SKU-1 --all-stores")
@guarded(query=True)
def reservations(
    ctx: typer.Context,
    product: OptionalProduct = None,
    all_stores: AllStores = False,
    store: Store = "main",
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """List the open reservations, by store and product, oldest first."""
    from inventory_cli.cli import csv_output, render
    from inventory_cli.domain import values as v

    csv_output.check_one_format(as_json, as_csv)
    store_code = None if all_stores else v.StoreCode(store)
    product_code = None if product is None else v.ProductCode(product)
    rows = read(ctx, lambda s: s.open_reservations(store_code, product_code))
    if as_csv:
        csv_output.write_csv(csv_output.RESERVATION, rows)
    elif as_json:
        render.print_json(rows)
    elif not rows:
        render.print_message("No open reservations.")
    else:
        render.print_records(render.RESERVATION_COLUMNS, rows)


def register(app: typer.Typer) -> None:
    """Add reserve, release, fulfill, expire and reservations to the app, in that order."""
    app.registered_commands.extend(commands.registered_commands)
