"""Import rows: their schema (pydantic), and their translation into commands.

Each op has its own model; a field no model knows makes the row bad, so a
misspelt column cannot vanish silently. Codes and quantities are then checked
by the same value objects as the command line.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, TypeAdapter, ValidationError

from inventory_cli.application.commands import (
    AddStock,
    Command,
    CountStock,
    FulfillReservation,
    ReceiveTransfer,
    ReleaseReservation,
    RemoveStock,
    ReserveStock,
    TransferStock,
)
from inventory_cli.domain import values as v
from inventory_cli.timestamps import parse_user_time

FIELDS = (
    "op", "product", "store", "quantity", "reason", "customer", "reservation_id", "id", "at", "user",
    "from", "to", "transfer_id",
)
Number = Union[StrictInt, StrictStr]
OPS_TEXT = "add, remove, reserve, release, fulfill, count, transfer, receive"


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)
    id: Optional[StrictStr] = None
    at: Optional[StrictStr] = None
    user: Optional[StrictStr] = None

    def to_command(self, t: RowTranslator) -> Command:
        raise NotImplementedError

    def actor(self, t: RowTranslator) -> str | None:
        return None if self.user is None else t.code(v.Actor, self.user)

    def _common(self, t: RowTranslator) -> tuple[str | None, str | None]:
        """The idempotency key and occurred_at of the row."""
        if self.id is None and self.at is None:
            return None, None
        key = None if self.id is None else t.code(v.IdempotencyKey, self.id)
        return key, None if self.at is None else parse_user_time(self.at)


class _StreamRow(_Row):
    product: StrictStr
    store: Optional[StrictStr] = None
    quantity: Number

    def _stream(self, t: RowTranslator) -> tuple[str, str]:
        store = t.default_store if self.store is None else t.code(v.StoreCode, self.store)
        return store, t.code(v.ProductCode, self.product)


class AddRow(_StreamRow):
    op: Literal["add"]
    reason: Optional[StrictStr] = None

    def to_command(self, t: RowTranslator) -> Command:
        key, at = self._common(t)
        reason = "received" if self.reason is None else t.code(v.Reason, self.reason)
        return AddStock(*self._stream(t), v.Quantity(self.quantity), reason, key, at)


class RemoveRow(_StreamRow):
    op: Literal["remove"]
    reason: Optional[StrictStr] = None

    def to_command(self, t: RowTranslator) -> Command:
        key, at = self._common(t)
        reason = "sold" if self.reason is None else t.code(v.Reason, self.reason)
        return RemoveStock(*self._stream(t), v.Quantity(self.quantity), reason, key, at)


class ReserveRow(_StreamRow):
    op: Literal["reserve"]
    customer: StrictStr
    reservation_id: Optional[StrictStr] = None

    def to_command(self, t: RowTranslator) -> Command:
        key, at = self._common(t)
        # As with `reserve --id`, an id alone names the reservation too.
        chosen = self.reservation_id if self.reservation_id is not None else self.id
        rid = None if chosen is None else t.code(v.ReservationId, chosen)
        customer = t.code(v.CustomerCode, self.customer)
        return ReserveStock(*self._stream(t), v.Quantity(self.quantity), customer, rid, key, at)


class CountRow(_StreamRow):
    op: Literal["count"]

    def to_command(self, t: RowTranslator) -> Command:
        key, at = self._common(t)
        return CountStock(*self._stream(t), v.CountedQuantity(self.quantity), key, at)


class ReleaseRow(_Row):
    op: Literal["release"]
    reservation_id: StrictStr
    reason: Optional[StrictStr] = None
    store: Optional[StrictStr] = None

    def to_command(self, t: RowTranslator) -> Command:
        key, at = self._common(t)
        reason = "released" if self.reason is None else t.code(v.Reason, self.reason)
        return ReleaseReservation(t.code(v.ReservationId, self.reservation_id), reason, key, at)


class FulfillRow(_Row):
    op: Literal["fulfill"]
    reservation_id: StrictStr
    store: Optional[StrictStr] = None

    def to_command(self, t: RowTranslator) -> Command:
        key, at = self._common(t)
        return FulfillReservation(t.code(v.ReservationId, self.reservation_id), key, at)


class TransferRow(_Row):
    op: Literal["transfer"]
    product: StrictStr
    quantity: Number
    from_store: StrictStr = Field(alias="from")
    to_store: StrictStr = Field(alias="to")
    transfer_id: Optional[StrictStr] = None

    def to_command(self, t: RowTranslator) -> Command:
        key, at = self._common(t)
        chosen = self.transfer_id if self.transfer_id is not None else self.id
        return TransferStock(
            t.code(v.ProductCode, self.product), v.Quantity(self.quantity),
            t.code(v.StoreCode, self.from_store), t.code(v.StoreCode, self.to_store),
            None if chosen is None else t.code(v.TransferId, chosen), key, at,
        )


class ReceiveRow(_Row):
    op: Literal["receive"]
    transfer_id: StrictStr
    quantity: Optional[Number] = None
    store: Optional[StrictStr] = None

    def to_command(self, t: RowTranslator) -> Command:
        key, at = self._common(t)
        quantity = None if self.quantity is None else v.CountedQuantity(self.quantity)
        return ReceiveTransfer(t.code(v.TransferId, self.transfer_id), quantity, key, at)


Row = Annotated[
    Union[AddRow, RemoveRow, ReserveRow, CountRow, ReleaseRow, FulfillRow, TransferRow, ReceiveRow],
    Field(discriminator="op"),
]
ROW = TypeAdapter(Row)


class BadRow(Exception):
    """A row that cannot become a command; the message says why."""


def describe_validation_error(error: ValidationError) -> str:
    """One readable sentence from pydantic's errors."""
    messages = []
    for item in error.errors(include_url=False):
        kind, loc = item["type"], [str(part) for part in item["loc"]]
        if len(loc) >= 2 and loc[-1] in ("int", "str"):
            loc.pop()  # a branch of the int-or-text union: name the field itself
        field = loc[-1] if loc else ""
        if field == "quantity" and kind not in ("missing", "extra_forbidden"):
            messages.append(f"quantity must be a whole number; got {item['input']!r}")
        elif kind == "union_tag_not_found":
            messages.append(f"'op' is missing; give one of {OPS_TEXT}")
        elif kind == "union_tag_invalid":
            messages.append(f"unknown op {item['input'].get('op')!r}; use one of {OPS_TEXT}")
        elif kind == "extra_forbidden":
            messages.append(f"unknown field {field!r} (the fields are {', '.join(FIELDS)})")
        elif kind == "missing":
            messages.append(f"{field!r} is required for this op")
        elif kind in ("json_invalid", "json_type"):
            messages.append(f"not valid JSON ({item['msg']})")
        elif kind == "model_type" or kind == "model_attributes_type" or not loc:
            messages.append("a row must be a JSON object with an 'op' field")
        else:
            messages.append(f"{field}: {item['msg'].lower()}")
    # A union of int|str reports both branches; keep each message once.
    return "; ".join(dict.fromkeys(messages))


class RowTranslator:
    """Turns validated rows into commands, caching the codes that repeat from row to row."""

    _CACHED_KINDS = (v.ProductCode, v.StoreCode, v.Reason, v.CustomerCode, v.Actor)
    MAX_CACHED_CODES = 20_000

    def __init__(self, default_store: str) -> None:
        self.default_store = v.StoreCode(default_store)
        self._codes: dict[tuple[type, str], str] = {}

    def code(self, kind: type[v.Code], value: str) -> str:
        cached = self._codes.get((kind, value))
        if cached is None:
            cached = kind(value)
            if kind in self._CACHED_KINDS:  # ids are unique: caching them only costs memory
                if len(self._codes) >= self.MAX_CACHED_CODES:
                    self._codes.clear()
                self._codes[(kind, value)] = cached
        return cached

    def command(self, row: _Row) -> tuple[Command, str | None]:
        """The row's command and its actor (None: the import's own)."""
        try:
            return row.to_command(self), row.actor(self)
        except v.InvalidValue as error:
            raise BadRow(str(error)) from None
        except ValueError as error:  # a time that is not ISO-8601
            raise BadRow(f"at: {error}") from None
