"""The read side: stock from the projections, history and replay from the log."""

from __future__ import annotations

from dataclasses import dataclass

from inventory_cli.domain.inventory import Inventory
from inventory_cli.storage.port import EventStore, RecordedEvent, StockLine


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """An event with the balances of its stock line right after it."""

    recorded: RecordedEvent
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def stock(store: EventStore | None, store_code: str | None, product: str | None) -> list[StockLine]:
    """Current stock lines; ``store_code`` None means every store."""
    if store is None:
        return []
    return store.stock_lines(store_code, product)


def history(
    store: EventStore | None,
    store_code: str,
    product: str,
    *,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
) -> list[HistoryEntry]:
    """The product's events in order, each with the balances after it (a register)."""
    if store is None:
        return []
    info = store.stream(store_code, product, create=False)
    if info is None:
        return []
    inventory = Inventory(store_code, product)
    entries = []
    for recorded in store.read_stream(info.stream_id, until_time=until):
        inventory.apply(recorded.event)
        if since is None or recorded.occurred_at >= since:
            entries.append(HistoryEntry(recorded, inventory.on_hand, inventory.reserved))
    if limit is not None:
        entries = entries[-limit:] if limit else []
    return entries


def replay(
    store: EventStore | None,
    store_code: str | None,
    product: str | None,
    *,
    position: int | None = None,
    until: str | None = None,
) -> list[StockLine]:
    """Stock lines as they were at a position or a time, computed from the log alone."""
    if store is None:
        return []
    return store.replay_lines(store_code, product, until_position=position, until_time=until)
