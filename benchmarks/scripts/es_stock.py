"""The eventsourcing aggregate of goal 6 and the PostgreSQL benchmark: one per product, one event per command."""

from __future__ import annotations

from uuid import NAMESPACE_URL, uuid5

from eventsourcing.domain import Aggregate, event


class Stock(Aggregate):
    @event("Opened")
    def __init__(self, product: str, quantity: int):
        self.product = product
        self.on_hand = quantity

    @staticmethod
    def create_id(product: str, quantity: int = 0):
        return uuid5(NAMESPACE_URL, "/stock/main/" + product)

    @event("Added")
    def add(self, quantity: int) -> None:
        self.on_hand += quantity

    def remove(self, quantity: int) -> None:
        if quantity > self.on_hand:
            raise ValueError("insufficient stock")
        self._removed(quantity)

    @event("Removed")
    def _removed(self, quantity: int) -> None:
        self.on_hand -= quantity
