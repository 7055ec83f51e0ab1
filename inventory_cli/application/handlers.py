"""Running one write command: a transaction, bounded retries, and the answer."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from inventory_cli.application.commands import Command, streams_named
from inventory_cli.application.errors import RetriesExhausted
from inventory_cli.application.results import WriteResult, command_details, customer_of
from inventory_cli.application.write_session import Outcome, WriteSession
from inventory_cli.domain.events import Event, ReservationFulfilled, StockReleased
from inventory_cli.domain.inventory import Inventory
from inventory_cli.storage.port import ConcurrencyConflict, EventStore, KeyRecord, StockLine

MAX_ATTEMPTS = 5


def run_command(
    store: EventStore,
    command: Command,
    actor: str = "unknown",
    clock: Callable[[], str] | None = None,
) -> WriteResult:
    """Decide and append one command in its own transaction, retrying on conflicts.

    The time is ``clock()``, or the store's (a server's clock where there is one).
    """
    for attempt in range(MAX_ATTEMPTS):
        try:
            with store.write(streams_named(command)):
                session = WriteSession(store, (clock or store.now)(), actor)
                outcome = session.execute(command)
                if outcome.duplicate_of is not None:
                    return answer_for_key(store, outcome.duplicate_of)
                session.flush()
                result = _result(store, outcome)
            # Known once committed where storage assigns positions at commit (PostgreSQL).
            return result._replace(position=result.position + store.position_shift())
        except ConcurrencyConflict:
            _back_off(attempt)
    raise _exhausted()


def _back_off(attempt: int) -> None:
    time.sleep(min(0.5, 0.01 * 2**attempt) * random.uniform(0.5, 1.5))


def _exhausted() -> RetriesExhausted:
    return RetriesExhausted(
        f"The write kept conflicting with other writers after {MAX_ATTEMPTS} attempts."
    )


def run_expiry(store: EventStore, actor: str = "unknown", clock: Callable[[], str] | None = None) -> int:
    """Release every overdue reservation of every store, each exactly once; the number released."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            with store.write(bulk=True):  # any number of streams
                session = WriteSession(store, (clock or store.now)(), actor)
                released = sum(
                    session.expire_overdue(stream_id) for stream_id in store.overdue_streams(session.now)
                )
                session.flush()
            return released
        except ConcurrencyConflict:
            _back_off(attempt)
    raise _exhausted()


def _result(store: EventStore, outcome: Outcome) -> WriteResult:
    assert outcome.stream is not None
    stream = outcome.stream
    line = stream.line(store.product_name(stream.info.product))
    return WriteResult(line, outcome.position, outcome.details)


def answer_for_key(store: EventStore, record: KeyRecord) -> WriteResult:
    """The answer the command with this key gave when it ran: replayed from the log."""
    info = store.stream_by_id(record.stream_id)
    inventory = Inventory(info.store, info.product)
    last: Event | None = None
    details = None
    recorded_at = ""
    for recorded in store.read_stream(record.stream_id, until_position=record.position):
        event = recorded.event
        if recorded.position == record.position:
            closes = isinstance(event, (StockReleased, ReservationFulfilled))
            customer = customer_of(inventory, event.reservation_id) if closes else None  # type: ignore[union-attr]
            details = command_details(event, last, info.store, customer)
        inventory.apply(event)
        last = event
        recorded_at = recorded.recorded_at
    line = StockLine(
        info.store, info.product, inventory.on_hand, inventory.reserved, inventory.version,
        recorded_at, inventory.incoming, inventory.reorder_point, store.product_name(info.product),
    )
    return WriteResult(line, record.position, details, duplicate=True)
