"""`--csv`: a header row, then one row per item, with the field names and values of
the `--json` document (RFC 4180 quoting by the csv module; null is an empty cell).

Rows are written as they come, so a long history streams like its table does.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence

from inventory_cli.cli.boundary import UsageProblem

STOCK_LINE = ("store", "product", "name", "on_hand", "reserved", "available", "incoming",
              "reorder_point", "version", "updated_at")
DIFF = ("store", "product", *(f"{figure}_{when}" for figure in ("on_hand", "reserved", "available", "incoming")
                              for when in ("before", "after", "change")))
RESERVATION = ("reservation_id", "store", "product", "quantity", "customer", "created_at", "expires_at")
TRANSFER = ("transfer_id", "product", "from", "to", "quantity", "received", "lost", "status",
            "shipped_at", "received_at")
PRODUCT = ("store", "product", "name", "reorder_point")
STORE = ("store", "lines", "on_hand", "reserved", "incoming")


def history_columns() -> tuple[str, ...]:
    """The keys of `history --json`, then every field an event type may add, in a fixed order."""
    from inventory_cli.domain.events import EVENT_TYPES

    base = ("position", "version", "type", "store", "product", "quantity", "occurred_at",
            "recorded_at", "reason", "customer", "reservation_id", "actor", "on_hand", "reserved",
            "available")
    extra: list[str] = []
    for cls in EVENT_TYPES.values():
        extra += [f for f in cls._fields[1:] if f not in base and f not in extra]
    return base + tuple(extra)


def check_one_format(as_json: bool, as_csv: bool) -> None:
    if as_json and as_csv:
        raise UsageProblem("Give either --json or --csv, not both.")


def write_csv(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> None:
    import csv

    writer = csv.writer(sys.stdout)  # lines end with CRLF, as RFC 4180 has it
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
