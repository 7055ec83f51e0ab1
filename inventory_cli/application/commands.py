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
# "op": keys sorted, no spaces, UTF-8 as is. Each command type gets its own hashing
# function, compiled once from an f-string of that text with each field's JSON in
# its place (as the encoder writes it), which spares building and sorting a dict,
# and a call per field, for every command.
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
_HASHERS: dict[type, Callable[[tuple], str]] = {}


def content_hash(command: Command) -> str:
    """The hash of what a command asks for, its key left out: a key used again for
    another content is a conflict."""
    hasher = _HASHERS.get(type(command))
    if hasher is None:
        hasher = _HASHERS[type(command)] = _compile_hasher(type(command))
    return hasher(command)


def _compile_hasher(kind: type) -> Callable[[tuple], str]:
    """content_hash for one command type (its fields are Python identifiers)."""
    fields: tuple[str, ...] = kind._fields  # type: ignore[attr-defined]
    parts = []
    for name in sorted([*(f for f in fields if f != "key"), "op"]):
        if name == "op":
            value = _CANONICAL.encode(OPS[kind]).replace("{", "{{").replace("}", "}}")
        else:  # exact str and int inline, anything else (and subclasses) as the encoder does
            value = (f'{{"null" if {name} is None else _text({name}) if {name}.__class__ is str'
                     f' else _int({name}) if {name}.__class__ is int else _json_value({name})}}')
        parts.append(f"{_CANONICAL.encode(name)}:{value}")
    source = (
        f"def content_hash(command):\n"
        f"    {', '.join(fields)}, = command\n"
        f"    return _sha256(f'{{{{{','.join(parts)}}}}}'.encode()).hexdigest()[:32]\n"
    )
    namespace = {"_text": encode_basestring, "_int": int.__repr__, "_json_value": _json_value,
                 "_sha256": hashlib.sha256}
    exec(source, namespace)  # noqa: S102 - built from the type's own field names
    return namespace["content_hash"]  # type: ignore[no-any-return]


def _json_value(value: object) -> str:
    """The JSON ``_CANONICAL`` writes for one value."""
    if isinstance(value, str):
        return encode_basestring(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int.__repr__(value)
    return _CANONICAL.encode(value)


def streams_named(command: Command) -> tuple[tuple[str, str], ...]:
    """The (store, product) streams a command names (those named by an id are found later)."""
    if type(command) is TransferStock:
        return ((command.from_store, command.product), (command.to_store, command.product))
    store = getattr(command, "store", None)
    return () if store is None else ((store, command.product),)  # type: ignore[union-attr]


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
