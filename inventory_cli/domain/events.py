"""Domain events: facts in the past tense about one stream (a store + product).

Each event type says how its ``quantity`` moves the balances of its stream (a
sign of -1, 0 or 1 for on_hand, reserved and incoming), so the aggregate's fold
and the SQL that replays or rebuilds in bulk share one definition of every
event's effect. Optional fields left at None are not stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Union


class _Effect:
    """How an event's quantity moves the balances; every sign is 0 unless said."""

    __slots__ = ()
    on_hand_sign: ClassVar[int] = 0
    reserved_sign: ClassVar[int] = 0
    incoming_sign: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class StockAdded(_Effect):
    on_hand_sign: ClassVar[int] = 1

    quantity: int
    reason: str


@dataclass(frozen=True, slots=True)
class StockRemoved(_Effect):
    on_hand_sign: ClassVar[int] = -1

    quantity: int
    reason: str


@dataclass(frozen=True, slots=True)
class StockReserved(_Effect):
    reserved_sign: ClassVar[int] = 1

    quantity: int
    reservation_id: str
    customer: str
    expires_at: str | None = None


@dataclass(frozen=True, slots=True)
class StockReleased(_Effect):
    """A reservation's units go back to available (reason ``expired`` when it ran out)."""

    reserved_sign: ClassVar[int] = -1

    quantity: int
    reservation_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReservationFulfilled(_Effect):
    on_hand_sign: ClassVar[int] = -1
    reserved_sign: ClassVar[int] = -1

    quantity: int
    reservation_id: str


@dataclass(frozen=True, slots=True)
class StockCounted(_Effect):
    """A physical count. ``quantity`` is the signed difference, ``counted`` the new on_hand."""

    on_hand_sign: ClassVar[int] = 1

    quantity: int
    counted: int


@dataclass(frozen=True, slots=True)
class TransferShipped(_Effect):
    """Units leave this store for another (the sending side of a transfer)."""

    on_hand_sign: ClassVar[int] = -1

    quantity: int
    transfer_id: str
    to_store: str


@dataclass(frozen=True, slots=True)
class TransferAnnounced(_Effect):
    """Units are on their way to this store: they count as incoming until received."""

    incoming_sign: ClassVar[int] = 1

    quantity: int
    transfer_id: str
    from_store: str


@dataclass(frozen=True, slots=True)
class TransferReceived(_Effect):
    on_hand_sign: ClassVar[int] = 1
    incoming_sign: ClassVar[int] = -1

    quantity: int
    transfer_id: str


@dataclass(frozen=True, slots=True)
class TransferLost(_Effect):
    """The part of a transfer that did not arrive, recorded at the receiving store."""

    incoming_sign: ClassVar[int] = -1

    quantity: int
    transfer_id: str
    reason: str = "lost in transit"


@dataclass(frozen=True, slots=True)
class ProductDefined(_Effect):
    """A product's name (for every store) or its reorder point (for this store)."""

    quantity: int = 0
    name: str | None = None
    reorder_point: int | None = None


Event = Union[
    StockAdded,
    StockRemoved,
    StockReserved,
    StockReleased,
    ReservationFulfilled,
    StockCounted,
    TransferShipped,
    TransferAnnounced,
    TransferReceived,
    TransferLost,
    ProductDefined,
]

EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        StockAdded,
        StockRemoved,
        StockReserved,
        StockReleased,
        ReservationFulfilled,
        StockCounted,
        TransferShipped,
        TransferAnnounced,
        TransferReceived,
        TransferLost,
        ProductDefined,
    )
}

_PAYLOAD_FIELDS = {
    cls: tuple(name for name in cls.__slots__ if name != "quantity") for cls in EVENT_TYPES.values()
}


def event_data(event: Event) -> dict[str, object]:
    """The fields of an event other than ``quantity``: the JSON payload stored in the log."""
    data = {}
    for name in _PAYLOAD_FIELDS[type(event)]:
        value = getattr(event, name)
        if value is not None:
            data[name] = value
    return data


def event_from_record(type_name: str, quantity: int, data: dict[str, object]) -> Event:
    """Rebuild an event from its stored type, quantity and payload."""
    try:
        cls = EVENT_TYPES[type_name]
    except KeyError:
        raise ValueError(f"unknown event type {type_name!r} in the log") from None
    return cls(quantity=quantity, **data)
