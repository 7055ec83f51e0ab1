"""The relay's invariants (application/feed.py), on a log in memory driven by hypothesis.

Whatever the appends, batch boundaries, busy saves, stops and closed outputs, a
run emits consecutive positions after its start, and a consumer's saved
position never passes the last line emitted (at least once), and reaches it
at the end.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inventory_cli.application import feed as relay_module
from inventory_cli.application.feed import OutputClosed, relay, start_position
from inventory_cli.storage.port import ConsumerPosition, FeedFigures, RecordedEvent


class MemoryFeed:
    """A LogFeed over a list of positions; appends happen while the relay idles."""

    poll_interval = 0.0

    def __init__(self, events: int, busy_saves: list[bool]) -> None:
        self.head = events
        self.saved: dict[str, int] = {}
        self.busy = list(busy_saves)
        self.changed = False

    def read_after(self, position: int, limit: int) -> list[RecordedEvent]:
        return [RecordedEvent(p, 1, "main", "P", None, "", "")  # type: ignore[arg-type]
                for p in range(position + 1, min(self.head, position + limit) + 1)]

    def may_have_changed(self) -> bool:
        changed, self.changed = self.changed, False
        return changed

    def append(self, count: int) -> None:
        self.head += count
        self.changed = self.changed or count > 0

    def wakeup_fileno(self) -> None:
        return None

    def consumer_position(self, consumer: str) -> int | None:
        return self.saved.get(consumer)

    def save_position(self, consumer: str, position: int, *, wait: bool) -> bool:
        if not wait and self.busy and self.busy.pop(0):
            return False
        self.saved[consumer] = position
        return True

    def consumers(self) -> list[ConsumerPosition]:
        return [ConsumerPosition(c, p, self.head - p) for c, p in sorted(self.saved.items())]

    def figures(self, now: str) -> FeedFigures:
        return FeedFigures(self.head, (), (), tuple(self.consumers()))


@settings(max_examples=200, deadline=None)
@given(
    backlog=st.integers(0, 40),
    appends=st.lists(st.integers(0, 7), max_size=12),
    busy=st.lists(st.booleans(), max_size=30),
    batch=st.integers(1, 9),
    close_after=st.one_of(st.none(), st.integers(1, 60)),
    start=st.one_of(st.none(), st.integers(0, 10)),
)
def test_a_run_emits_consecutive_positions_and_saves_no_further_than_it_emitted(
    backlog, appends, busy, batch, close_after, start
):
    feed = MemoryFeed(backlog, busy)
    feed.saved["c"] = 3 if backlog >= 3 else 0  # an earlier run's position
    emitted: list[int] = []
    saved_when_emitting: list[int] = []
    pending = list(appends)

    def emit(recorded: RecordedEvent) -> None:
        if close_after is not None and len(emitted) == close_after:
            raise OutputClosed()
        saved_when_emitting.append(feed.saved.get("c", 0))
        emitted.append(recorded.position)

    def idle() -> bool:
        if pending:
            feed.append(pending.pop(0))
        return True

    def stopping() -> bool:  # a signal once every append was made and delivered
        return not pending and (emitted[-1] if emitted else first) >= feed.head

    first = start_position(feed, "c", start)
    original, relay_module.BATCH = relay_module.BATCH, batch
    try:
        result = relay(feed, after=first, emit=emit, consumer="c", follow=True,
                       stopping=stopping, idle=idle, clock=iter(range(0, 10**6, 1)).__next__)
    finally:
        relay_module.BATCH = original
    assert emitted == list(range(first + 1, first + 1 + len(emitted)))
    assert all(saved <= (emitted[i - 1] if i else first) for i, saved in enumerate(saved_when_emitting))
    assert feed.saved["c"] == result.last_position == (emitted[-1] if emitted else first)
    if result.closed:
        assert len(emitted) == close_after
    else:
        assert result.last_position == max(first, feed.head)
