"""The manager's reports: what moved per period, and how long the stock will last.

The figures come from the log through the storage port (computed there in SQL);
this module adds the arithmetic of cover and the periods a chart spans.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import groupby
from typing import NamedTuple

from inventory_cli.storage.port import EventStore, PeriodMovement, StockLine

PERIODS = ("day", "week", "month")
DEFAULT_DAYS = 28
DEFAULT_TARGET_DAYS = 14

# A report row of `report movements` is the port's record, as the log gives it.
MovementRow = PeriodMovement

INFLOWS = ("added", "received")
OUTFLOWS = ("removed", "fulfilled", "shipped", "lost")


def movements(
    store: EventStore,
    store_code: str | None,
    product: str | None,
    *,
    by: str = "month",
    since: str | None = None,
    until: str | None = None,
) -> list[MovementRow]:
    """One row per period and store + product with events in it, by store, product, period."""
    if by not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {by!r}")
    return store.period_movements(store_code, product, by=by, since=since, until=until)


class LineMovements(NamedTuple):
    """A store + product over a report's periods: totals, and one figure per period."""

    store: str
    product: str
    came_in: int
    went_out: int
    counted: int
    on_hand_end: int
    out_by_period: tuple[int | None, ...]  # None: no event in that period


def by_line(rows: list[MovementRow], periods: list[str]) -> list[LineMovements]:
    """The rows of each store + product folded into one, with its outflow per period."""
    index = {period: i for i, period in enumerate(periods)}
    lines = []
    for (store_code, product), group in groupby(rows, key=lambda r: (r.store, r.product)):
        line_rows = list(group)
        series: list[int | None] = [None] * len(periods)
        for row in line_rows:
            series[index[row.period]] = _went_out(row)
        lines.append(LineMovements(
            store_code, product,
            sum(getattr(r, name) for r in line_rows for name in INFLOWS),
            sum(_went_out(r) for r in line_rows),
            sum(r.counted for r in line_rows),
            line_rows[-1].on_hand_end,
            tuple(series),
        ))
    return lines


def _went_out(row: MovementRow) -> int:
    return sum(getattr(row, f) for f in OUTFLOWS)


def period_labels(first: str, last: str, by: str) -> list[str]:
    """Every period label from ``first`` to ``last`` inclusive (2011-03-07, 2011-W10, 2011-03)."""
    labels = []
    day = _period_start(first, by)
    end = _period_start(last, by)
    while day <= end:
        labels.append(period_label(day, by))
        day = _next_period(day, by)
    return labels


def period_label(day: date, by: str) -> str:
    """The label of the period a local date falls in."""
    if by == "day":
        return day.isoformat()
    if by == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year:04d}-{day.month:02d}"


def _period_start(label: str, by: str) -> date:
    if by == "day":
        return date.fromisoformat(label)
    if by == "week":
        year, week = label.split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    year, month = label.split("-")
    return date(int(year), int(month), 1)


def _next_period(day: date, by: str) -> date:
    if by == "day":
        return day + timedelta(days=1)
    if by == "week":
        return day + timedelta(days=7)
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


class CoverRow(NamedTuple):
    """A stock line with its rate of sales, days of cover and suggested order."""

    store: str
    product: str
    name: str | None
    on_hand: int
    reserved: int
    available: int
    incoming: int
    reorder_point: int | None
    sold: int  # units sold in the window
    sold_per_day: float
    days_of_cover: float | None  # None: nothing sold in the window
    suggested_order: int


def cover_row(line: StockLine, sold: int, days: int, target_days: int) -> CoverRow:
    """The contract's formulas, in whole numbers where they decide an order:
    suggested_order = max(0, ⌈sold_per_day × D⌉ + reorder_point − available − incoming)."""
    available = line.on_hand - line.reserved
    need = -(-sold * target_days // days)  # ⌈sold × D / N⌉ without rounding errors
    order = max(0, need + (line.reorder_point or 0) - available - line.incoming)
    return CoverRow(
        line.store, line.product, line.name, line.on_hand, line.reserved, available,
        line.incoming, line.reorder_point, sold, round(sold / days, 4),
        None if sold == 0 else round(available * days / sold, 1), order,
    )


def cover(
    store: EventStore,
    store_code: str | None,
    *,
    now: str,
    days: int = DEFAULT_DAYS,
    target_days: int = DEFAULT_TARGET_DAYS,
    until: str | None = None,
) -> list[CoverRow]:
    """One row per stock line as of ``until`` (the stock replayed to it) or of ``now``
    (the projections), with the sales of the ``days`` days before."""
    if days < 1 or target_days < 0:
        raise ValueError("days must be at least 1 and target days at least 0")
    end = until or now
    after = (datetime.fromisoformat(end) - timedelta(days=days)).isoformat(timespec="microseconds")
    if until is None:
        lines = store.stock_lines(store_code, None)
    else:
        lines = store.replay_lines(store_code, None, until_position=None, until_time=until)
    sold = {(s.store, s.product): s.sold for s in store.line_sales(store_code, after=after, until=end)}
    return [cover_row(line, sold.get((line.store, line.product), 0), days, target_days) for line in lines]
