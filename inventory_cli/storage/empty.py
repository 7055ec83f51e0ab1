"""The store of a database that does not exist yet: every read answers empty.

Opening a missing database without creating it gives this object, once, at the
edge; queries, verify, export, rebuild and expire then need no special case, and
nothing is created. Anything that would write refuses with a StorageError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext

from inventory_cli.domain.events import Event
from inventory_cli.storage.errors import StorageError
from inventory_cli.storage.port import (
    LineSales,
    PeriodMovement,
    ChainReport,
    ConsumerPosition,
    FeedFigures,
    KeyRecord,
    LoadedStream,
    LogSummary,
    NewEvent,
    RebuildReport,
    RecordedEvent,
    StockLine,
    StoreTotals,
    StreamInfo,
    T,
    VerifyReport,
)


class EmptyStore:
    """A log with no events and projections with no rows (backend-neutral)."""

    def __init__(self, location: str) -> None:
        self.location = location

    def close(self) -> None:
        pass

    def write(self, streams: Sequence[tuple[str, str]] = (), *, bulk: bool = False) -> AbstractContextManager[None]:
        """A transaction with nothing in it: only reads may happen inside."""
        return nullcontext()

    def snapshot(self) -> AbstractContextManager[None]:
        return nullcontext()

    def run_read(self, query: Callable[[EmptyStore], T]) -> T:
        return query(self)

    def _refuse(self) -> StorageError:
        return StorageError(
            f"The database {self.location} does not exist yet and was opened only to read; "
            "nothing was written."
        )

    # -- the log --------------------------------------------------------------------

    def head_position(self) -> int:
        return 0

    def stream(self, store: str, product: str, *, create: bool) -> StreamInfo | None:
        if create:
            raise self._refuse()
        return None

    def stream_by_id(self, stream_id: int) -> StreamInfo:
        raise StorageError(f"No stream {stream_id}: the database {self.location} does not exist yet.")

    def stream_version(self, stream_id: int) -> int:
        return 0

    def now(self) -> str:
        from inventory_cli.timestamps import utc_now

        return utc_now()

    def position_shift(self) -> int:
        return 0

    def lock_streams(self, streams: Sequence[tuple[str, str]]) -> None:
        pass

    def restore(self, events: Iterable[RecordedEvent]) -> int:
        raise self._refuse()

    def open_streams(self, streams: Sequence[tuple[str, str]]) -> dict[tuple[str, str], LoadedStream]:
        if streams:
            raise self._refuse()
        return {}

    def stream_events(self, stream_id: int) -> tuple[list[Event], str]:
        return [], ""

    def append(self, events: Sequence[NewEvent], lines: Sequence[tuple[int, StockLine]]) -> None:
        if events or lines:
            raise self._refuse()

    def read_stream(
        self,
        stream_id: int,
        *,
        until_position: int | None = None,
        until_time: str | None = None,
    ) -> Iterator[RecordedEvent]:
        return iter(())

    def read_log(
        self,
        *,
        store: str | None = None,
        after_position: int = 0,
        until_time: str | None = None,
    ) -> Iterator[RecordedEvent]:
        return iter(())

    def verify_chain(self, anchor: tuple[int, str] | None = None) -> ChainReport:
        return ChainReport(0, None, 0, None, None if anchor is None else False)

    # -- the projections ------------------------------------------------------------

    def find_reservation_stream(self, reservation_id: str) -> int | None:
        return None

    def reservation_status(self, reservation_id: str) -> str | None:
        return None

    def find_key(self, key: str) -> KeyRecord | None:
        return None

    def find_keys(self, keys: Sequence[str]) -> dict[str, KeyRecord]:
        return {}

    def find_transfer_stream(self, transfer_id: str) -> int | None:
        return None

    def product_name(self, product: str) -> str | None:
        return None

    def stock_lines(
        self, store: str | None, product: str | None, *, low: bool = False
    ) -> list[StockLine]:
        return []

    def open_reservations(self, store: str | None, product: str | None) -> list[dict[str, object]]:
        return []

    def overdue_streams(self, now: str) -> list[int]:
        return []

    def transfers(self, *, open_only: bool) -> list[dict[str, object]]:
        return []

    def replay_lines(
        self,
        store: str | None,
        product: str | None,
        *,
        until_position: int | None,
        until_time: str | None,
    ) -> list[StockLine]:
        return []

    def rebuild_projections(self) -> RebuildReport:
        return RebuildReport(0, 0, [])

    def check_projections(self) -> RebuildReport:
        return RebuildReport(0, 0, [])

    # -- reports ----------------------------------------------------------------------

    def period_movements(
        self,
        store: str | None,
        product: str | None,
        *,
        by: str,
        since: str | None,
        until: str | None,
    ) -> list[PeriodMovement]:
        return []

    def line_sales(self, store: str | None, *, after: str, until: str) -> list[LineSales]:
        return []

    # -- small reads for people and shells ------------------------------------------------

    def store_totals(self) -> list[StoreTotals]:
        return []

    def summary(self) -> LogSummary:
        return LogSummary(0, 0, 0, 0, 0, None)

    def product_codes(self, store: str | None) -> list[str]:
        return []

    def store_codes(self) -> list[str]:
        return []

    def open_ids(self) -> tuple[list[str], list[str]]:
        return [], []

    def event_at(self, position: int) -> tuple[int, RecordedEvent] | None:
        return None

    def revert_of(self, stream_id: int, position: int) -> int | None:
        return None

    def verify(self, anchor: tuple[int, str] | None = None) -> VerifyReport:
        return VerifyReport(self.verify_chain(anchor), self.check_projections())

    def load_stream(self, store: str, product: str) -> LoadedStream:
        raise self._refuse()

    def load_stream_by_id(self, stream_id: int) -> LoadedStream:
        raise StorageError(f"No stream {stream_id}: the database {self.location} does not exist yet.")

    def write_snapshots(self, snapshots: Sequence[tuple[int, int, str]]) -> None:
        if snapshots:
            raise self._refuse()


class EmptyFeed:
    """The feed of a database that does not exist yet: no events, no consumers."""

    poll_interval = 0.5

    def read_after(self, position: int, limit: int) -> list[RecordedEvent]:
        return []

    def may_have_changed(self) -> bool:
        return False

    def wakeup_fileno(self) -> int | None:
        return None

    def consumer_position(self, consumer: str) -> int | None:
        return None

    def save_position(self, consumer: str, position: int, *, wait: bool) -> bool:
        raise StorageError("The database does not exist yet, so no consumer position can be saved.")

    def consumers(self) -> list[ConsumerPosition]:
        return []

    def figures(self, now: str) -> FeedFigures:
        return FeedFigures(0, (), (), ())

    def close(self) -> None:
        pass
