"""Running one write command: a transaction, bounded retries, and the answer."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from inventory_cli.application.commands import Command
from inventory_cli.application.errors import RetriesExhausted
from inventory_cli.application.write_session import Outcome, WriteSession, reservation_touched
from inventory_cli.domain.errors import ConcurrencyConflict
from inventory_cli.domain.inventory import Inventory, Reservation
from inventory_cli.storage.port import EventStore, KeyRecord, StockLine
from inventory_cli.timestamps import utc_now

MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class WriteResult:
    line: StockLine
    position: int
    reservation: Reservation | None
    duplicate: bool = False


def run_command(
    store: EventStore,
    command: Command,
    actor: str = "unknown",
    clock: Callable[[], str] = utc_now,
) -> WriteResult:
    """Decide and append one command in its own transaction, retrying on conflicts."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            with store.write():
                session = WriteSession(store, clock(), actor)
                outcome = session.execute(command)
                if outcome.duplicate_of is not None:
                    return answer_for_key(store, outcome.duplicate_of)
                session.flush()
            return _result(outcome)
        except ConcurrencyConflict:
            time.sleep(min(0.5, 0.01 * 2**attempt) * random.uniform(0.5, 1.5))
    raise RetriesExhausted(
        f"The write kept conflicting with other writers after {MAX_ATTEMPTS} attempts."
    )


def _result(outcome: Outcome) -> WriteResult:
    assert outcome.stream is not None
    return WriteResult(outcome.stream.line(), outcome.position, outcome.reservation)


def answer_for_key(store: EventStore, record: KeyRecord) -> WriteResult:
    """The answer the command with this key gave when it ran: replayed from the log."""
    info = store.stream_by_id(record.stream_id)
    inventory = Inventory(info.store, info.product)
    reservation = None
    recorded_at = ""
    for recorded in store.read_stream(record.stream_id, until_position=record.position):
        if recorded.position == record.position:
            reservation = reservation_touched(inventory, recorded.event)
        inventory.apply(recorded.event)
        recorded_at = recorded.recorded_at
    line = StockLine(
        info.store, info.product, inventory.on_hand, inventory.reserved, inventory.version, recorded_at
    )
    return WriteResult(line, record.position, reservation, duplicate=True)
