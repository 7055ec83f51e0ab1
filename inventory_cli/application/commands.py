"""Commands: what a user asks for, validated, as immutable named tuples.

(Named tuples rather than frozen dataclasses: an import builds one per row, and
they are several times cheaper to create.)

``content_hash`` fingerprints a command for idempotency keys: the operation and
its fields, not the key itself, the actor or the time it was sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from operator import itemgetter
from typing import NamedTuple, Union


class AddStock(NamedTuple):
    store: str
    product: str
    quantity: int
    reason: str = "received"
    key: str | None = None
    at: str | None = None


class RemoveStock(NamedTuple):
    store: str
    product: str
    quantity: int
    reason: str = "sold"
    key: str | None = None
    at: str | None = None


class ReserveStock(NamedTuple):
    """``reservation_id`` is also the idempotency key when the user chose it."""

    store: str
    product: str
    quantity: int
    customer: str
    reservation_id: str | None = None
    key: str | None = None
    at: str | None = None
    ttl_seconds: int | None = None


class ReleaseReservation(NamedTuple):
    reservation_id: str
    reason: str = "released"
    key: str | None = None
    at: str | None = None


class FulfillReservation(NamedTuple):
    reservation_id: str
    key: str | None = None
    at: str | None = None


class CountStock(NamedTuple):
    store: str
    product: str
    quantity: int
    key: str | None = None
    at: str | None = None


class TransferStock(NamedTuple):
    """``transfer_id`` is also the idempotency key when the user chose it."""

    product: str
    quantity: int
    from_store: str
    to_store: str
    transfer_id: str | None = None
    key: str | None = None
    at: str | None = None


class ReceiveTransfer(NamedTuple):
    """``quantity`` None means everything that was shipped."""

    transfer_id: str
    quantity: int | None = None
    key: str | None = None
    at: str | None = None


class DefineProduct(NamedTuple):
    store: str
    product: str
    name: str | None = None
    reorder_point: int | None = None
    key: str | None = None
    at: str | None = None


class RevertEvent(NamedTuple):
    """Correct the add, remove or count at log ``position`` with its opposite movement."""

    position: int
    reason: str = "correction"
    key: str | None = None
    at: str | None = None


Command = Union[
    AddStock,
    RemoveStock,
    ReserveStock,
    ReleaseReservation,
    FulfillReservation,
    CountStock,
    TransferStock,
    ReceiveTransfer,
    DefineProduct,
    RevertEvent,
]


OPS: dict[type, str] = {
    AddStock: "add",
    RemoveStock: "remove",
    ReserveStock: "reserve",
    ReleaseReservation: "release",
    FulfillReservation: "fulfill",
    CountStock: "count",
    TransferStock: "transfer",
    ReceiveTransfer: "receive",
    DefineProduct: "product",
    RevertEvent: "revert",
}


# The canonical text of a command is stored (as its hash) with its key: it must never
# change. It is the JSON of an object of the command's fields (the key left out) and
# "op": keys sorted, no spaces, UTF-8 as is. Each command type gets a template of
# that text with a slot per field, filled with the same JSON the encoder writes for
# each value, which spares building and sorting a dict per command.
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
_LAYOUTS: dict[type, tuple[str, Callable[[tuple], tuple]]] = {}


def content_hash(command: Command) -> str:
    """The hash of what a command asks for, its key left out: a key used again for
    another content is a conflict."""
    layout = _LAYOUTS.get(type(command))
    if layout is None:
        layout = _LAYOUTS[type(command)] = _layout(type(command))
    template, fields = layout
    text = template % tuple(map(_json_value, fields(command)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _layout(kind: type) -> tuple[str, Callable[[tuple], tuple]]:
    """The command type's canonical text with a ``%s`` per field, and the fields' getter."""
    names = sorted([*(f for f in kind._fields if f != "key"), "op"])  # type: ignore[attr-defined]
    parts, indexes = [], []
    for name in names:
        if name == "op":
            value = _CANONICAL.encode(OPS[kind]).replace("%", "%%")
        else:
            value = "%s"
            indexes.append(kind._fields.index(name))  # type: ignore[attr-defined]
        parts.append(f"{_CANONICAL.encode(name)}:{value}")
    getter = itemgetter(*indexes)
    fields = getter if len(indexes) > 1 else (lambda command: (getter(command),))
    return "{" + ",".join(parts) + "}", fields


def _json_value(value: object, _text=encode_basestring, _int=int.__repr__) -> str:
    """The JSON ``_CANONICAL`` writes for one value (codes, numbers and None inline)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return _int(value)
    return _CANONICAL.encode(value)


def idempotency_key(command: Command) -> str | None:
    """The key a command is deduplicated by: its ``--id``, else the reservation or
    transfer id the user chose (run once per command: an import calls it per row)."""
    key = command.key
    if key is None:
        kind = type(command)
        if kind is ReserveStock:
            return command.reservation_id  # type: ignore[union-attr]
        if kind is TransferStock:
            return command.transfer_id  # type: ignore[union-attr]
    return key


def chosen_id(named: str | None, key: str | None) -> str | None:
    """The reservation or transfer id a user chose: the one named, else an ``id`` given
    alone (as ``reserve --id`` names the reservation and is its key)."""
    return key if named is None else named
