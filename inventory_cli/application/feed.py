"""The log as a feed: the relay behind `export --consumer` and `export --follow`.

The relay reads the log by position in short batches and hands each event to
``emit`` (which writes and flushes one line). A consumer's position is saved
only after its line was emitted, so delivery is at least once, in position
order; saves are spaced out (``SAVE_EVERY`` seconds) and always made at the end.
How the process waits, stops and writes is the caller's: this module does no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from inventory_cli.storage.port import LogFeed, RecordedEvent

BATCH = 500  # events per read: a short statement, then the lines are written
SAVE_EVERY = 0.1  # seconds between two saves of a consumer's position while lines flow


class OutputClosed(Exception):
    """The reader of the feed went away (a closed pipe): stop quietly."""


class FollowResult(NamedTuple):
    """How a run of the relay ended."""

    last_position: int  # of the last line emitted (the start position if none)
    lines: int
    closed: bool  # True: the output was closed, False: stopped or caught up


def start_position(feed: LogFeed, consumer: str | None, after_position: int | None) -> int:
    """Where a run starts: the position given, else the consumer's saved one, else 0."""
    if after_position is not None:
        return after_position
    if consumer is not None:
        saved = feed.consumer_position(consumer)
        if saved is not None:
            return saved
    return 0


def relay(
    feed: LogFeed,
    *,
    after: int,
    emit: Callable[[RecordedEvent], None],
    consumer: str | None = None,
    follow: bool = False,
    stopping: Callable[[], bool] = lambda: False,
    idle: Callable[[], bool] = lambda: True,
    clock: Callable[[], float] = time.monotonic,
) -> FollowResult:
    """Emit every event after ``after``; with ``follow``, keep emitting new ones until stopped.

    ``stopping`` is asked between lines; ``idle`` waits a little when the feed is
    caught up and answers False when the output was closed meanwhile.
    """
    last, lines, closed = after, 0, False
    saved, saved_at = after, clock()
    if consumer is not None:
        feed.save_position(consumer, after, wait=True)  # registers it, and fails early if read-only
    try:
        unread = True
        while not stopping():
            if unread:
                batch = feed.read_after(last, BATCH)
                for recorded in batch:
                    emit(recorded)
                    last, lines = recorded.position, lines + 1
                    if stopping():
                        break
                unread = len(batch) == BATCH
                if batch:
                    if consumer is not None and clock() - saved_at >= SAVE_EVERY:
                        if feed.save_position(consumer, last, wait=False):
                            saved, saved_at = last, clock()
                    continue
            if not follow:
                break
            if consumer is not None and saved != last:
                if feed.save_position(consumer, last, wait=False):
                    saved, saved_at = last, clock()
            if not idle():
                closed = True
                break
            unread = feed.may_have_changed()
    except OutputClosed:
        closed = True
    finally:
        if consumer is not None and saved != last:
            feed.save_position(consumer, last, wait=True)
    return FollowResult(last, lines, closed)
