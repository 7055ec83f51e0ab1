"""Import rows: their schema (pydantic), and their translation into commands.

Each op has its own schema; a field no schema knows makes the row bad, so a
misspelt column cannot vanish silently. Codes and quantities are then checked
by the same value objects as the command line. The schemas are TypedDicts
rather than models: validating into a plain dict is a third cheaper per row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

from pydantic import ConfigDict, Field, StrictInt, StrictStr, TypeAdapter, ValidationError
from typing_extensions import NotRequired, Required, TypedDict

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
    chosen_id,
)
from inventory_cli.domain import values as v
from inventory_cli.timestamps import parse_user_time

FIELDS = (
    "op", "product", "store", "quantity", "reason", "customer", "reservation_id", "id", "at", "user",
    "from", "to", "transfer_id",
)
OPS_TEXT = "add, remove, reserve, release, fulfill, count, transfer, receive"
Number = Union[StrictInt, StrictStr]
_STRICT = ConfigDict(extra="forbid")


def _schema(op: str, **fields: Any) -> type:
    """A TypedDict for one op: its own fields plus id, at and user, nothing else."""
    annotations = {
        "op": Required[Literal[op]],  # type: ignore[valid-type]
        "id": NotRequired[StrictStr],
        "at": NotRequired[StrictStr],
        "user": NotRequired[StrictStr],
        **fields,
    }
    schema = TypedDict(f"{op.capitalize()}Row", annotations, total=True)  # type: ignore[operator]
    schema.__pydantic_config__ = _STRICT  # type: ignore[attr-defined]
    return schema


_STREAM_FIELDS = {
    "product": Required[StrictStr],
    "store": NotRequired[StrictStr],
    "quantity": Required[Number],
}
ROW = TypeAdapter(
    Annotated[
        Union[
            _schema("add", **_STREAM_FIELDS, reason=NotRequired[StrictStr]),
            _schema("remove", **_STREAM_FIELDS, reason=NotRequired[StrictStr]),
            _schema("reserve", **_STREAM_FIELDS, customer=Required[StrictStr],
                    reservation_id=NotRequired[StrictStr]),
            _schema("count", **_STREAM_FIELDS),
            _schema("release", reservation_id=Required[StrictStr], reason=NotRequired[StrictStr],
                    store=NotRequired[StrictStr]),
            _schema("fulfill", reservation_id=Required[StrictStr], store=NotRequired[StrictStr]),
            _schema("transfer", product=Required[StrictStr], quantity=Required[Number],
                    **{"from": Required[StrictStr], "to": Required[StrictStr]},
                    transfer_id=NotRequired[StrictStr]),
            _schema("receive", transfer_id=Required[StrictStr], quantity=NotRequired[Number],
                    store=NotRequired[StrictStr]),
        ],
        Field(discriminator="op"),
    ]
)


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
        elif kind in ("model_type", "model_attributes_type", "dict_type") or not loc:
            messages.append("a row must be a JSON object with an 'op' field")
        else:
            messages.append(f"{field}: {item['msg'].lower()}")
    # A union of int|str reports both branches; keep each message once.
    return "; ".join(dict.fromkeys(messages))


def repeated_fields(raw: bytes | str, parsed: dict[str, Any] | None) -> list[str]:
    """The fields an NDJSON row gives more than once (JSON parsers keep the last silently).

    ``parsed`` is the row as validated (None: it did not validate). Without a
    backslash, every quote in the text delimits a key or a text value, so a valid
    row whose quotes are exactly those of its parsed keys and text values names
    each key once; any other row is parsed again, pair by pair.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if parsed is not None and b"\\" not in raw:
        quoted = len(parsed)
        for value in parsed.values():
            if value.__class__ is str:
                quoted += 1
        if raw.count(b'"') == 2 * quoted:
            return []
    repeated: list[str] = []

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen and key not in repeated:
                repeated.append(key)
            seen.add(key)
        return dict(items)

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except ValueError:
        return []  # not JSON: the row's validation says so
    return repeated


def repeated_fields_message(repeated: list[str]) -> str:
    return f"repeated field(s) {', '.join(map(repr, repeated))} in the object; give each field once"


class RowTranslator:
    """Turns validated rows into commands, caching the codes and quantities that repeat
    from row to row (value objects check each distinct value once).

    The values are checked by the value objects but kept as plain str and int: they
    go straight into SQL, where sqlite3 binds a subclass through an adapter lookup.
    """

    _CACHED_KINDS = (v.ProductCode, v.StoreCode, v.Reason, v.CustomerCode, v.Actor)
    MAX_CACHED_CODES = 20_000

    def __init__(self, default_store: str) -> None:
        self.default_store = v.StoreCode.checked(default_store)
        self._codes: dict[tuple[type, str], str] = {}
        self._quantities: dict[tuple[type, int | str], int] = {}

    def code(self, kind: type[v.Code], value: str) -> str:
        cached = self._codes.get((kind, value))
        if cached is None:
            cached = kind.checked(value)
            if kind in self._CACHED_KINDS:  # ids are unique: caching them only costs memory
                if len(self._codes) >= self.MAX_CACHED_CODES:
                    self._codes.clear()
                self._codes[(kind, value)] = cached
        return cached

    def quantity(self, kind: type[v.Quantity], value: int | str) -> int:
        cached = self._quantities.get((kind, value))
        if cached is None:
            cached = kind.checked(value)
            if len(self._quantities) >= self.MAX_CACHED_CODES:
                self._quantities.clear()
            self._quantities[(kind, value)] = cached
        return cached

    def command(self, row: dict[str, Any]) -> tuple[Command, str | None]:
        """The row's command and its actor (None: the import's own)."""
        try:
            user = row.get("user")
            return _TRANSLATORS[row["op"]](self, row), (None if user is None else self.code(v.Actor, user))
        except v.InvalidValue as error:
            raise BadRow(str(error)) from None
        except ValueError as error:  # a time that is not ISO-8601
            raise BadRow(f"at: {error}") from None

    # -- pieces shared by the ops ------------------------------------------------------

    def key_and_time(self, row: dict[str, Any]) -> tuple[str | None, str | None]:
        key, at = row.get("id"), row.get("at")
        return (
            None if key is None else v.IdempotencyKey.checked(key),  # unique: not worth caching
            None if at is None else parse_user_time(at),
        )

    def line(self, row: dict[str, Any], kind: type[v.Quantity] = v.Quantity) -> tuple[str, str, int]:
        """Store, product and quantity of a row that acts on one stock line."""
        store = row.get("store")
        return (
            self.default_store if store is None else self.code(v.StoreCode, store),
            self.code(v.ProductCode, row["product"]),
            self.quantity(kind, row["quantity"]),
        )

    def reason(self, row: dict[str, Any], default: str) -> str:
        reason = row.get("reason")
        return default if reason is None else self.code(v.Reason, reason)


# Positional arguments, not star-unpacking: these run once per imported row.
_new_tuple = tuple.__new__


def _add(t: RowTranslator, row: dict[str, Any]) -> Command:
    store, product, quantity = t.line(row)
    reason = t.reason(row, "received")
    key, at = t.key_and_time(row)
    return _new_tuple(AddStock, (store, product, quantity, reason, key, at))  # every field given


def _remove(t: RowTranslator, row: dict[str, Any]) -> Command:
    store, product, quantity = t.line(row)
    reason = t.reason(row, "sold")
    key, at = t.key_and_time(row)
    return _new_tuple(RemoveStock, (store, product, quantity, reason, key, at))


def _count(t: RowTranslator, row: dict[str, Any]) -> Command:
    store, product, counted = t.line(row, v.CountedQuantity)
    key, at = t.key_and_time(row)
    return CountStock(store, product, counted, key, at)


def _reserve(t: RowTranslator, row: dict[str, Any]) -> Command:
    key, at = t.key_and_time(row)
    store, product, quantity = t.line(row)
    chosen = chosen_id(row.get("reservation_id"), row.get("id"))
    return ReserveStock(
        store, product, quantity, t.code(v.CustomerCode, row["customer"]),
        None if chosen is None else t.code(v.ReservationId, chosen), key, at,
    )


def _release(t: RowTranslator, row: dict[str, Any]) -> Command:
    rid = t.code(v.ReservationId, row["reservation_id"])
    reason = t.reason(row, "released")
    key, at = t.key_and_time(row)
    return ReleaseReservation(rid, reason, key, at)


def _fulfill(t: RowTranslator, row: dict[str, Any]) -> Command:
    rid = t.code(v.ReservationId, row["reservation_id"])
    key, at = t.key_and_time(row)
    return FulfillReservation(rid, key, at)


def _transfer(t: RowTranslator, row: dict[str, Any]) -> Command:
    key, at = t.key_and_time(row)
    chosen = chosen_id(row.get("transfer_id"), row.get("id"))
    return TransferStock(
        t.code(v.ProductCode, row["product"]), t.quantity(v.Quantity, row["quantity"]),
        t.code(v.StoreCode, row["from"]), t.code(v.StoreCode, row["to"]),
        None if chosen is None else t.code(v.TransferId, chosen), key, at,
    )


def _receive(t: RowTranslator, row: dict[str, Any]) -> Command:
    transfer_id = t.code(v.TransferId, row["transfer_id"])
    quantity = row.get("quantity")
    counted = None if quantity is None else t.quantity(v.CountedQuantity, quantity)
    key, at = t.key_and_time(row)
    return ReceiveTransfer(transfer_id, counted, key, at)


_TRANSLATORS: dict[str, Callable[[RowTranslator, dict[str, Any]], Command]] = {
    "add": _add, "remove": _remove, "count": _count, "reserve": _reserve,
    "release": _release, "fulfill": _fulfill, "transfer": _transfer, "receive": _receive,
}
