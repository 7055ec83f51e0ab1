"""The reports on PostgreSQL against the real server: the same log gives the same rows as on
SQLite (periods in the process's local time, ISO weeks across a year's end), at the storage
level."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from inventory_cli.application.commands import (
    AddStock,
    CountStock,
    FulfillReservation,
    ReceiveTransfer,
    RemoveStock,
    ReserveStock,
    TransferStock,
)
from inventory_cli.application.handlers import run_command
from inventory_cli.storage.postgresql.reports import local_zone
from inventory_cli.storage.postgresql.store import open_store as open_pg
from inventory_cli.storage.sqlite import open_store as open_sqlite
from inventory_cli.storage.sqlite.reports import Reports as SqliteReports
from pg_fixtures import pg_schema, pg_url  # noqa: F401  (fixtures)

# (UTC time, command). 2026-12-31 is a Thursday: 2026 has an ISO week 53, which runs to
# Sunday 2027-01-03; 2027-W01 starts on Monday 2027-01-04.
TIMELINE = [
    ("2026-11-30T12:00:00", AddStock("main", "A", 50)),
    ("2026-12-28T09:00:00", RemoveStock("main", "A", 4, reason="sold")),
    ("2026-12-31T23:30:00", ReserveStock("main", "A", 3, "ann", reservation_id="R1")),
    ("2027-01-01T02:00:00", FulfillReservation("R1")),  # New York: still 2026-12-31
    ("2027-01-03T12:00:00", RemoveStock("main", "A", 2, reason="damaged")),
    ("2027-01-04T03:00:00", RemoveStock("main", "A", 5, reason="sold")),  # New York: Sunday, W53
    ("2027-01-04T12:00:00", TransferStock("A", 6, "main", "north", transfer_id="T1")),
    ("2027-01-05T08:00:00", ReceiveTransfer("T1", 5)),  # one lost
    ("2027-01-05T09:00:00", CountStock("main", "A", 20)),
    ("2027-01-06T10:00:00", AddStock("north", "B", 9)),
    ("2027-02-01T00:30:00", RemoveStock("north", "B", 1, reason="sold")),  # New York: January
]

ZONES = ["UTC", "America/New_York", "Asia/Kolkata"]


def apply_timeline(store) -> None:
    for at, command in TIMELINE:
        stamp = datetime.fromisoformat(at).replace(tzinfo=timezone.utc).isoformat(timespec="microseconds")
        run_command(store, command, "tester", clock=lambda stamp=stamp: stamp)


@pytest.fixture
def local_time(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """TZ set for this process (and so for SQLite's 'localtime'), restored after."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def both(pg_url: str, tmp_path: Path):
    path = str(tmp_path / "inv.db")
    sqlite = open_sqlite(path, create=True)
    pg = open_pg(pg_url, create=True)
    apply_timeline(sqlite)
    apply_timeline(pg)
    yield SqliteReports(sqlite.conn, path), pg
    sqlite.close()
    pg.close()


QUESTIONS = [
    dict(store=None, product=None, since=None, until=None),
    dict(store="main", product=None, since=None, until=None),
    dict(store=None, product="A", since=None, until=None),
    dict(store="main", product="A", since="2027-01-01T00:00:00.000000+00:00", until=None),
    dict(store=None, product=None, since="2026-12-29T00:00:00.000000+00:00",
         until="2027-01-05T08:00:00.000000+00:00"),
]


@pytest.mark.parametrize("local_time", ZONES, indirect=True)
@pytest.mark.parametrize("by", ["day", "week", "month"])
def test_movements_are_the_same_rows_as_on_sqlite(both, local_time: str, by: str) -> None:
    sqlite, pg = both
    for question in QUESTIONS:
        expected = sqlite.period_movements(question["store"], question["product"], by=by,
                                           since=question["since"], until=question["until"])
        assert expected, question
        assert pg.period_movements(question["store"], question["product"], by=by,
                                   since=question["since"], until=question["until"]) == expected


@pytest.mark.parametrize(
    ("local_time", "weeks"),
    [
        ("UTC", ["2026-W49", "2026-W53", "2027-W01"]),
        # 2027-01-04T03:00Z is Sunday evening in New York: the sale stays in week 53.
        ("America/New_York", ["2026-W49", "2026-W53", "2027-W01"]),
    ],
    indirect=["local_time"],
)
def test_iso_weeks_cross_the_year_in_local_time(both, local_time: str, weeks: list[str]) -> None:
    _, pg = both
    rows = pg.period_movements("main", "A", by="week", since=None, until=None)
    assert [row.period for row in rows] == weeks
    week53 = rows[1]
    sold_in_53 = 4 + (5 if local_time == "America/New_York" else 0)
    assert week53.removed == sold_in_53 + 2  # the damaged two on Sunday the 3rd
    assert week53.fulfilled == 3
    assert rows[-1].on_hand_end == 20  # the count sets it, whatever the zone


@pytest.mark.parametrize("local_time", ["America/New_York"], indirect=True)
def test_months_and_days_follow_the_local_calendar(both, local_time: str) -> None:
    _, pg = both
    months = pg.period_movements("north", "B", by="month", since=None, until=None)
    assert [(row.period, row.added, row.removed) for row in months] == [("2027-01", 9, 1)]
    days = pg.period_movements("main", "A", by="day", since=None, until=None)
    fulfilled = [row.period for row in days if row.fulfilled]
    assert fulfilled == ["2026-12-31"]


@pytest.mark.parametrize("local_time", ZONES, indirect=True)
def test_sales_are_the_same_as_on_sqlite(both, local_time: str) -> None:
    sqlite, pg = both
    windows = [
        (None, "2026-01-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00"),
        ("main", "2026-12-28T09:00:00.000000+00:00", "2027-01-04T03:00:00.000000+00:00"),
        ("north", "2027-01-01T00:00:00+00:00", "2027-03-01T00:00:00+00:00"),
        (None, "2027-03-01T00:00:00+00:00", "2027-04-01T00:00:00+00:00"),
    ]
    for store, after, until in windows:
        assert pg.line_sales(store, after=after, until=until) == sqlite.line_sales(store, after=after, until=until)
    everything = pg.line_sales(None, after=windows[0][1], until=windows[0][2])
    # Sold: 4 + 5 removed as sold and 3 fulfilled in main; 1 in north. Damaged is no sale.
    assert [tuple(line) for line in everything] == [("main", "A", 12), ("north", "B", 1)]


def test_local_zone_is_what_the_c_library_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    for given, zone in [("Europe/Paris", "Europe/Paris"), (":Asia/Tokyo", "Asia/Tokyo"),
                        ("/usr/share/zoneinfo/America/Lima", "America/Lima"), ("", "UTC"),
                        ("EST5EDT", "EST5EDT")]:
        monkeypatch.setenv("TZ", given)
        assert local_zone() == zone


@pytest.mark.parametrize("local_time", ["Not/AZone"], indirect=True)
def test_a_zone_the_server_does_not_know_is_read_as_utc_as_sqlite_does(both, local_time: str) -> None:
    sqlite, pg = both
    rows = pg.period_movements(None, None, by="day", since=None, until=None)
    assert rows == sqlite.period_movements(None, None, by="day", since=None, until=None)
    assert "2027-01-04" in [row.period for row in rows if row.removed == 5]
