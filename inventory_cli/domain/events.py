"""Domain events: facts in the past tense about one stream (a store + product).

Each event type says how its ``quantity`` moves the balances of its stream (a
sign of -1, 0 or 1 for on_hand, reserved and incoming), so the aggregate's fold
and the SQL that replays or rebuilds in bulk share one definition of every
event's effect. Optional fields left at None are not stored.

Events are immutable named tuples (an import creates one per row, and they are
several times cheaper than frozen dataclasses); two events are equal only when
they are of the same type.
"""

# No `from __future__ import annotations` here: typing.NamedTuple turns each string
# annotation into a ForwardRef, compiled when the class is made, at every start.

from collections.abc import Callable
from typing import NamedTuple, TypeVar, Union, get_args

_T = TypeVar("_T")


def _effect(on_hand: int = 0, reserved: int = 0, incoming: int = 0) -> Callable[[_T], _T]:
    """Attach the signs of an event type's effect, and type-aware equality."""

    def decorate(cls):  # type: ignore[no-untyped-def]
        cls.on_hand_sign, cls.reserved_sign, cls.incoming_sign = on_hand, reserved, incoming
        cls.__eq__ = lambda a, b: type(a) is type(b) and tuple.__eq__(a, b)
        cls.__ne__ = lambda a, b: not cls.__eq__(a, b)
        cls.__hash__ = lambda a: hash((type(a).__name__, tuple(a)))
        return cls

    return decorate


@_effect(on_hand=1)
class StockAdded(NamedTuple):
    quantity: int
    reason: str
    reverts: int | None = None  # the position of the mistaken event this one corrects


@_effect(on_hand=-1)
class StockRemoved(NamedTuple):
    quantity: int
    reason: str
    reverts: int | None = None


@_effect(reserved=1)
class StockReserved(NamedTuple):
    quantity: int
    reservation_id: str
    customer: str
    expires_at: str | None = None


@_effect(reserved=-1)
class StockReleased(NamedTuple):
    """A reservation's units go back to available (reason ``expired`` when it ran out)."""

    quantity: int
    reservation_id: str
    reason: str


@_effect(on_hand=-1, reserved=-1)
class ReservationFulfilled(NamedTuple):
    quantity: int
    reservation_id: str


@_effect(on_hand=1)
class StockCounted(NamedTuple):
    """A physical count. ``quantity`` is the signed difference, ``counted`` the new on_hand."""

    quantity: int
    counted: int
    reverts: int | None = None


@_effect(on_hand=-1)
class TransferShipped(NamedTuple):
    """Units leave this store for another (the sending side of a transfer)."""

    quantity: int
    transfer_id: str
    to_store: str


@_effect(incoming=1)
class TransferAnnounced(NamedTuple):
    """Units are on their way to this store: they count as incoming until received."""

    quantity: int
    transfer_id: str
    from_store: str


@_effect(on_hand=1, incoming=-1)
class TransferReceived(NamedTuple):
    quantity: int
    transfer_id: str


@_effect(incoming=-1)
class TransferLost(NamedTuple):
    """The part of a transfer that did not arrive, recorded at the receiving store."""

    quantity: int
    transfer_id: str
    reason: str = "lost in transit"


@_effect()
class ProductDefined(NamedTuple):
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

EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in get_args(Event)}


def event_data(event: Event) -> dict[str, object]:
    """The fields of an event other than ``quantity`` (always first): its stored payload."""
    return {
        name: value for name, value in zip(event._fields[1:], event[1:]) if value is not None
    }


def event_from_record(type_name: str, quantity: int, data: dict[str, object]) -> Event:
    """Rebuild an event from its stored type, quantity and payload."""
    try:
        cls = EVENT_TYPES[type_name]
    except KeyError:
        raise ValueError(f"unknown event type {type_name!r} in the log") from None
    return cls(quantity=quantity, **data)
