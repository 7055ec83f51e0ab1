"""The Inventory aggregate: the stock of one product in one store.

Its methods decide (and raise a RuleViolation without touching the state) or
record new events, which they apply at once. ``Inventory.from_events`` folds a
stream; replay and the projections use the same ``apply``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, TypeVar

from inventory_cli.domain.errors import (
    CountBelowReserved,
    InsufficientStock,
    InvalidTransfer,
    NotRevertible,
    ReservationClosed,
    ReservationIdTaken,
    TransferClosed,
    UnknownReservation,
    UnknownTransfer,
)
from inventory_cli.domain.events import (
    Event,
    ProductDefined,
    ReservationFulfilled,
    StockAdded,
    StockCounted,
    StockReleased,
    StockRemoved,
    StockReserved,
    TransferAnnounced,
    TransferLost,
    TransferReceived,
    TransferShipped,
)

_E = TypeVar("_E", bound=Event)
REVERTIBLE = (StockAdded, StockRemoved, StockCounted)
EXPIRED = "expired"


class Reservation(NamedTuple):
    reservation_id: str
    quantity: int
    customer: str
    expires_at: str | None = None


def reservation_id_taken(reservation_id: str) -> ReservationIdTaken:
    """The refusal of a reservation id already in use: ids are unique across all stores."""
    return ReservationIdTaken(
        f"Reservation id {reservation_id!r} is already used by another reservation; "
        "choose another --id."
    )


def require_other_store(from_store: str, to_store: str) -> None:
    """A transfer goes from one store to another."""
    if to_store == from_store:
        raise InvalidTransfer(
            f"Cannot transfer from store {from_store!r} to itself; give another --to."
        )


class Inventory:
    """Stock of one store + product. Invariants: 0 <= reserved <= on_hand, incoming >= 0."""

    __slots__ = (
        "store", "product", "on_hand", "reserved", "incoming", "version", "reorder_point",
        "open", "closed", "expected", "received", "expiring",
    )

    def __init__(self, store: str, product: str) -> None:
        self.store = store
        self.product = product
        self.on_hand = 0
        self.reserved = 0
        self.incoming = 0
        self.version = 0
        self.reorder_point: int | None = None
        self.open: dict[str, Reservation] = {}
        self.closed: dict[str, str] = {}  # reservation id -> "released" | "fulfilled"
        self.expected: dict[str, int] = {}  # transfer id -> units on their way here
        self.received: set[str] = set()
        self.expiring = 0  # open reservations that have an expiry

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
        self.require_available(quantity, "remove")
        return self._record(StockRemoved(quantity, reason))

    def reserve(
        self, quantity: int, reservation_id: str, customer: str, expires_at: str | None = None
    ) -> StockReserved:
        if reservation_id in self.open or reservation_id in self.closed:
            raise reservation_id_taken(reservation_id)
        self.require_available(quantity, "reserve")
        return self._record(StockReserved(quantity, reservation_id, customer, expires_at))

    def release(self, reservation_id: str, reason: str) -> StockReleased:
        reservation = self._open_reservation(reservation_id)
        return self._record(StockReleased(reservation.quantity, reservation_id, reason))

    def fulfill(self, reservation_id: str) -> ReservationFulfilled:
        reservation = self._open_reservation(reservation_id)
        return self._record(ReservationFulfilled(reservation.quantity, reservation_id))

    def overdue(self, now: str) -> list[Reservation]:
        """The open reservations whose expiry is at or before ``now``, soonest first."""
        if not self.expiring:
            return []
        return sorted(
            (r for r in self.open.values() if r.expires_at is not None and r.expires_at <= now),
            key=lambda r: r.expires_at,  # type: ignore[arg-type, return-value]
        )

    def count(self, counted: int) -> StockCounted:
        if counted < self.reserved:
            raise CountBelowReserved(
                f"Cannot count {counted:,} of {self.product!r} in store {self.store!r}: "
                f"{self.reserved:,} {'unit is' if self.reserved == 1 else 'units are'} reserved. "
                "Release or fulfil reservations first."
            )
        return self._record(StockCounted(counted - self.on_hand, counted))

    def ship(self, quantity: int, transfer_id: str, to_store: str) -> TransferShipped:
        require_other_store(self.store, to_store)
        self.require_available(quantity, "transfer")
        return self._record(TransferShipped(quantity, transfer_id, to_store))

    def announce(self, quantity: int, transfer_id: str, from_store: str) -> TransferAnnounced:
        return self._record(TransferAnnounced(quantity, transfer_id, from_store))

    def receive(self, transfer_id: str, quantity: int | None = None) -> list[Event]:
        """Book a transfer in: the units received, and any shortfall as lost."""
        expected = self.expected.get(transfer_id)
        if expected is None:
            if transfer_id in self.received:
                raise TransferClosed(f"Transfer {transfer_id!r} was already received; nothing to do.")
            raise UnknownTransfer(
                f"No open transfer {transfer_id!r} to store {self.store!r} for {self.product!r}."
            )
        if quantity is None:
            quantity = expected
        if quantity > expected:
            raise InvalidTransfer(
                f"Cannot receive {quantity:,} units of transfer {transfer_id!r}: only {expected:,} "
                f"{'was' if expected == 1 else 'were'} shipped."
            )
        events: list[Event] = []
        if quantity:  # a receipt of nothing records only the loss
            events.append(self._record(TransferReceived(quantity, transfer_id)))
        if quantity < expected:
            events.append(self._record(TransferLost(expected - quantity, transfer_id)))
        return events

    def define(self, name: str | None, reorder_point: int | None) -> ProductDefined:
        return self._record(ProductDefined(0, name, reorder_point))

    def revert(self, mistaken: Event, position: int, reason: str) -> Event:
        """The opposite movement of a mistaken add, remove or count (at ``position`` of
        this stream): a StockRemoved, a StockAdded, or a count back by the same difference."""
        if not isinstance(mistaken, REVERTIBLE):
            raise NotRevertible(
                f"The event at position {position} is a {type(mistaken).__name__}; only StockAdded, "
                "StockRemoved and StockCounted can be reverted (undo a reservation with release, "
                "a transfer with a receipt)."
            )
        if mistaken.reverts is not None:
            raise NotRevertible(
                f"The event at position {position} is itself the revert of position "
                f"{mistaken.reverts}; record the movement again instead."
            )
        change = mistaken.on_hand_sign * mistaken.quantity  # what it did to on_hand
        if not self.reserved <= self.on_hand - change:
            raise NotRevertible(
                f"Cannot revert position {position} of {self.product!r} in store {self.store!r}: "
                f"on hand would be {self.on_hand - change:,} with {self.reserved:,} reserved. "
                "Release or fulfil reservations first."
            )
        if isinstance(mistaken, StockAdded):
            return self._record(StockRemoved(mistaken.quantity, reason, position))
        if isinstance(mistaken, StockRemoved):
            return self._record(StockAdded(mistaken.quantity, reason, position))
        return self._record(StockCounted(-change, self.on_hand - change, position))

    # -- evolution -------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one event into the state (used for new and for stored events)."""
        self.on_hand += event.on_hand_sign * event.quantity
        self.version += 1
        if event.reserved_sign:  # only reservation events move `reserved`
            self.reserved += event.reserved_sign * event.quantity
            if isinstance(event, StockReserved):
                self.open[event.reservation_id] = Reservation(
                    event.reservation_id, event.quantity, event.customer, event.expires_at
                )
                self.expiring += event.expires_at is not None
            else:
                closing = self.open.pop(event.reservation_id)  # type: ignore[union-attr]
                self.expiring -= closing.expires_at is not None
                self.closed[event.reservation_id] = (  # type: ignore[union-attr]
                    "released" if isinstance(event, StockReleased) else "fulfilled"
                )
        elif event.incoming_sign:
            self.incoming += event.incoming_sign * event.quantity
            transfer_id = event.transfer_id  # type: ignore[union-attr]
            if isinstance(event, TransferAnnounced):
                self.expected[transfer_id] = event.quantity
            else:
                remaining = self.expected.pop(transfer_id) - event.quantity
                if remaining:
                    self.expected[transfer_id] = remaining
                else:
                    self.received.add(transfer_id)
        elif isinstance(event, ProductDefined) and event.reorder_point is not None:
            self.reorder_point = event.reorder_point

    def forget_closed(self) -> None:
        """Drop the closed reservations from memory once they are stored.

        A long import would otherwise keep every closed id of every stream it
        touched; ``recall_closed`` brings one back before a decision needs it.
        """
        self.closed.clear()

    def recall_closed(self, reservation_id: str, status: str) -> None:
        """Know again that a stored reservation was closed ("released" or "fulfilled")."""
        if reservation_id not in self.open:
            self.closed[reservation_id] = status

    def _record(self, event: _E) -> _E:
        self.apply(event)
        return event

    def require_available(self, quantity: int, verb: str) -> None:
        if quantity > self.available:
            raise InsufficientStock(
                f"Cannot {verb} {quantity:,} of {self.product!r} in store {self.store!r}: "
                f"only {self.available:,} available ({self.on_hand:,} on hand, "
                f"{self.reserved:,} reserved)."
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
