"""The Inventory aggregate: the stock of one product in one store.

Its methods decide (and raise a RuleViolation without touching the state) or
record new events, which they apply at once. ``Inventory.from_events`` folds a
stream; replay and the projections use the same ``apply``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from inventory_cli.domain.errors import (
    CountBelowReserved,
    InsufficientStock,
    ReservationClosed,
    ReservationIdTaken,
    UnknownReservation,
)
from inventory_cli.domain.events import (
    Event,
    ReservationFulfilled,
    StockAdded,
    StockCounted,
    StockReleased,
    StockRemoved,
    StockReserved,
)

_E = TypeVar("_E", bound=Event)


@dataclass(frozen=True, slots=True)
class Reservation:
    reservation_id: str
    quantity: int
    customer: str


class Inventory:
    """Stock of one store + product. Invariant: 0 <= reserved <= on_hand."""

    __slots__ = ("store", "product", "on_hand", "reserved", "version", "open", "closed")

    def __init__(self, store: str, product: str) -> None:
        self.store = store
        self.product = product
        self.on_hand = 0
        self.reserved = 0
        self.version = 0
        self.open: dict[str, Reservation] = {}
        self.closed: dict[str, str] = {}  # reservation id -> "released" | "fulfilled"

    @classmethod
    def from_events(cls, store: str, product: str, events: Iterable[Event]) -> Inventory:
        inventory = cls(store, product)
        for event in events:
            inventory.apply(event)
        return inventory

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    # -- decisions -------------------------------------------------------------

    def add(self, quantity: int, reason: str) -> StockAdded:
        return self._record(StockAdded(quantity, reason))

    def remove(self, quantity: int, reason: str) -> StockRemoved:
        self._require_available(quantity, "remove")
        return self._record(StockRemoved(quantity, reason))

    def reserve(self, quantity: int, reservation_id: str, customer: str) -> StockReserved:
        if reservation_id in self.open or reservation_id in self.closed:
            raise ReservationIdTaken(
                f"Reservation id {reservation_id!r} is already used; choose another --id."
            )
        self._require_available(quantity, "reserve")
        return self._record(StockReserved(quantity, reservation_id, customer))

    def release(self, reservation_id: str, reason: str) -> StockReleased:
        reservation = self._open_reservation(reservation_id)
        return self._record(StockReleased(reservation.quantity, reservation_id, reason))

    def fulfill(self, reservation_id: str) -> ReservationFulfilled:
        reservation = self._open_reservation(reservation_id)
        return self._record(ReservationFulfilled(reservation.quantity, reservation_id))

    def count(self, counted: int) -> StockCounted:
        if counted < self.reserved:
            raise CountBelowReserved(
                f"Cannot count {counted} of {self.product!r} in store {self.store!r}: "
                f"{self.reserved} units are reserved. Release or fulfil reservations first."
            )
        return self._record(StockCounted(counted - self.on_hand, counted))

    # -- evolution -------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one event into the state (used for new and for stored events)."""
        self.on_hand += event.on_hand_sign * event.quantity
        self.version += 1
        if event.reserved_sign:  # only reservation events move `reserved`
            self.reserved += event.reserved_sign * event.quantity
            if isinstance(event, StockReserved):
                self.open[event.reservation_id] = Reservation(
                    event.reservation_id, event.quantity, event.customer
                )
            else:
                del self.open[event.reservation_id]  # type: ignore[union-attr]
                self.closed[event.reservation_id] = (  # type: ignore[union-attr]
                    "released" if isinstance(event, StockReleased) else "fulfilled"
                )

    def _record(self, event: _E) -> _E:
        self.apply(event)
        return event

    def _require_available(self, quantity: int, verb: str) -> None:
        if quantity > self.available:
            raise InsufficientStock(
                f"Cannot {verb} {quantity} of {self.product!r} in store {self.store!r}: "
                f"only {self.available} available ({self.on_hand} on hand, "
                f"{self.reserved} reserved)."
            )

    def _open_reservation(self, reservation_id: str) -> Reservation:
        reservation = self.open.get(reservation_id)
        if reservation is not None:
            return reservation
        if reservation_id in self.closed:
            raise ReservationClosed(
                f"Reservation {reservation_id!r} is already {self.closed[reservation_id]}; "
                "nothing to do."
            )
        raise UnknownReservation(
            f"No reservation {reservation_id!r} in store {self.store!r} for {self.product!r}."
        )
