"""Times: stored and printed as ISO-8601 in UTC; read from users as ISO-8601 in local time.

Stored times always carry microseconds and ``+00:00`` so that comparing the
strings (as SQLite does) is comparing the instants.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def format_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_user_time(text: str, *, end_of_day: bool = False) -> str:
    """Parse an ISO-8601 date or date-time; a missing offset means local time.

    With ``end_of_day`` (for inclusive upper bounds such as ``--until``) the
    moment is the end of what was written: a date alone means its last
    microsecond, ``14:30`` means up to 14:30:59.999999, ``14:30:05`` up to
    14:30:05.999999. Otherwise it is the start. Raises ValueError.
    """
    text = text.strip()
    try:
        if "T" not in text and " " not in text and ":" not in text:
            day = date.fromisoformat(text)  # 2026-11-27 or 20261127
            moment = datetime.combine(day, time.max if end_of_day else time.min)
        else:
            moment = datetime.fromisoformat(text)
            if end_of_day and moment.microsecond == 0:
                moment += _rest_of_unit(text)
        if moment.tzinfo is None:
            moment = moment.astimezone()  # local time
        return format_utc(moment)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{text!r} is not an ISO-8601 date or date-time within years 1 to 9999; "
            "write e.g. 2026-11-27 or 2026-11-27T14:30 or 2026-11-27T14:30:00+01:00."
        ) from None


def _rest_of_unit(text: str) -> timedelta:
    """How much of the written minute or second is still included in an upper bound."""
    clock = text.split("T")[-1].split(" ")[-1]
    for sign in ("+", "-", "Z"):
        clock = clock.split(sign)[0]
    if "." in clock:
        return timedelta(0)
    digits = len(clock.replace(":", ""))
    if digits <= 2:  # hours only
        return timedelta(hours=1, microseconds=-1)
    if digits <= 4:  # hours and minutes
        return timedelta(minutes=1, microseconds=-1)
    return timedelta(seconds=1, microseconds=-1)
