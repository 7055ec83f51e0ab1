"""Times: stored and printed as ISO-8601 in UTC; read from users as ISO-8601 in local time.

Stored times always carry microseconds and ``+00:00`` so that comparing the
strings (as SQLite does) is comparing the instants.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone


def utc_now() -> str:
    return format_utc(datetime.now(timezone.utc))


def format_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_user_time(text: str, *, end_of_day: bool = False) -> str:
    """Parse an ISO-8601 date or date-time; a missing offset means local time.

    A date alone means the start of that day, or its end when ``end_of_day``
    (so that ``--until 2026-11-27`` includes the whole day). Raises ValueError.
    """
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.max if end_of_day else time.min)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO-8601 date or date-time; "
            "write e.g. 2026-11-27 or 2026-11-27T14:30 or 2026-11-27T14:30:00+01:00."
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time
    return format_utc(moment)
