"""Domain events: facts in the past tense about one stream (a store + product).

Each event type says how its ``quantity`` moves the two balances (a sign of -1, 0
or 1 for on_hand and for reserved), so the aggregate's fold and the SQL that
replays or rebuilds in bulk share one definition of every event's effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Union


@dataclass(frozen=True, slots=True)
class StockAdded:
    on_hand_sign: ClassVar[int] = 1
    reserved_sign: ClassVar[int] = 0

    quantity: int
    reason: str


@dataclass(frozen=True, slots=True)
class StockRemoved:
    on_hand_sign: ClassVar[int] = -1
    reserved_sign: ClassVar[int] = 0

    quantity: int
    reason: str


@dataclass(frozen=True, slots=True)
class StockReserved:
    on_hand_sign: ClassVar[int] = 0
    reserved_sign: ClassVar[int] = 1

    quantity: int
    reservation_id: str
    customer: str


@dataclass(frozen=True, slots=True)
class StockReleased:
    on_hand_sign: ClassVar[int] = 0
    reserved_sign: ClassVar[int] = -1

    quantity: int
    reservation_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReservationFulfilled:
    on_hand_sign: ClassVar[int] = -1
    reserved_sign: ClassVar[int] = -1

    quantity: int
    reservation_id: str


@dataclass(frozen=True, slots=True)
class StockCounted:
    """A physical count. ``quantity`` is the signed difference, ``counted`` the new on_hand."""

    on_hand_sign: ClassVar[int] = 1
    reserved_sign: ClassVar[int] = 0

    quantity: int
    counted: int


Event = Union[
    StockAdded, StockRemoved, StockReserved, StockReleased, ReservationFulfilled, StockCounted
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
    )
}


_PAYLOAD_FIELDS = {
    cls: tuple(name for name in cls.__slots__ if name != "quantity") for cls in EVENT_TYPES.values()
}


def event_data(event: Event) -> dict[str, object]:
    """The fields of an event other than ``quantity``: the JSON payload stored in the log."""
    return {name: getattr(event, name) for name in _PAYLOAD_FIELDS[type(event)]}


def event_from_record(type_name: str, quantity: int, data: dict[str, object]) -> Event:
    """Rebuild an event from its stored type, quantity and payload."""
    try:
        cls = EVENT_TYPES[type_name]
    except KeyError:
        raise ValueError(f"unknown event type {type_name!r} in the log") from None
    return cls(quantity=quantity, **data)


