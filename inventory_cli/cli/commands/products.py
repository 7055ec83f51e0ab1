"""The `product` group: product names and reorder points (set, list)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from inventory_cli.cli.boundary import guarded
from inventory_cli.cli.context import optional_key, read, write
from inventory_cli.cli.options import AllStores, Csv, Json, Key, Product, Store, User

product_app = typer.Typer(help="Product definitions: names and reorder points.", no_args_is_help=True)


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
        optional_key(key),
    )
    write(ctx, command, as_json, lambda r: f"Defined {r.line.product}"
          + (f": name {r.line.name!r}" if r.line.name else "")
          + (f", reorder point {r.line.reorder_point} in store {r.line.store}." if r.line.reorder_point is not None else "."),
          user)


@product_app.command("list", epilog="Example: inventory product list --all-stores")
@guarded(query=True)
def product_list(
    ctx: typer.Context,
    all_stores: AllStores = False,
    store: Store = "main",
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """Products with their names and reorder points, from the stock lines."""
    from inventory_cli.application import queries
    from inventory_cli.cli import csv_output, render
    from inventory_cli.domain import values as v

    csv_output.check_one_format(as_json, as_csv)
    store_code = None if all_stores else v.StoreCode(store)
    lines = read(ctx, lambda s: queries.stock(s, store_code, None))
    rows = [{"store": l.store, "product": l.product, "name": l.name, "reorder_point": l.reorder_point}
            for l in lines]
    if as_csv:
        csv_output.write_csv(csv_output.PRODUCT, rows)
    elif as_json:
        render.print_json(rows)
    elif not rows:
        render.print_message("No products yet.")
    else:
        render.print_records(render.PRODUCT_COLUMNS, rows)


def register(app: typer.Typer) -> None:
    """Add the `product` group to the app."""
    app.add_typer(product_app, name="product")
