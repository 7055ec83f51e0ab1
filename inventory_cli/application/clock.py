"""A clock behind the log is said, never hidden.

Within a stream occurred_at never goes backwards, so a command whose clock is
behind its stream's latest event dates its event like that one. One run with a
clock set ahead would so date every later event of the product ahead, silently;
beyond a few minutes of difference the command warns on stderr instead (through
Python's ``warnings``, which the CLI prints as one line).
"""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta

from inventory_cli.storage.port import EventStore

TOLERANCE = timedelta(minutes=5)


class ClockBehind(UserWarning):
    """This computer's clock is behind the latest event of the stream written to."""


def warn_if_behind(store: EventStore, stream_id: int, where: str, now: str, latest: str) -> None:
    """Warn when ``now`` is more than TOLERANCE before ``latest``, the stream's last
    occurred_at, naming the stream's first event dated after ``now``."""
    if datetime.fromisoformat(latest) - datetime.fromisoformat(now) <= TOLERANCE:
        return
    first = next((e for e in store.read_stream(stream_id) if e.occurred_at > now), None)
    event = f"the event at position {first.position}" if first else "its latest event"
    warnings.warn(ClockBehind(
        f"{where}: {event} is dated {latest if first is None else first.occurred_at}, later than "
        f"this computer's clock ({now}), so the new event is dated {latest} to keep the "
        "product's events in order. Check this computer's clock and that of the one that "
        "wrote that event (date, timedatectl, NTP); `inventory verify` counts the events "
        "dated after they were recorded."
    ), stacklevel=2)
