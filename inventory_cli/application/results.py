"""What a write command answers: its stock line, the last position written, and
the typed details some commands add (a reservation, a shipment, a receipt).

``command_details`` reads the details off a command's last event(s); the session
uses it for a new command and ``answer_for_key`` for a repeated one, so both
answer the same document. ``fields()`` gives each kind's JSON keys in the
contract's order.
"""

from __future__ import annotations

from typing import NamedTuple, Union

from inventory_cli.domain.events import (
    Event,
    ReservationFulfilled,
    StockReleased,
    StockReserved,
    TransferLost,
    TransferReceived,
    TransferShipped,
)
from inventory_cli.domain.inventory import Inventory
from inventory_cli.storage.port import StockLine


class ReservationDetails(NamedTuple):
    """reserve, release, fulfill: the reservation and its units."""

    reservation_id: str
    quantity: int
    customer: str | None
    expires_at: str | None = None  # a reservation made with --ttl

    def fields(self) -> dict[str, object]:
        document: dict[str, object] = {
            "reservation_id": self.reservation_id, "quantity": self.quantity, "customer": self.customer,
        }
        if self.expires_at is not None:
            document["expires_at"] = self.expires_at
        return document


class TransferDetails(NamedTuple):
    """transfer: the units shipped and where they go."""

    transfer_id: str
    quantity: int
    from_store: str
    to_store: str

    def fields(self) -> dict[str, object]:
        return {"transfer_id": self.transfer_id, "quantity": self.quantity,
                "from": self.from_store, "to": self.to_store}


class ReceiptDetails(NamedTuple):
    """receive: the units booked in and those recorded as lost."""

    transfer_id: str
    quantity: int
    lost: int

    def fields(self) -> dict[str, object]:
        return {"transfer_id": self.transfer_id, "quantity": self.quantity, "lost": self.lost}


Details = Union[ReservationDetails, TransferDetails, ReceiptDetails]


class WriteResult(NamedTuple):
    """The affected stock line, the last position written, and what the command adds.

    ``duplicate``: the command's key was used before; this is that command's answer.
    """

    line: StockLine
    position: int
    details: Details | None = None
    duplicate: bool = False

    def as_json(self) -> dict[str, object]:
        """The ``--json`` document: the line, ``position``, then the details' fields."""
        document = self.line.as_dict()
        document["position"] = self.position
        if self.details is not None:
            document.update(self.details.fields())
        return document


def command_details(
    last: Event, previous: Event | None, store: str, customer: str | None = None
) -> Details | None:
    """The details a command's answer adds, from its last event (and the one before).

    ``store`` is the stream's store; ``customer`` the one of a released or fulfilled
    reservation, looked up (``customer_of``) before the event closed it.
    """
    if isinstance(last, StockReserved):
        return ReservationDetails(last.reservation_id, last.quantity, last.customer, last.expires_at)
    if isinstance(last, (StockReleased, ReservationFulfilled)):
        return ReservationDetails(last.reservation_id, last.quantity, customer)
    if isinstance(last, TransferShipped):
        return TransferDetails(last.transfer_id, last.quantity, store, last.to_store)
    if isinstance(last, TransferReceived):
        return ReceiptDetails(last.transfer_id, last.quantity, 0)
    if isinstance(last, TransferLost):
        same = isinstance(previous, TransferReceived) and previous.transfer_id == last.transfer_id
        received = previous.quantity if same else 0  # type: ignore[union-attr]
        return ReceiptDetails(last.transfer_id, received, last.quantity)
    return None


def customer_of(inventory: Inventory, reservation_id: str) -> str | None:
    """The customer of an open reservation (None once it is closed)."""
    reservation = inventory.open.get(reservation_id)
    return None if reservation is None else reservation.customer
