"""The read side: stock from the projections, history and replay from the log."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from inventory_cli.domain.inventory import Inventory
from inventory_cli.storage.port import EventStore, RecordedEvent, StockLine


class HistoryEntry(NamedTuple):
    """An event with the balances of its stock line right after it."""

    recorded: RecordedEvent
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def stock(
    store: EventStore, store_code: str | None, product: str | None, *, low: bool = False
) -> list[StockLine]:
    """Current stock lines; ``store_code`` None means every store."""
    return store.stock_lines(store_code, product, low=low)


def history(
    store: EventStore,
    store_code: str,
    product: str,
    *,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
) -> Iterator[HistoryEntry]:
    """The product's events in order, each with the balances after it (a register).

    Entries come as the log is read: the first ones are there before the last is read.
    """
    info = store.stream(store_code, product, create=False)
    if info is None:
        return iter(())
    inventory = Inventory(store_code, product)
    return _register(store.read_stream(info.stream_id, until_time=until), lambda _: inventory, since, limit)


def store_history(
    store: EventStore,
    store_code: str,
    *,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
) -> Iterator[HistoryEntry]:
    """Every event of a store in log order, each with its line's balances after it."""
    inventories: dict[str, Inventory] = {}

    def inventory_of(recorded: RecordedEvent) -> Inventory:
        inventory = inventories.get(recorded.product)
        if inventory is None:
            inventory = inventories[recorded.product] = Inventory(store_code, recorded.product)
        return inventory

    return _register(store.read_log(store=store_code, until_time=until), inventory_of, since, limit)


def _register(
    events: Iterable[RecordedEvent],
    inventory_of: Callable[[RecordedEvent], Inventory],
    since: str | None,
    limit: int | None,
) -> Iterator[HistoryEntry]:
    """Fold the events into their lines' inventories; each entry carries the balances after it.

    Without ``limit`` the entries are yielded as they are folded; with it, only the
    latest ``limit`` are kept while folding from the start, then yielded.
    """
    entries = (
        HistoryEntry(recorded, inventory.on_hand, inventory.reserved)
        for recorded, inventory in _folded(events, inventory_of)
        if since is None or recorded.occurred_at >= since
    )
    return entries if limit is None else iter(deque(entries, maxlen=limit))


def _folded(
    events: Iterable[RecordedEvent], inventory_of: Callable[[RecordedEvent], Inventory]
) -> Iterator[tuple[RecordedEvent, Inventory]]:
    for recorded in events:
        inventory = inventory_of(recorded)
        inventory.apply(recorded.event)
        yield recorded, inventory


class LineChange(NamedTuple):
    """A stock line's figures at two points of the log."""

    store: str
    product: str
    before: StockLine | None
    after: StockLine | None

    def as_dict(self) -> dict[str, object]:
        document: dict[str, object] = {"store": self.store, "product": self.product}
        for name in ("on_hand", "reserved", "available", "incoming"):
            old = 0 if self.before is None else getattr(self.before, name)
            new = 0 if self.after is None else getattr(self.after, name)
            document[f"{name}_before"], document[f"{name}_after"] = old, new
            document[f"{name}_change"] = new - old
        return document


def diff(
    store: EventStore,
    store_code: str | None,
    product: str | None,
    *,
    from_position: int | None = None,
    to_position: int | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[LineChange]:
    """The stock lines whose figures differ between two points (positions or times)."""
    before = {
        (l.store, l.product): l
        for l in replay(store, store_code, product, position=from_position, until=since)
    }
    after = {
        (l.store, l.product): l
        for l in replay(store, store_code, product, position=to_position, until=until)
    }
    changes = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if _figures(old) != _figures(new):
            changes.append(LineChange(key[0], key[1], old, new))
    return changes


def _figures(line: StockLine | None) -> tuple[int, int, int]:
    return (0, 0, 0) if line is None else (line.on_hand, line.reserved, line.incoming)


def replay(
    store: EventStore,
    store_code: str | None,
    product: str | None,
    *,
    position: int | None = None,
    until: str | None = None,
) -> list[StockLine]:
    """Stock lines as they were at a position or a time, computed from the log alone."""
    return store.replay_lines(store_code, product, until_position=position, until_time=until)
