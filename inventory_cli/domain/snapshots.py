"""An Inventory's state as JSON text, and the aggregate restored from it (pure).

A snapshot holds what deciding needs and the log would otherwise give only by
folding every event: balances, version, reorder point, open reservations,
transfers on their way in and those already received. The ids of closed
reservations are left out: they are what ``Inventory.forget_closed`` drops too,
and the reservations projection answers for them (``recall_closed``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from inventory_cli.domain.events import Event
from inventory_cli.domain.inventory import Inventory, Reservation

SNAPSHOT_FORMAT = 1

# A stream gets a snapshot once it has grown by this many events since its last one,
# so that a writer folds at most about this many events to decide.
SNAPSHOT_EVERY = 1000

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def snapshot_state(inventory: Inventory) -> dict[str, Any]:
    """The aggregate's state as plain JSON values (lists keep the order reservations were made)."""
    return {
        "format": SNAPSHOT_FORMAT,
        "version": inventory.version,
        "on_hand": inventory.on_hand,
        "reserved": inventory.reserved,
        "incoming": inventory.incoming,
        "reorder_point": inventory.reorder_point,
        "open": [list(r) for r in inventory.open.values()],
        "expected": [[t, q] for t, q in inventory.expected.items()],
        "received": sorted(inventory.received),
    }


def snapshot_text(inventory: Inventory) -> str:
    return _ENCODER.encode(snapshot_state(inventory))


def restore(store: str, product: str, text: str) -> Inventory | None:
    """The aggregate a snapshot describes; None when the text is not a snapshot this code reads."""
    try:
        state = json.loads(text)
        if state.get("format") != SNAPSHOT_FORMAT:
            return None
        inventory = Inventory(store, product)
        inventory.version = int(state["version"])
        inventory.on_hand = int(state["on_hand"])
        inventory.reserved = int(state["reserved"])
        inventory.incoming = int(state["incoming"])
        inventory.reorder_point = state["reorder_point"]
        for reservation_id, quantity, customer, expires_at in state["open"]:
            inventory.open[reservation_id] = Reservation(reservation_id, quantity, customer, expires_at)
            inventory.expiring += expires_at is not None
        inventory.expected = {t: q for t, q in state["expected"]}
        inventory.received = set(state["received"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return inventory


def resume(store: str, product: str, text: str | None, version: int, events: Iterable[Event]) -> Inventory | None:
    """The aggregate from a snapshot at ``version`` (none: from nothing) and the events
    after it; None when the snapshot is not one this code reads, or not at ``version``."""
    if text is None:
        return Inventory.from_events(store, product, events)
    inventory = restore(store, product, text)
    if inventory is None or inventory.version != version:
        return None
    for event in events:
        inventory.apply(event)
    return inventory
