"""`export --follow` and `export --consumer` at the process's edge: lines, signals, a closed pipe.

SIGINT and SIGTERM only raise a flag: the line being written is finished, the
consumer's position saved, and the command exits 0. A reader that goes away
(`| head -1`, a broker client that died) ends the follower quietly, even while
no event arrives: the idle wait watches stdout for the error a pipe without
readers reports.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer

from inventory_cli.application.feed import OutputClosed, relay, start_position
from inventory_cli.storage.empty import EmptyFeed
from inventory_cli.storage.port import LogFeed, RecordedEvent

_WAIT_FOR_FILE = 0.5  # seconds between two looks for a database that does not exist yet


class _Stop:
    """Set by SIGINT or SIGTERM; a self-pipe wakes the idle wait at once."""

    def __init__(self) -> None:
        self.requested = False
        self.wakeup_fd: int | None = None

    def __call__(self) -> bool:
        return self.requested

    def handle(self, _signum: int, _frame: object) -> None:
        self.requested = True


@contextmanager
def _stop_on_signals() -> Iterator[_Stop]:
    stop = _Stop()
    previous: dict[int, object] = {}
    pipe: tuple[int, int] | None = None
    old_wakeup = -1
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, stop.handle)
        pipe = os.pipe()
        os.set_blocking(pipe[1], False)
        old_wakeup = signal.set_wakeup_fd(pipe[1])
        stop.wakeup_fd = pipe[0]
    except ValueError:  # not the main thread (an embedding host): no handlers, no wake-up
        pass
    try:
        yield stop
    finally:
        if pipe is not None:
            signal.set_wakeup_fd(old_wakeup)
            os.close(pipe[0])
            os.close(pipe[1])
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def _stdout_fileno() -> int | None:
    try:
        return sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # CliRunner's stdout has no descriptor
        return None


def _idler(feed_fd: int | None, stop: _Stop, seconds: float) -> Callable[[], bool]:
    """A wait of at most ``seconds`` that ends early on an append, a signal or a closed stdout.

    Answers False when stdout was closed (a pipe without readers reports POLLERR).
    """
    if not hasattr(select, "poll"):
        import time

        return lambda: time.sleep(seconds) is None
    poller = select.poll()
    out = _stdout_fileno()
    if out is not None:
        poller.register(out, 0)  # only POLLERR / POLLHUP: whether it can be written is not asked
    for fd in (feed_fd, stop.wakeup_fd):
        if fd is not None:
            poller.register(fd, select.POLLIN)
    timeout_ms = max(1, int(seconds * 1000))

    def idle() -> bool:
        for fd, events in poller.poll(timeout_ms):
            if fd == out and events & (select.POLLERR | select.POLLHUP):
                return False
            if fd == stop.wakeup_fd:
                _drain(fd)
        return True

    return idle


def _drain(fd: int) -> None:
    try:
        os.read(fd, 512)
    except OSError:
        pass


def _silence_stdout() -> None:
    """After a closed pipe: send what is left in Python's buffer nowhere, so that the
    interpreter's flush at exit reports nothing on stderr."""
    out = _stdout_fileno()
    if out is not None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out)
        os.close(devnull)


def _line_writer() -> Callable[[RecordedEvent], None]:
    """One flushed NDJSON line per event, in `export`'s format."""
    from inventory_cli.cli.render import export_json, safe_json

    encode = json.JSONEncoder(ensure_ascii=False).encode
    stdout = sys.stdout

    def emit(recorded: RecordedEvent) -> None:
        try:
            stdout.write(safe_json(encode(export_json(recorded))) + "\n")
            stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            raise OutputClosed() from None

    return emit


def _open_log(
    open_feed: Callable[[], LogFeed], database_missing: Callable[[], bool], stop: _Stop | None
) -> LogFeed | None:
    """The feed once there is a log; None without one (at once, or, for a follower
    (``stop`` given), when stopped or its reader went away while it waited)."""
    wait = None if stop is None else _idler(None, stop, _WAIT_FOR_FILE)
    while True:
        feed = None if database_missing() else open_feed()
        # A file that exists may still be empty: its first writer creates the schema
        # in a transaction of its own, and until that commits it opens as no log.
        if feed is not None and not isinstance(feed, EmptyFeed):
            return feed
        if feed is not None:
            feed.close()
        if stop is None or wait is None or stop() or not wait():
            return None


def export_feed(
    open_feed: Callable[[], LogFeed],
    *,
    after_position: int | None,
    consumer: str | None,
    follow: bool,
    database_missing: Callable[[], bool],
) -> None:
    """Write the log from where the run starts; with ``follow``, until a signal or a closed pipe.

    A follower started before the database exists waits for it (creating nothing).
    """
    with _stop_on_signals() as stop:
        feed = _open_log(open_feed, database_missing, stop if follow else None)
        if feed is None:
            return
        try:
            after = start_position(feed, consumer, after_position)
            relay(
                feed, after=after, emit=_line_writer(), consumer=consumer, follow=follow,
                stopping=stop, idle=_idler(feed.wakeup_fileno(), stop, feed.poll_interval),
            )
        finally:
            feed.close()
    if stop() and not follow:
        # Ctrl-C is the normal end of a follower only; a one-off export was cut short
        # (its consumer's position is saved all the same).
        raise typer.Exit(130)
