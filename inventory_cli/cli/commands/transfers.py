"""Moving stock between stores: transfer, receive, transfers."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from inventory_cli.cli.boundary import guarded
from inventory_cli.cli.context import optional_key, read, write
from inventory_cli.cli import completion
from inventory_cli.cli.options import QUANTITY_CONTEXT, Csv, Json, Key, Product, QuantityArg, TransferArg, User

commands = typer.Typer()


@commands.command(context_settings=QUANTITY_CONTEXT,
                  epilog="Example: inventory transfer SKU-1 5 --from main --to paris")
@guarded
def transfer(
    ctx: typer.Context,
    product: Product,
    quantity: QuantityArg,
    from_store: Annotated[str, typer.Option("--from", help="The store the units leave.", show_default=False,
                                            autocompletion=completion.stores)],
    to_store: Annotated[str, typer.Option("--to", help="The store they go to.", show_default=False,
                                          autocompletion=completion.stores)],
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
    from inventory_cli.cli import suggestions

    with suggestions.on_refusal(ctx, command.from_store, command.product):
        result = write(ctx, command, as_json, lambda r: (
            f"Shipped {r.details.quantity:,} × {r.line.product} to store {r.details.to_store}: "
            f"transfer {r.details.transfer_id}."
        ), user)
    if not result.duplicate:
        suggestions.new_store(ctx, command.to_store)


@commands.command(epilog="Example: inventory receive T-1A2B3C4D --quantity 4")
@guarded
def receive(
    ctx: typer.Context,
    transfer_id: TransferArg,
    quantity: Annotated[Optional[str], typer.Option("--quantity", help="Units that arrived (default: all that were shipped); the rest is recorded as lost.", show_default=False)] = None,
    key: Key = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """Book a transfer in at the receiving store; a short receipt records the loss."""
    from inventory_cli.application.commands import ReceiveTransfer
    from inventory_cli.domain import values as v

    command = ReceiveTransfer(
        v.TransferId(transfer_id), None if quantity is None else v.CountedQuantity(quantity), optional_key(key),
    )
    write(ctx, command, as_json, lambda r: (
        f"Received {r.details.quantity:,} × {r.line.product} of transfer {r.details.transfer_id}"
        + (f"; {r.details.lost:,} recorded as lost in transit." if r.details.lost else ".")
    ), user)


@commands.command(epilog="Example: inventory transfers --open")
@guarded(query=True)
def transfers(
    ctx: typer.Context,
    open_only: Annotated[bool, typer.Option("--open", help="Only transfers still in transit.")] = False,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """List transfers between stores."""
    from inventory_cli.cli import csv_output, render

    csv_output.check_one_format(as_json, as_csv)
    rows = read(ctx, lambda s: s.transfers(open_only=open_only))
    if as_csv:
        csv_output.write_csv(csv_output.TRANSFER, rows)
    elif as_json:
        render.print_json(rows)
    elif not rows:
        render.print_message("No transfers" + (" in transit." if open_only else "."))
    else:
        render.print_records(render.TRANSFER_COLUMNS, rows)


def register(app: typer.Typer) -> None:
    """Add transfer, receive and transfers to the app, in that order."""
    app.registered_commands.extend(commands.registered_commands)
