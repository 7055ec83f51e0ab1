"""The unit of work: one write transaction, any number of commands.

A session keeps every stream it touched in memory (so an import of many rows
loads each stream once), decides each command against its aggregate, and on
``flush`` hands the new events and stock lines to storage in one call. It is
used inside ``EventStore.write()``; the caller commits or rolls back.
"""

from __future__ import annotations

import secrets
from typing import NamedTuple

from inventory_cli.application.commands import (
    AddStock,
    Command,
    CountStock,
    FulfillReservation,
    ReleaseReservation,
    RemoveStock,
    ReserveStock,
    content_hash,
)
from inventory_cli.domain.errors import (
    IdempotencyConflict,
    InvalidValue,
    OccurredAtOutOfOrder,
    ReservationIdTaken,
    UnknownReservation,
)
from inventory_cli.domain.events import (
    Event,
    ReservationFulfilled,
    StockReleased,
    StockReserved,
)
from inventory_cli.domain.inventory import Inventory, Reservation
from inventory_cli.storage.port import EventStore, KeyRecord, NewEvent, StockLine, StreamInfo


class _Stream:
    __slots__ = ("info", "inventory", "last_occurred_at", "updated_at")

    def __init__(self, info: StreamInfo, inventory: Inventory, last_occurred_at: str, updated_at: str):
        self.info = info
        self.inventory = inventory
        self.last_occurred_at = last_occurred_at
        self.updated_at = updated_at

    def line(self) -> StockLine:
        inv = self.inventory
        return StockLine(inv.store, inv.product, inv.on_hand, inv.reserved, inv.version, self.updated_at)


class Outcome(NamedTuple):
    """What one command did, or the record of the earlier command with the same key."""

    position: int
    stream: _Stream | None = None
    reservation: Reservation | None = None
    duplicate_of: KeyRecord | None = None


class WriteSession:
    def __init__(self, store: EventStore, now: str, actor: str = "unknown") -> None:
        self._store = store
        self._now = now
        self.actor = actor
        self._position = store.head_position()
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._streams_by_id: dict[int, _Stream] = {}
        self._touched: dict[int, _Stream] = {}
        self._keys: dict[str, KeyRecord] = {}
        self._new_reservations: dict[str, int] = {}
        self.pending: list[NewEvent] = []

    # -- commands -------------------------------------------------------------------

    def execute(self, command: Command, actor: str | None = None) -> Outcome:
        """Decide one command. A refusal raises and leaves the session unchanged.

        ``actor`` overrides the session's actor for this command (an import row's user).
        """
        key = command.key
        if key is None and type(command) is ReserveStock:
            key = command.reservation_id  # a chosen reservation id is the key too
        command_hash = None
        if key is not None:
            command_hash = content_hash(command)
            earlier = self._keys.get(key) or self._store.find_key(key)
            if earlier is not None:
                if earlier.command_hash != command_hash:
                    raise IdempotencyConflict(
                        f"The id {key!r} was already used for a different command; "
                        "use a new --id for a new operation."
                    )
                return Outcome(position=earlier.position, duplicate_of=earlier)

        stream = self._stream_for(command)
        occurred_at = self._occurred_at(stream, command.at)
        event, reservation = self._DECIDERS[type(command)](self, stream, command)
        position = self._position = self._position + 1
        stream.last_occurred_at = occurred_at
        stream.updated_at = self._now
        stream_id = stream.info.stream_id
        self._touched[stream_id] = stream
        self.pending.append(
            NewEvent(
                stream_id,
                position,
                stream.inventory.version,
                event,
                occurred_at,
                self._now,
                key,
                command_hash,
                actor or self.actor,
            )
        )
        if key is not None:
            self._keys[key] = KeyRecord(key, command_hash, stream_id, position)  # type: ignore[arg-type]
        return Outcome(position, stream, reservation)

    # One decider per command type: (event, reservation touched or None).

    def _add(self, stream: _Stream, command: AddStock) -> tuple[Event, None]:
        return stream.inventory.add(command.quantity, command.reason), None

    def _remove(self, stream: _Stream, command: RemoveStock) -> tuple[Event, None]:
        return stream.inventory.remove(command.quantity, command.reason), None

    def _count(self, stream: _Stream, command: CountStock) -> tuple[Event, None]:
        return stream.inventory.count(command.quantity), None

    def _reserve(self, stream: _Stream, command: ReserveStock) -> tuple[Event, Reservation]:
        reservation_id = command.reservation_id or self._new_reservation_id()
        self._require_unused_reservation_id(reservation_id)
        event = stream.inventory.reserve(command.quantity, reservation_id, command.customer)
        self._new_reservations[reservation_id] = stream.info.stream_id
        return event, Reservation(reservation_id, command.quantity, command.customer)

    def _release(self, stream: _Stream, command: ReleaseReservation) -> tuple[Event, Reservation | None]:
        reservation = stream.inventory.open.get(command.reservation_id)
        return stream.inventory.release(command.reservation_id, command.reason), reservation

    def _fulfill(self, stream: _Stream, command: FulfillReservation) -> tuple[Event, Reservation | None]:
        reservation = stream.inventory.open.get(command.reservation_id)
        return stream.inventory.fulfill(command.reservation_id), reservation

    _DECIDERS = {
        AddStock: _add,
        RemoveStock: _remove,
        CountStock: _count,
        ReserveStock: _reserve,
        ReleaseReservation: _release,
        FulfillReservation: _fulfill,
    }

    def flush(self) -> None:
        """Hand the pending events and the touched stock lines to storage."""
        if self.pending:
            self._store.append(
                self.pending, [(sid, s.line()) for sid, s in self._touched.items()]
            )
        self.pending = []
        self._touched = {}
        # Written in the open transaction: storage answers for them from now on.
        self._keys.clear()
        self._new_reservations.clear()

    def discard_pending(self) -> None:
        """Forget the pending events (they will never be written), keeping the state."""
        self.pending = []

    # -- helpers --------------------------------------------------------------------

    def _stream_for(self, command: Command) -> _Stream:
        if isinstance(command, (ReleaseReservation, FulfillReservation)):
            rid = command.reservation_id
            stream_id = self._new_reservations.get(rid) or self._store.find_reservation_stream(rid)
            if stream_id is None:
                raise UnknownReservation(
                    f"No reservation {rid!r} exists. Check the id that reserve printed."
                )
            cached = self._streams_by_id.get(stream_id)
            return cached or self._load(self._store.stream_by_id(stream_id))
        cached = self._streams.get((command.store, command.product))
        if cached is not None:
            return cached
        info = self._store.stream(command.store, command.product, create=True)
        assert info is not None
        return self._load(info)

    def _load(self, info: StreamInfo) -> _Stream:
        inventory = Inventory(info.store, info.product)
        last_occurred_at = updated_at = ""
        for recorded in self._store.read_stream(info.stream_id):
            inventory.apply(recorded.event)
            last_occurred_at, updated_at = recorded.occurred_at, recorded.recorded_at
        stream = _Stream(info, inventory, last_occurred_at, updated_at)
        self._streams[(info.store, info.product)] = stream
        self._streams_by_id[info.stream_id] = stream
        return stream

    def _occurred_at(self, stream: _Stream, at: str | None) -> str:
        if at is None:
            # The clock may have been set back; never date an event before its stream's last.
            return max(self._now, stream.last_occurred_at)
        if at > self._now:
            raise InvalidValue(f"'at' {at} is in the future; give the time the change happened.")
        if at < stream.last_occurred_at:
            raise OccurredAtOutOfOrder(
                f"'at' {at} is before the latest event of {stream.info.product!r} in store "
                f"{stream.info.store!r} ({stream.last_occurred_at}); events of one product "
                "must be recorded in the order they happened."
            )
        return at

    def _new_reservation_id(self) -> str:
        while True:
            candidate = "R-" + secrets.token_hex(4).upper()
            if candidate not in self._new_reservations and (
                self._store.find_reservation_stream(candidate) is None
            ):
                return candidate

    def _require_unused_reservation_id(self, reservation_id: str) -> None:
        if reservation_id in self._new_reservations or (
            self._store.find_reservation_stream(reservation_id) is not None
        ):
            raise ReservationIdTaken(
                f"Reservation id {reservation_id!r} is already used by another reservation; "
                "choose another --id."
            )


def reservation_touched(before: Inventory, event: Event) -> Reservation | None:
    """The reservation an event creates or closes, as it was before the event."""
    if isinstance(event, StockReserved):
        return Reservation(event.reservation_id, event.quantity, event.customer)
    if isinstance(event, (StockReleased, ReservationFulfilled)):
        return before.open.get(event.reservation_id)
    return None
