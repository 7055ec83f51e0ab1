"""Commands: what a user asks for, validated, as immutable named tuples.

(Named tuples rather than frozen dataclasses: an import builds one per row, and
they are several times cheaper to create.)

``content_hash`` fingerprints a command for idempotency keys: the operation and
its fields, not the key itself, the actor or the time it was sent.
"""

from __future__ import annotations

import hashlib
import json
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
# change. Keys sorted, no spaces, UTF-8 as is; built once per command type, and one
# encoder for all (json.dumps with options builds a new encoder at every call).
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
_LAYOUTS: dict[type, tuple[str, tuple[str, ...]]] = {}


def content_hash(command: Command) -> str:
    """The hash of what a command asks for, its key left out: a key used again for
    another content is a conflict."""
    kind = type(command)
    layout = _LAYOUTS.get(kind)
    if layout is None:
        names = tuple(sorted([*(f for f in kind._fields if f != "key"), "op"]))
        layout = _LAYOUTS[kind] = (OPS[kind], names)
    op, names = layout
    content = {name: op if name == "op" else getattr(command, name) for name in names}
    return hashlib.sha256(_CANONICAL.encode(content).encode()).hexdigest()[:32]


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
