"""Commands: what a user asks for, validated, as frozen dataclasses.

``content_hash`` fingerprints a command for idempotency keys: the operation and
its fields, not the key itself, the actor or the time it was sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from typing import ClassVar, Union


@dataclass(frozen=True, slots=True)
class AddStock:
    op: ClassVar[str] = "add"
    store: str
    product: str
    quantity: int
    reason: str = "received"
    key: str | None = None
    at: str | None = None


@dataclass(frozen=True, slots=True)
class RemoveStock:
    op: ClassVar[str] = "remove"
    store: str
    product: str
    quantity: int
    reason: str = "sold"
    key: str | None = None
    at: str | None = None


@dataclass(frozen=True, slots=True)
class ReserveStock:
    """``reservation_id`` is also the idempotency key when the user chose it."""

    op: ClassVar[str] = "reserve"
    store: str
    product: str
    quantity: int
    customer: str
    reservation_id: str | None = None
    key: str | None = None
    at: str | None = None


@dataclass(frozen=True, slots=True)
class ReleaseReservation:
    op: ClassVar[str] = "release"
    reservation_id: str
    reason: str = "released"
    key: str | None = None
    at: str | None = None


@dataclass(frozen=True, slots=True)
class FulfillReservation:
    op: ClassVar[str] = "fulfill"
    reservation_id: str
    key: str | None = None
    at: str | None = None


@dataclass(frozen=True, slots=True)
class CountStock:
    op: ClassVar[str] = "count"
    store: str
    product: str
    quantity: int
    key: str | None = None
    at: str | None = None


Command = Union[
    AddStock, RemoveStock, ReserveStock, ReleaseReservation, FulfillReservation, CountStock
]
StreamCommand = Union[AddStock, RemoveStock, ReserveStock, CountStock]
RESERVATION_COMMANDS = (ReleaseReservation, FulfillReservation)


def content_hash(command: Command) -> str:
    content = {"op": command.op}
    for field in fields(command):
        if field.name != "key":
            content[field.name] = getattr(command, field.name)
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def idempotency_key(command: Command) -> str | None:
    """The key a command is deduplicated by: ``--id``, or a chosen reservation id."""
    if command.key is not None:
        return command.key
    if isinstance(command, ReserveStock):
        return command.reservation_id
    return None
