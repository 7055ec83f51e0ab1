"""The options and arguments several commands share, as typer Annotated types."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from inventory_cli.cli import completion

# Positions, limits and batch sizes end up in SQL: the largest integer SQLite stores.
MAX_INTEGER = 2**63 - 1

# Quantities are read as text and validated by the domain, so that "-5" or "1.5"
# get the same clear message as "abc" instead of "No such option".
QUANTITY_CONTEXT = {"ignore_unknown_options": True}

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]
Csv = Annotated[bool, typer.Option("--csv", help="Print CSV: a header row, then one row per item (the --json fields).")]
Store = Annotated[
    str,
    typer.Option("--store", "-s", envvar="INVENTORY_STORE", help="The store acted on.", show_default=True,
                 autocompletion=completion.stores),
]
Key = Annotated[
    Optional[str],
    typer.Option("--id", help="Idempotency key: running again with the same id changes nothing."),
]
User = Annotated[
    Optional[str],
    typer.Option("--user", envvar="INVENTORY_USER", help="Who does this (default: your login name).", show_default=False),
]
Product = Annotated[str, typer.Argument(metavar="PRODUCT", help="The product code (SKU).", show_default=False,
                                        autocompletion=completion.products)]
QuantityArg = Annotated[str, typer.Argument(metavar="QUANTITY", help="A whole number of units, 1 to 1,000,000,000.", show_default=False)]
AllStores = Annotated[bool, typer.Option("--all-stores", help="Every store, not only --store.")]
OptionalProduct = Annotated[Optional[str], typer.Argument(metavar="PRODUCT", help="One product code; all when omitted.",
                                                         show_default=False, autocompletion=completion.products)]
ReservationArg = Annotated[str, typer.Argument(metavar="RID", help="The reservation id.", show_default=False,
                                               autocompletion=completion.reservations)]
TransferArg = Annotated[str, typer.Argument(metavar="TID", help="The transfer id.", show_default=False,
                                            autocompletion=completion.transfers)]
