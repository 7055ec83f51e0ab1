"""The storage port: what the application needs from an event log.

SQLite implements it today (``storage/sqlite/``); a PostgreSQL twin can implement
the same methods without touching the domain or the application.
"""

# No `from __future__ import annotations` here: typing.NamedTuple turns each string
# annotation into a ForwardRef, compiled when the class is made, at every start.

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol, TypeVar

from inventory_cli.domain.events import Event
from inventory_cli.storage.chain import GENESIS, event_hash  # noqa: F401  (part of the port: restore checks the chain)
from inventory_cli.storage.errors import (  # noqa: F401  (part of the port)
    ConcurrencyConflict,
    StorageBusy,
    StorageError,
)


T = TypeVar("T")


class RecordedEvent(NamedTuple):
    """An event as stored: its place in the log, its stream and its metadata."""

    position: int
    version: int
    store: str
    product: str
    event: Event
    occurred_at: str
    recorded_at: str
    actor: str = "unknown"
    idempotency_key: str | None = None
    hash: str | None = None
    data: str | None = None  # the payload exactly as stored, when read for export


class NewEvent(NamedTuple):
    """An event decided but not yet stored (a named tuple: one is built per import row)."""

    stream_id: int
    position: int
    version: int
    event: Event
    occurred_at: str
    recorded_at: str
    idempotency_key: str | None
    command_hash: str | None
    actor: str


class StockLine(NamedTuple):
    """One store + product: the balances after its latest event."""

    store: str
    product: str
    on_hand: int
    reserved: int
    version: int
    updated_at: str
    incoming: int = 0
    reorder_point: int | None = None
    name: str | None = None

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def as_dict(self) -> dict[str, object]:
        return {
            "store": self.store,
            "product": self.product,
            "name": self.name,
            "on_hand": self.on_hand,
            "reserved": self.reserved,
            "available": self.on_hand - self.reserved,
            "incoming": self.incoming,
            "reorder_point": self.reorder_point,
            "version": self.version,
            "updated_at": self.updated_at,
        }


class StreamInfo(NamedTuple):
    """A stream's identity and the facts a writer needs before deciding."""

    stream_id: int
    store: str
    product: str


class LoadedStream(NamedTuple):
    """What a writer folds to decide: a checked snapshot's state (if any) and the events after it."""

    info: StreamInfo
    snapshot: str | None  # the state text (domain/snapshots.py) at snapshot_version
    snapshot_version: int  # 0 without a snapshot
    events: list[Event]  # after snapshot_version, in version order
    last_occurred_at: str  # of the stream's last event ("" if none)


class KeyRecord(NamedTuple):
    """The command an idempotency key was first used for."""

    key: str
    command_hash: str
    stream_id: int
    position: int


class StoreTotals(NamedTuple):
    """One store's stock lines, summed (`inventory stores`)."""

    store: str
    lines: int
    on_hand: int
    reserved: int
    incoming: int


class LogSummary(NamedTuple):
    """What a database holds (`inventory info`)."""

    schema_version: int
    events: int
    streams: int
    stores: int
    head_position: int
    head_hash: str | None


class ChainReport(NamedTuple):
    events: int
    first_bad_position: int | None
    head_position: int
    head_hash: str | None
    anchor_ok: bool | None  # None: no anchor was given
    # Events whose occurred_at is more than a few minutes after their recorded_at (a
    # clock that was ahead when an earlier event of the stream was written).
    dated_after_recorded: int = 0
    first_dated_after_recorded: int | None = None


class RebuildReport(NamedTuple):
    events: int
    streams: int
    differences: list[dict[str, object]]


class PeriodMovement(NamedTuple):
    """What moved in one store + product during one period (a report row)."""

    period: str  # 2011-03-07, 2011-W10 or 2011-03, in local time
    store: str
    product: str
    added: int
    received: int
    removed: int
    fulfilled: int
    shipped: int
    lost: int
    counted: int  # the signed sum of the period's count corrections
    on_hand_end: int  # on_hand after the period's last event


class LineSales(NamedTuple):
    """Units of one store + product that left as sales in a time window."""

    store: str
    product: str
    sold: int

class VerifyReport(NamedTuple):
    """What ``verify`` finds: the hash chain, and the projections compared with the log."""

    chain: ChainReport
    projections: RebuildReport


class EventStore(Protocol):
    # -- the write side: everything below runs inside ``write()`` -------------------
    def write(self, streams: Sequence[tuple[str, str]] = (), *, bulk: bool = False) -> AbstractContextManager[None]:
        """One exclusive write transaction: commit on success, roll back on error.

        ``streams``: the (store, product) streams its command names, which a server
        may lock and load in the round trip that begins the transaction.
        ``bulk``: it may touch any number of streams (an import batch, expire), so it
        holds off every other writer at once rather than stream by stream.
        """

    def head_position(self) -> int: ...

    def now(self) -> str:
        """The time to record (UTC, ISO-8601): the server's clock on a server, else this machine's."""

    def position_shift(self) -> int:
        """After a commit: how far the positions stored moved from those the session proposed.

        0 where the session's positions are kept (SQLite: its write transaction is
        exclusive); on PostgreSQL the server assigns them under its log lock.
        """

    def lock_streams(self, streams: Sequence[tuple[str, str]]) -> None:
        """Hold these (store, product) streams for the open write, taken in the order given."""

    def stream(self, store: str, product: str, *, create: bool) -> StreamInfo | None: ...

    def stream_by_id(self, stream_id: int) -> StreamInfo: ...

    def stream_version(self, stream_id: int) -> int: ...

    def find_reservation_stream(self, reservation_id: str) -> int | None: ...

    def reservation_status(self, reservation_id: str) -> str | None:
        """'open', 'released' or 'fulfilled' as stored; None for an id never used."""

    def find_key(self, key: str) -> KeyRecord | None: ...

    def find_keys(self, keys: Sequence[str]) -> dict[str, KeyRecord]:
        """The records of those of ``keys`` that were used (one query: an import's rows)."""

    def append(self, events: Sequence[NewEvent], lines: Sequence[tuple[int, StockLine]]) -> None:
        """Append events (positions given) and update the projections, in the open transaction.

        ``lines`` are the new stock lines of the touched streams, by stream id.
        """

    def open_streams(self, streams: Sequence[tuple[str, str]]) -> dict[tuple[str, str], LoadedStream]:
        """load_stream for many (store, product) streams at once (an import's next rows),
        created in the order given."""

    def stream_events(self, stream_id: int) -> tuple[list[Event], str]:
        """The stream's events in version order, and the last one's occurred_at ("" if none)."""

    # -- reads ------------------------------------------------------------------
    def run_read(self, query: Callable[["EventStore"], T]) -> T:
        """``query(self)``. On a server: once more on a new connection if the connection was
        lost (a read is safe to repeat), and the server's errors as the port's."""

    def read_stream(
        self,
        stream_id: int,
        *,
        until_position: int | None = None,
        until_time: str | None = None,
    ) -> Iterator[RecordedEvent]: ...

    def read_log(
        self,
        *,
        store: str | None = None,
        after_position: int = 0,
        until_time: str | None = None,
    ) -> Iterator[RecordedEvent]:
        """Every event in position order (optionally of one store), with actor, key and hash."""

    def verify_chain(self, anchor: tuple[int, str] | None = None) -> ChainReport: ...

    def stock_lines(
        self, store: str | None, product: str | None, *, low: bool = False
    ) -> list[StockLine]: ...

    def open_reservations(self, store: str | None, product: str | None) -> list[dict[str, object]]: ...

    def overdue_streams(self, now: str) -> list[int]: ...

    def find_transfer_stream(self, transfer_id: str) -> int | None: ...

    def product_name(self, product: str) -> str | None: ...

    def transfers(self, *, open_only: bool) -> list[dict[str, object]]: ...

    def replay_lines(
        self,
        store: str | None,
        product: str | None,
        *,
        until_position: int | None,
        until_time: str | None,
    ) -> list[StockLine]: ...

    def rebuild_projections(self) -> RebuildReport: ...

    # -- small reads for people and shells (projections, or one indexed row) --------
    def store_totals(self) -> list[StoreTotals]: ...

    def summary(self) -> LogSummary: ...

    def product_codes(self, store: str | None) -> list[str]: ...

    def store_codes(self) -> list[str]: ...

    def open_ids(self) -> tuple[list[str], list[str]]:
        """The open reservation ids and the open transfer ids."""

    def event_at(self, position: int) -> tuple[int, RecordedEvent] | None:
        """The stream id and the event at this log position, or None."""

    def revert_of(self, stream_id: int, position: int) -> int | None:
        """The position of the event that reverted the one at ``position``, or None."""

    def check_projections(self) -> RebuildReport: ...

    # -- reports --------------------------------------------------------------------
    def period_movements(
        self,
        store: str | None,
        product: str | None,
        *,
        by: str,
        since: str | None,
        until: str | None,
    ) -> list[PeriodMovement]:
        """Per period ("day", "week" or "month", local time) and stream, what its events
        moved (on occurred_at, both bounds inclusive); sorted by store, product, period."""

    def line_sales(self, store: str | None, *, after: str, until: str) -> list[LineSales]:
        """Units sold (StockRemoved with reason sold, ReservationFulfilled) per stream,
        occurred after ``after`` and up to ``until``; streams without sales are left out."""

    def restore(self, events: Iterable[RecordedEvent]) -> int:
        """Load exported events (checked by the caller) into an empty log, then build the
        projections; the number loaded. TargetNotEmpty if the log has events."""
    def verify(self, anchor: tuple[int, str] | None = None) -> VerifyReport:
        """verify_chain and check_projections of one state of the log (a backend may
        run the two side by side)."""

    def load_stream(self, store: str, product: str) -> LoadedStream:
        """The stream (created if new) from its snapshot, when one passes its check,
        and the events after it; else every event (snapshot None)."""

    def load_stream_by_id(self, stream_id: int) -> LoadedStream: ...

    def write_snapshots(self, snapshots: Sequence[tuple[int, int, str]]) -> None:
        """Store (stream id, version, state text) snapshots in the open write transaction,
        after the events up to each version."""


# -- following the log (export --follow, consumers, metrics) ---------------------------


class ConsumerPosition(NamedTuple):
    """A follower's saved position and how far the head is ahead of it."""

    consumer: str
    position: int
    lag: int


class StoreFigures(NamedTuple):
    """One store's counts for monitoring, read from the projections."""

    store: str
    stock_lines: int
    low_stock_lines: int
    open_reservations: int  # overdue ones included
    overdue_reservations: int
    incoming_transfers: int  # open transfers on their way to this store


class FeedFigures(NamedTuple):
    """What `inventory metrics` reports, read in one snapshot."""

    head_position: int
    events_by_type: tuple[tuple[str, int], ...]
    stores: tuple[StoreFigures, ...]
    consumers: tuple[ConsumerPosition, ...]


class LogFeed(Protocol):
    """The log read by position for followers, plus their saved positions.

    A backend wakes its followers as cheaply as it can: ``wakeup_fileno`` is a
    socket that becomes readable when an append may have happened (None: poll
    ``may_have_changed`` every ``poll_interval`` seconds). No transaction stays
    open between calls, so a follower never holds back writers or checkpoints.
    """

    poll_interval: float

    def read_after(self, position: int, limit: int) -> list[RecordedEvent]:
        """Up to ``limit`` events after ``position``, in position order (with key, hash, data)."""

    def may_have_changed(self) -> bool:
        """True when an append may have committed since the previous call (or since opening)."""

    def wakeup_fileno(self) -> int | None: ...

    def consumer_position(self, consumer: str) -> int | None: ...

    def save_position(self, consumer: str, position: int, *, wait: bool) -> bool:
        """Store ``consumer``'s position outside the log, in a short transaction of its own.

        With ``wait`` False a busy database is not waited for: False means "not saved
        now, try again later".
        """

    def consumers(self) -> list[ConsumerPosition]: ...

    def figures(self, now: str) -> FeedFigures: ...

    def close(self) -> None: ...
