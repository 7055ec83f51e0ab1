"""Commands for store operations: expiring reservations, transfers, product definitions.

Registered on the main app when ``cli.app`` is imported.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from inventory_cli.cli.app import (
    AllStores,
    Json,
    Key,
    OptionalProduct,
    Product,
    QUANTITY_CONTEXT,
    QuantityArg,
    Store,
    User,
    _actor,
    _key,
    _read,
    _settings,
    _write,
    app,
)
from inventory_cli.cli.boundary import guarded

product_app = typer.Typer(help="Product definitions: names and reorder points.", no_args_is_help=True)
app.add_typer(product_app, name="product")


@app.command(epilog="Example (cron, every 5 minutes): inventory expire --quiet")
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

    store = _settings(ctx).open(create=False)
    if store is None:
        released = 0
    else:
        try:
            released = run_expiry(store, _actor(user))
        finally:
            store.close()
    if as_json:
        render.print_json({"released": released})
    elif not quiet:
        render.print_message(f"Released {released} expired reservation{'s' * (released != 1)}.")


@app.command(epilog="Example: inventory reservations SKU-1 --all-stores")
@guarded
def reservations(
    ctx: typer.Context,
    product: OptionalProduct = None,
    all_stores: AllStores = False,
    store: Store = "main",
    as_json: Json = False,
) -> None:
    """List the open reservations, by store and product, oldest first."""
    from inventory_cli.cli import render
    from inventory_cli.domain import values as v

    store_code = None if all_stores else v.StoreCode(store)
    product_code = None if product is None else v.ProductCode(product)
    rows = _read(ctx, lambda s: [] if s is None else s.open_reservations(store_code, product_code))
    if as_json:
        render.print_json(rows)
    elif not rows:
        render.print_message("No open reservations.")
    else:
        columns = ("reservation_id", "store", "product", "quantity", "customer", "created_at", "expires_at")
        render.print_table(None, columns, ([row[c] for c in columns] for row in rows),
                           numeric=frozenset({"quantity"}))


@app.command(context_settings=QUANTITY_CONTEXT,
             epilog="Example: inventory transfer SKU-1 5 --from main --to paris")
@guarded
def transfer(
    ctx: typer.Context,
    product: Product,
    quantity: QuantityArg,
    from_store: Annotated[str, typer.Option("--from", help="The store the units leave.", show_default=False)],
    to_store: Annotated[str, typer.Option("--to", help="The store they go to.", show_default=False)],
    transfer_id: Annotated[Optional[str], typer.Option("--id", help="The transfer id to use; also the idempotency key.", show_default=False)] = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """Ship units to another store: they leave --from now and show as incoming at --to."""
    from inventory_cli.application.commands import TransferStock
    from inventory_cli.domain import values as v

    command = TransferStock(
        v.ProductCode(product), v.Quantity(quantity), v.StoreCode(from_store), v.StoreCode(to_store),
        None if transfer_id is None else v.TransferId(transfer_id),
    )
    _write(ctx, command, as_json, lambda r: (
        f"Shipped {r.details['quantity']} × {r.line.product} to store {r.details['to']}: "
        f"transfer {r.details['transfer_id']}."
    ), user)


@app.command(epilog="Example: inventory receive T-1A2B3C4D --quantity 4")
@guarded
def receive(
    ctx: typer.Context,
    transfer_id: Annotated[str, typer.Argument(metavar="TID", help="The transfer id.", show_default=False)],
    quantity: Annotated[Optional[str], typer.Option("--quantity", help="Units that arrived (default: all that were shipped); the rest is recorded as lost.", show_default=False)] = None,
    key: Key = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """Book a transfer in at the receiving store; a short receipt records the loss."""
    from inventory_cli.application.commands import ReceiveTransfer
    from inventory_cli.domain import values as v

    command = ReceiveTransfer(
        v.TransferId(transfer_id), None if quantity is None else v.CountedQuantity(quantity), _key(key),
    )
    _write(ctx, command, as_json, lambda r: (
        f"Received {r.details['quantity']} × {r.line.product} of transfer {r.details['transfer_id']}"
        + (f"; {r.details['lost']} recorded as lost in transit." if r.details["lost"] else ".")
    ), user)


@app.command(epilog="Example: inventory transfers --open")
@guarded
def transfers(
    ctx: typer.Context,
    open_only: Annotated[bool, typer.Option("--open", help="Only transfers still in transit.")] = False,
    as_json: Json = False,
) -> None:
    """List transfers between stores."""
    from inventory_cli.cli import render

    rows = _read(ctx, lambda s: [] if s is None else s.transfers(open_only=open_only))
    if as_json:
        render.print_json(rows)
    elif not rows:
        render.print_message("No transfers" + (" in transit." if open_only else "."))
    else:
        columns = ("transfer_id", "product", "from", "to", "quantity", "received", "lost", "status", "shipped_at")
        render.print_table(None, columns, ([row[c] for c in columns] for row in rows),
                           numeric=frozenset({"quantity", "received", "lost"}))


@product_app.command("set", epilog="Example: inventory product set SKU-1 --name 'Blue mug' --reorder-point 5")
@guarded
def product_set(
    ctx: typer.Context,
    product: Product,
    name: Annotated[Optional[str], typer.Option(help="The product's name, in every store.", show_default=False)] = None,
    reorder_point: Annotated[Optional[str], typer.Option("--reorder-point", help="In the store in force: `stock --low` lists the line when available ≤ this.", show_default=False)] = None,
    store: Store = "main",
    key: Key = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """Name a product, or set its reorder point in a store."""
    from inventory_cli.application.commands import DefineProduct
    from inventory_cli.cli.boundary import UsageProblem
    from inventory_cli.domain import values as v

    if name is None and reorder_point is None:
        raise UsageProblem("Give --name, --reorder-point or both.")
    command = DefineProduct(
        v.StoreCode(store), v.ProductCode(product),
        None if name is None else v.ProductName(name),
        None if reorder_point is None else v.ReorderPoint(reorder_point),
        _key(key),
    )
    _write(ctx, command, as_json, lambda r: f"Defined {r.line.product}"
           + (f": name {r.line.name!r}" if r.line.name else "")
           + (f", reorder point {r.line.reorder_point} in store {r.line.store}." if r.line.reorder_point is not None else "."),
           user)


@product_app.command("list", epilog="Example: inventory product list --all-stores")
@guarded
def product_list(
    ctx: typer.Context,
    all_stores: AllStores = False,
    store: Store = "main",
    as_json: Json = False,
) -> None:
    """Products with their names and reorder points, from the stock lines."""
    from inventory_cli.application import queries
    from inventory_cli.cli import render
    from inventory_cli.domain import values as v

    store_code = None if all_stores else v.StoreCode(store)
    lines = _read(ctx, lambda s: queries.stock(s, store_code, None))
    rows = [{"store": l.store, "product": l.product, "name": l.name, "reorder_point": l.reorder_point}
            for l in lines]
    if as_json:
        render.print_json(rows)
    elif not rows:
        render.print_message("No products yet.")
    else:
        columns = ("store", "product", "name", "reorder_point")
        render.print_table(None, columns, ([row[c] for c in columns] for row in rows))
