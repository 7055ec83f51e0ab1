"""Restore: read a stream written by ``export`` and check it line by line.

Each line must be an exported event; positions must run 1, 2, 3, … without a
gap, and each event's hash must chain to the previous one (storage/chain.py).
The events are yielded as they are checked, so storage can write them inside
one transaction: the first bad line raises ``BrokenStream`` and the transaction
rolls back, leaving nothing written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from inventory_cli.domain.events import event_from_record
from inventory_cli.storage.port import GENESIS, RecordedEvent, event_hash

_TEXT_FIELDS = ("store", "product", "type", "data", "occurred_at", "recorded_at", "actor", "hash")
_INT_FIELDS = ("position", "version", "quantity")


class BrokenStream(ValueError):
    """A line that is not an exported event, a gap in positions, or a broken chain (exit 65)."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}. Nothing was restored.")
        self.line = line


def checked_events(lines: Iterable[str | bytes]) -> Iterator[RecordedEvent]:
    """The exported events of ``lines``, checked; blank lines are skipped."""
    previous, expected_position = GENESIS, 1
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            document = json.loads(raw)
        except ValueError:
            raise BrokenStream(number, "not a JSON object (give the output of `inventory export`)") from None
        recorded = _recorded(number, document)
        if recorded.position != expected_position:
            raise BrokenStream(
                number, f"position {recorded.position} where {expected_position} was expected (a gap or a reordering)"
            )
        computed = event_hash(
            previous, recorded.position, recorded.store, recorded.product, recorded.version,
            type(recorded.event).__name__, recorded.event.quantity, recorded.data,  # type: ignore[arg-type]
            recorded.occurred_at, recorded.recorded_at, recorded.actor, recorded.idempotency_key,
        )
        if computed != recorded.hash:
            raise BrokenStream(number, f"the hash of position {recorded.position} does not chain (the chain is broken)")
        previous, expected_position = computed, expected_position + 1
        yield recorded


def _recorded(number: int, document: object) -> RecordedEvent:
    if not isinstance(document, dict):
        raise BrokenStream(number, "not a JSON object (give the output of `inventory export`)")
    for name in _TEXT_FIELDS:
        if not isinstance(document.get(name), str):
            raise BrokenStream(number, f"field {name!r} is missing or not a string")
    for name in _INT_FIELDS:
        value = document.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise BrokenStream(number, f"field {name!r} is missing or not a whole number")
    key = document.get("idempotency_key")
    if key is not None and not isinstance(key, str):
        raise BrokenStream(number, "field 'idempotency_key' is not a string")
    try:
        payload = json.loads(document["data"])
        event = event_from_record(document["type"], document["quantity"], payload)
    except (ValueError, TypeError) as error:
        raise BrokenStream(number, f"the event cannot be read ({error})") from None
    return RecordedEvent(
        document["position"], document["version"], document["store"], document["product"], event,
        document["occurred_at"], document["recorded_at"], document["actor"], key, document["hash"],
        document["data"],
    )
