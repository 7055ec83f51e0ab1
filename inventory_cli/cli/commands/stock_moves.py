"""Stock moving in and out of a store: add, remove, count, and revert (a correction)."""

from __future__ import annotations

from typing import Annotated

import typer

from inventory_cli.cli.boundary import guarded
from inventory_cli.cli.context import optional_key, write
from inventory_cli.cli.options import MAX_INTEGER, QUANTITY_CONTEXT, Json, Key, Product, QuantityArg, Store, User

commands = typer.Typer()


@commands.command(context_settings=QUANTITY_CONTEXT, epilog="Example: inventory add SKU-1 10 --reason delivery")
@guarded
def add(
    ctx: typer.Context,
    product: Product,
    quantity: QuantityArg,
    reason: Annotated[str, typer.Option(help="Why the stock arrived.")] = "received",
    store: Store = "main",
    key: Key = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """Stock arrives: add QUANTITY units of PRODUCT."""
    from inventory_cli.application.commands import AddStock
    from inventory_cli.domain import values as v

    command = AddStock(v.StoreCode(store), v.ProductCode(product), v.Quantity(quantity),
                       v.Reason(reason), optional_key(key))
    result = write(ctx, command, as_json, lambda r: f"Added {command.quantity:,} × {command.product} ({command.reason}).", user)
    if result.line.version == 1 and not result.duplicate:
        from inventory_cli.cli import suggestions

        suggestions.new_product(ctx, command.store, command.product)


@commands.command(context_settings=QUANTITY_CONTEXT, epilog="Example: inventory remove SKU-1 2 --reason damaged")
@guarded
def remove(
    ctx: typer.Context,
    product: Product,
    quantity: QuantityArg,
    reason: Annotated[str, typer.Option(help="Why the stock left: sold, damaged, lost…")] = "sold",
    store: Store = "main",
    key: Key = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """Stock leaves: remove QUANTITY units of PRODUCT (refused beyond what is available)."""
    from inventory_cli.application.commands import RemoveStock
    from inventory_cli.domain import values as v

    command = RemoveStock(v.StoreCode(store), v.ProductCode(product), v.Quantity(quantity),
                          v.Reason(reason), optional_key(key))
    from inventory_cli.cli import suggestions

    with suggestions.on_refusal(ctx, command.store, command.product):
        write(ctx, command, as_json, lambda r: f"Removed {command.quantity:,} × {command.product} ({command.reason}).", user)


@commands.command(context_settings=QUANTITY_CONTEXT, epilog="Example: inventory count SKU-1 7")
@guarded
def count(
    ctx: typer.Context,
    product: Product,
    quantity: Annotated[str, typer.Argument(metavar="QUANTITY", help="The units counted, 0 to 1,000,000,000.", show_default=False)],
    store: Store = "main",
    key: Key = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """A physical count: set on hand to QUANTITY and record the difference."""
    from inventory_cli.application.commands import CountStock
    from inventory_cli.domain import values as v

    command = CountStock(v.StoreCode(store), v.ProductCode(product), v.CountedQuantity(quantity), optional_key(key))
    write(ctx, command, as_json, lambda r: f"Counted {command.quantity:,} × {command.product}.", user)


@commands.command(epilog="Example: inventory revert 42 --reason 'typed 100 instead of 10'")
@guarded
def revert(
    ctx: typer.Context,
    position: Annotated[int, typer.Argument(metavar="POSITION", min=1, max=MAX_INTEGER, help="The log position of the mistaken add, remove or count (see history).", show_default=False)],
    reason: Annotated[str, typer.Option(help="Why it is corrected.")] = "correction",
    key: Key = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """Correct a mistaken add, remove or count with the opposite movement (history keeps both)."""
    from inventory_cli.application.commands import RevertEvent
    from inventory_cli.domain import values as v

    command = RevertEvent(position, v.Reason(reason), optional_key(key))
    write(ctx, command, as_json, lambda r: f"Reverted position {position} of {r.line.product} "
          f"with position {r.position} ({command.reason}).", user)


def register(app: typer.Typer) -> None:
    """Add add, remove, count and revert to the app, in that order."""
    app.registered_commands.extend(commands.registered_commands)
