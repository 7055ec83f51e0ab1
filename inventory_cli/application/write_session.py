"""The unit of work: one write transaction, any number of commands.

A session keeps every stream it touched in memory (so an import of many rows
loads each stream once), decides each command against its aggregates, and on
``flush`` hands the new events and stock lines to storage in one call. It is
used inside ``EventStore.write()``; the caller commits or rolls back.

Before a command acts on a stream, the stream's overdue reservations are
released (reason ``expired``) in the same transaction, so the counter never
waits for the nightly ``expire``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from inventory_cli.application.clock import warn_if_behind
from inventory_cli.application.commands import (
    AddStock,
    Command,
    CountStock,
    DefineProduct,
    FulfillReservation,
    ReceiveTransfer,
    ReleaseReservation,
    RemoveStock,
    ReserveStock,
    RevertEvent,
    TransferStock,
    content_hash,
    idempotency_key,
)
from inventory_cli.application.results import Details, command_details, customer_of
from inventory_cli.domain.errors import (
    IdempotencyConflict,
    InvalidTransfer,
    InvalidValue,
    NotRevertible,
    OccurredAtOutOfOrder,
    UnknownReservation,
    UnknownTransfer,
)
from inventory_cli.domain.events import Event
from inventory_cli.domain.inventory import (
    EXPIRED,
    Inventory,
    require_other_store,
    reservation_id_taken,
)
from inventory_cli.domain.snapshots import SNAPSHOT_EVERY, resume, snapshot_text
from inventory_cli.storage.port import EventStore, KeyRecord, LoadedStream, NewEvent, StockLine, StreamInfo


class _Stream:
    __slots__ = ("info", "inventory", "version", "last_occurred_at", "updated_at", "snapshot_version")

    def __init__(self, info: StreamInfo, inventory: Inventory, last_occurred_at: str, snapshot_version: int):
        self.info = info
        self.inventory = inventory
        self.version = inventory.version  # of its last event emitted (or stored)
        self.last_occurred_at = last_occurred_at
        self.updated_at = ""  # set when the session emits: only touched streams give lines
        self.snapshot_version = snapshot_version  # of the stored snapshot it came from (0: none)

    def line(self, name: str | None = None) -> StockLine:
        inv = self.inventory
        return StockLine(
            inv.store, inv.product, inv.on_hand, inv.reserved, inv.version, self.updated_at,
            inv.incoming, inv.reorder_point, name,
        )


class Stamp(NamedTuple):
    """What a command's events are recorded with besides themselves.

    Expiries a command triggers are facts of their own: no key, no hash, the command's actor.
    """

    key: str | None
    command_hash: str | None
    actor: str


class Outcome(NamedTuple):
    """What one command did, or the record of the earlier command with the same key."""

    position: int
    stream: _Stream | None = None
    details: Details | None = None
    duplicate_of: KeyRecord | None = None


_new_tuple = tuple.__new__

# A decider's answer: the events it decided, already applied to their aggregates,
# in log order, each with its stream and time; then the details of the answer.
# The command's last event is on the stream whose line answers it.
# (Plain tuples: a decider runs once per imported row.)
Decided = tuple[tuple[tuple[_Stream, Event, str], ...], Details | None]


class WriteSession:
    # Streams kept in memory between flushes; beyond this many, they are reloaded
    # from the log on their next use, so memory stays flat over huge catalogues.
    MAX_CACHED_STREAMS = 10_000

    def __init__(self, store: EventStore, now: str, actor: str = "unknown") -> None:
        self._store = store
        self.actor = actor
        self._unkeyed = Stamp(None, None, actor)
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._streams_by_id: dict[int, _Stream] = {}
        self.begin(now)

    def begin(self, now: str) -> None:
        """Start deciding in a new write transaction (the session may outlive one).

        Streams kept from an earlier transaction are checked against the log
        before their next use: another writer may have appended in between.
        """
        self._now = self.now = now
        self._position = self._store.head_position()
        self._touched: dict[int, _Stream] = {}
        self._keys: dict[str, KeyRecord] = {}
        self._found_keys: dict[str, KeyRecord] = {}  # from prefetch_keys
        self._absent_keys: set[str] = set()
        self._new_reservations: dict[str, int] = {}
        self._new_transfers: dict[str, int] = {}  # transfer id -> receiving stream id
        self._reverted: dict[int, int] = {}  # position reverted -> position of its revert, not yet flushed
        self.pending: list[NewEvent] = []
        self._verified: set[int] = set()

    # -- commands -------------------------------------------------------------------

    def execute(self, command: Command, actor: str | None = None) -> Outcome:
        """Decide one command; a refusal raises before the command records anything.

        ``actor`` overrides the session's actor for this command (an import row's user).
        """
        actor = actor or self.actor
        key = idempotency_key(command)
        # tuple.__new__ skips the named tuples' Python-level __new__: once per imported row.
        if key is None:
            stamp = self._unkeyed if actor is self.actor else Stamp(None, None, actor)
        else:
            stamp = _new_tuple(Stamp, (key, content_hash(command), actor))
            earlier = self._keys.get(key)
            if earlier is None and key not in self._absent_keys:
                earlier = self._found_keys.get(key) or self._store.find_key(key)
            if earlier is not None:
                if earlier.command_hash and earlier.command_hash != stamp.command_hash:  # "": restored
                    raise IdempotencyConflict(
                        f"The id {key!r} was already used for a different command; "
                        "use a new --id for a new operation."
                    )
                return Outcome(position=earlier.position, duplicate_of=earlier)
        events, details = self._DECIDERS[type(command)](self, command, actor)
        for stream, event, occurred_at in events:
            self._emit(stream, event, occurred_at, stamp)
        # `stream` is now the one of the command's last event: its line answers.
        if key is not None:
            self._keys[key] = _new_tuple(KeyRecord, (key, stamp[1], stream.info.stream_id, self._position))  # type: ignore[arg-type]
            self._absent_keys.discard(key)
        return _new_tuple(Outcome, (self._position, stream, details, None))

    def prefetch_keys(self, keys: list[str]) -> None:
        """Look the next commands' idempotency keys up in one query (an import's rows)."""
        wanted = [key for key in keys if key not in self._keys]
        self._found_keys = self._store.find_keys(wanted)
        self._absent_keys = set(wanted) - self._found_keys.keys()

    def prefetch_streams(self, keys: list[tuple[str, str]]) -> None:
        """Open the next commands' new streams in one call (an import's rows)."""
        wanted = [key for key in dict.fromkeys(keys) if key not in self._streams]
        for loaded in self._store.open_streams(wanted).values():
            self._remember(loaded)

    def expire_overdue(self, stream_id: int) -> int:
        """Release the stream's overdue reservations; the number released."""
        before = len(self.pending)
        self._expire(self._by_id(stream_id), self._now, self.actor)
        return len(self.pending) - before

    # One decider per command type; each receives the command's actor (for the
    # expiries it triggers) and refuses by raising before it changes anything.

    def _add(self, c: AddStock, actor: str) -> Decided:
        stream, at = self._prepare(c.store, c.product, c.at, actor)
        return ((stream, stream.inventory.add(c.quantity, c.reason), at),), None

    def _remove(self, c: RemoveStock, actor: str) -> Decided:
        stream, at = self._prepare(c.store, c.product, c.at, actor)
        return ((stream, stream.inventory.remove(c.quantity, c.reason), at),), None

    def _count(self, c: CountStock, actor: str) -> Decided:
        stream, at = self._prepare(c.store, c.product, c.at, actor)
        return ((stream, stream.inventory.count(c.quantity), at),), None

    def _define(self, c: DefineProduct, actor: str) -> Decided:
        stream, at = self._prepare(c.store, c.product, c.at, actor)
        return ((stream, stream.inventory.define(c.name, c.reorder_point), at),), None

    def _reserve(self, c: ReserveStock, actor: str) -> Decided:
        stream, at = self._prepare(c.store, c.product, c.at, actor)
        reservation_id = c.reservation_id
        if reservation_id is None:
            reservation_id = self._new_id("R-", self._reservation_exists)
        elif self._reservation_exists(reservation_id):
            raise reservation_id_taken(reservation_id)
        expires_at = None if c.ttl_seconds is None else _plus_seconds(at, c.ttl_seconds)
        event = stream.inventory.reserve(c.quantity, reservation_id, c.customer, expires_at)
        self._new_reservations[reservation_id] = stream.info.stream_id
        return ((stream, event, at),), command_details(event, None, stream.info.store)

    def _release(self, c: ReleaseReservation, actor: str) -> Decided:
        stream, at = self._reservation_stream(c.reservation_id, c.at, actor)
        customer = customer_of(stream.inventory, c.reservation_id)
        event = stream.inventory.release(c.reservation_id, c.reason)
        return ((stream, event, at),), command_details(event, None, stream.info.store, customer)

    def _fulfill(self, c: FulfillReservation, actor: str) -> Decided:
        stream, at = self._reservation_stream(c.reservation_id, c.at, actor)
        customer = customer_of(stream.inventory, c.reservation_id)
        event = stream.inventory.fulfill(c.reservation_id)
        return ((stream, event, at),), command_details(event, None, stream.info.store, customer)

    def _transfer(self, c: TransferStock, actor: str) -> Decided:
        require_other_store(c.from_store, c.to_store)  # before either stream is touched
        # Both streams held in one fixed order: opposite transfers cannot deadlock.
        self._store.lock_streams(sorted({(c.from_store, c.product), (c.to_store, c.product)}))
        source, at = self._prepare(c.from_store, c.product, c.at, actor)
        target, target_at = self._prepare(c.to_store, c.product, c.at, actor)
        transfer_id = c.transfer_id
        if transfer_id is None:
            transfer_id = self._new_id("T-", self._transfer_exists)
        elif self._transfer_exists(transfer_id):
            raise InvalidTransfer(f"Transfer id {transfer_id!r} is already used; choose another --id.")
        source.inventory.require_available(c.quantity, "transfer")  # before the receiving side changes
        # The receiving side first, so that the command's last event is the shipment.
        announced = target.inventory.announce(c.quantity, transfer_id, c.from_store)
        shipped = source.inventory.ship(c.quantity, transfer_id, c.to_store)
        self._new_transfers[transfer_id] = target.info.stream_id
        return (
            ((target, announced, target_at), (source, shipped, at)),
            command_details(shipped, None, c.from_store),
        )

    def _receive(self, c: ReceiveTransfer, actor: str) -> Decided:
        stream_id = self._new_transfers.get(c.transfer_id) or self._store.find_transfer_stream(c.transfer_id)
        if stream_id is None:
            raise UnknownTransfer(f"No transfer {c.transfer_id!r} exists. Check the id that transfer printed.")
        stream = self._by_id(stream_id)
        at = self._occurred_at(stream, c.at)
        self._expire(stream, at, actor)
        events = stream.inventory.receive(c.transfer_id, c.quantity)
        previous = events[-2] if len(events) > 1 else None
        return (
            tuple((stream, event, at) for event in events),
            command_details(events[-1], previous, stream.info.store),
        )

    def _revert(self, c: RevertEvent, actor: str) -> Decided:
        found = self._store.event_at(c.position)
        if found is None:
            raise NotRevertible(f"No event at position {c.position}; `inventory history` shows the positions.")
        stream_id, recorded = found
        later = self._reverted.get(c.position) or self._store.revert_of(stream_id, c.position)
        if later is not None:
            raise NotRevertible(f"The event at position {c.position} was already reverted (at position {later}).")
        stream = self._by_id(stream_id)
        at = self._occurred_at(stream, c.at)
        self._expire(stream, at, actor)
        event = stream.inventory.revert(recorded.event, c.position, c.reason)
        self._reverted[c.position] = self._position + 1
        return ((stream, event, at),), None

    _DECIDERS: dict[type, Callable[[WriteSession, Command, str], Decided]] = {
        AddStock: _add,
        RemoveStock: _remove,
        CountStock: _count,
        DefineProduct: _define,
        ReserveStock: _reserve,
        ReleaseReservation: _release,
        FulfillReservation: _fulfill,
        TransferStock: _transfer,
        ReceiveTransfer: _receive,
        RevertEvent: _revert,
    }  # type: ignore[dict-item]

    def flush(self, *, final: bool = True) -> None:
        """Hand the pending events, and the touched stock lines, to storage.

        An import flushes every few thousand rows with ``final=False``: the stock
        lines, which only readers need, are then written once at the end (or when
        many streams are waiting), not again at every flush.
        """
        write_lines = final or len(self._touched) > self.MAX_CACHED_STREAMS
        lines = [(sid, s.line()) for sid, s in self._touched.items()] if write_lines else []
        if self.pending or lines:
            self._store.append(self.pending, lines)
            self._store.write_snapshots(self._due_snapshots())
            for stream in self._touched.values():
                stream.inventory.forget_closed()  # stored now: memory stays flat over long imports
        self.pending = []
        if write_lines:
            self._touched = {}
        # Written in the open transaction: storage answers for them from now on.
        self._keys.clear()
        self._new_reservations.clear()
        self._new_transfers.clear()
        self._reverted.clear()
        if len(self._streams) > self.MAX_CACHED_STREAMS and not self._touched:
            self._streams.clear()
            self._streams_by_id.clear()
            self._verified.clear()

    def _due_snapshots(self) -> list[tuple[int, int, str]]:
        """Snapshots of the touched streams that grew by SNAPSHOT_EVERY events since their last."""
        due = []
        for stream_id, stream in self._touched.items():
            inventory = stream.inventory
            if inventory.version - stream.snapshot_version >= SNAPSHOT_EVERY:
                due.append((stream_id, inventory.version, snapshot_text(inventory)))
                stream.snapshot_version = inventory.version
        return due

    def discard_pending(self) -> None:
        """Forget the pending events (they will never be written), keeping the state."""
        self.pending = []

    # -- helpers --------------------------------------------------------------------

    def _emit(self, stream: _Stream, event: Event, occurred_at: str, stamp: Stamp) -> None:
        """Queue one event the stream's aggregate has applied, at the next position."""
        self._position = position = self._position + 1
        stream.version = version = stream.version + 1
        stream.last_occurred_at = occurred_at
        stream.updated_at = now = self._now
        stream_id = stream.info.stream_id
        self._touched[stream_id] = stream
        # tuple.__new__ skips the named tuple's Python-level __new__: this runs once per imported event.
        self.pending.append(_new_tuple(NewEvent, (
            stream_id, position, version, event, occurred_at, now,
            stamp.key, stamp.command_hash, stamp.actor,
        )))

    def _prepare(self, store: str, product: str, at: str | None, actor: str) -> tuple[_Stream, str]:
        """The stream (loaded once, overdue reservations released) and the event time."""
        stream = self._streams.get((store, product))
        if stream is None or stream.info.stream_id not in self._verified:
            stream = self._current(stream) if stream else self._remember(self._store.load_stream(store, product))
        if at is None and self._now >= stream.last_occurred_at:
            occurred_at = self._now  # the common case of _occurred_at, inline: once per row
        else:
            occurred_at = self._occurred_at(stream, at)
        if stream.inventory.expiring:
            self._expire(stream, occurred_at, actor)
        return stream, occurred_at

    def _expire(self, stream: _Stream, until: str, actor: str) -> None:
        """Release the reservations that expired by ``until``, each dated when it expired."""
        if stream.inventory.expiring:
            stamp = Stamp(None, None, actor)
            for reservation in stream.inventory.overdue(until):
                event = stream.inventory.release(reservation.reservation_id, EXPIRED)
                self._emit(stream, event, max(reservation.expires_at, stream.last_occurred_at), stamp)  # type: ignore[type-var]

    def _reservation_stream(self, reservation_id: str, at: str | None, actor: str) -> tuple[_Stream, str]:
        stream_id = self._new_reservations.get(reservation_id) or self._store.find_reservation_stream(reservation_id)
        if stream_id is None:
            raise UnknownReservation(
                f"No reservation {reservation_id!r} exists. Check the id that reserve printed."
            )
        stream = self._by_id(stream_id)
        occurred_at = self._occurred_at(stream, at)
        self._expire(stream, occurred_at, actor)
        inventory = stream.inventory
        if reservation_id not in inventory.open and reservation_id not in inventory.closed:
            status = self._store.reservation_status(reservation_id)  # closed before the last flush
            if status is not None and status != "open":
                inventory.recall_closed(reservation_id, status)
        return stream, occurred_at

    def _by_id(self, stream_id: int) -> _Stream:
        stream = self._streams_by_id.get(stream_id)
        if stream is None or stream_id not in self._verified:
            stream = self._current(stream) if stream else self._remember(self._store.load_stream_by_id(stream_id))
        return stream

    def _current(self, stream: _Stream) -> _Stream:
        """A stream kept from an earlier transaction, reloaded if someone appended since."""
        if self._store.stream_version(stream.info.stream_id) == stream.inventory.version:
            self._verified.add(stream.info.stream_id)
            return stream
        return self._remember(self._store.load_stream_by_id(stream.info.stream_id))

    def _remember(self, loaded: LoadedStream) -> _Stream:
        """The stream's aggregate, restored from its snapshot and the events after it
        (or folded from every event), kept for the session."""
        info, snapshot, snapshot_version, events, last_occurred_at = loaded
        inventory = resume(info.store, info.product, snapshot, snapshot_version, events)
        if inventory is None:  # a snapshot this code can't read: fold from the start
            events, last_occurred_at = self._store.stream_events(info.stream_id)
            inventory, snapshot_version = Inventory.from_events(info.store, info.product, events), 0
        stream = _Stream(info, inventory, last_occurred_at, snapshot_version)
        self._streams[(info.store, info.product)] = stream
        self._streams_by_id[info.stream_id] = stream
        self._verified.add(info.stream_id)
        return stream

    def _occurred_at(self, stream: _Stream, at: str | None) -> str:
        if at is None:
            # The clock may have been set back; never date an event before its stream's last.
            if stream.last_occurred_at > self._now:
                where = f"{stream.info.product!r} in store {stream.info.store!r}"
                warn_if_behind(self._store, stream.info.stream_id, where, self._now, stream.last_occurred_at)
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

    def _reservation_exists(self, reservation_id: str) -> bool:
        return reservation_id in self._new_reservations or (
            self._store.find_reservation_stream(reservation_id) is not None
        )

    def _transfer_exists(self, transfer_id: str) -> bool:
        return transfer_id in self._new_transfers or (
            self._store.find_transfer_stream(transfer_id) is not None
        )

    @staticmethod
    def _new_id(prefix: str, exists) -> str:
        while True:
            candidate = prefix + secrets.token_hex(4).upper()
            if not exists(candidate):
                return candidate


def _plus_seconds(moment: str, seconds: int) -> str:
    return (datetime.fromisoformat(moment) + timedelta(seconds=seconds)).isoformat(timespec="microseconds")
