"""Output of the reports: CSV for scripts, and for people a table with a chart per row.

The tables are the other tables' (``tables``: fitted to a terminal, a plain grid in a
pipe). The chart column appears only on a terminal, sized to what the other columns
leave of its width; when they leave too little, it is left out.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from inventory_cli.cli import charts
from inventory_cli.cli.render import print_message, print_table, visible
from inventory_cli.cli.tables import Column, cell_width

if TYPE_CHECKING:
    from inventory_cli.application.reports import CoverRow, MovementRow

MIN_CHART = 4
MAX_BAR = 30
_GAP = 2  # between columns on a terminal, as in tables


def write_csv(rows: Sequence[NamedTuple], fields: Sequence[str]) -> None:
    """A header row, then one row per item: the --json fields and values (RFC 4180)."""
    import csv

    from inventory_cli.cli.render import visible

    writer = csv.writer(sys.stdout)
    writer.writerow(fields)
    for row in rows:  # CSV has no escapes of its own: a control character is shown as \x1b
        writer.writerow("" if value is None else visible(value) if isinstance(value, str) else value
                        for value in row)


MOVEMENT_COLUMNS = (
    Column("store"), Column("product"), Column("in", "number", drop=2),
    Column("out", "number"), Column("counted", "number", drop=1), Column("on hand", "number"),
)


def print_movements_table(rows: Sequence[MovementRow], by: str) -> None:
    """One row per store + product over the periods, with a sparkline of its outflow."""
    from inventory_cli.application.reports import by_line, period_labels

    periods = period_labels(min(r.period for r in rows), max(r.period for r in rows), by)
    lines = by_line(list(rows), periods)
    cells = [
        (l.store, l.product, f"{l.came_in:,}", f"{l.went_out:,}", f"{l.counted:+,}" if l.counted else "0",
         f"{l.on_hand_end:,}")
        for l in lines
    ]
    span = periods[0] if len(periods) == 1 else f"{periods[0]} to {periods[-1]}"
    print_message(f"Movements by {by}, {span}")
    width = _chart_width(MOVEMENT_COLUMNS, cells, len(periods), heading="out/10 weeks")
    if width is None:
        print_table(MOVEMENT_COLUMNS, cells)
        return
    buckets = [charts.bucket(l.out_by_period, width) for l in lines]
    per = buckets[0][1]
    unit = by if per == 1 else f"{per} {by}s"
    charted = [(*row, charts.sparkline(values)) for row, (values, _) in zip(cells, buckets)]
    print_table((*MOVEMENT_COLUMNS, Column(f"out/{unit}", drop=0)), charted)


def print_cover_table(rows: Sequence[CoverRow], days: int, target_days: int) -> None:
    """One row per stock line, with a bar of its days of cover (┊ marks the target).

    Incoming and reorder point get a column only when some line has one.
    """
    with_incoming = any(r.incoming for r in rows)
    with_reorder = any(r.reorder_point is not None for r in rows)
    columns = (
        Column("store"), Column("product"), Column("available", "number"),
        *((Column("incoming", "number", drop=2),) if with_incoming else ()),
        *((Column("reorder at", "number", drop=1),) if with_reorder else ()),
        Column("sold/day", "number", drop=3), Column("days", "number"), Column("order", "number"),
    )
    cells = [
        (r.store, r.product, f"{r.available:,}", *((f"{r.incoming:,}",) if with_incoming else ()),
         *(("" if r.reorder_point is None else f"{r.reorder_point:,}",) if with_reorder else ()),
         f"{r.sold_per_day:,.2f}", "no sales" if r.days_of_cover is None else f"{r.days_of_cover:,.1f}",
         f"{r.suggested_order:,}")
        for r in rows
    ]
    title = f"Cover at the sales of the last {days} days, target {target_days} days"
    scale = max(2 * target_days, 1)
    heading = f"0-{scale} days"
    width = _chart_width(columns, cells, MAX_BAR, heading=heading)
    if width is None:
        print_message(title)
        print_table(columns, cells)
        return
    print_message(title + " (┊ in the chart)")
    width -= 1  # room for the overflow mark
    bars = [charts.bar(r.days_of_cover, scale, width, target_days or None) for r in rows]
    print_table((*columns, Column(heading, drop=0)), [(*row, bar) for row, bar in zip(cells, bars)])


def _chart_width(columns: Sequence[Column], cells: Sequence[Sequence[str]], wanted: int, *,
                 heading: str) -> int | None:
    """The chart's width on a terminal (at most ``wanted``); None in a pipe, or when the
    other columns leave no room for the chart and its heading."""
    if not sys.stdout.isatty():
        return None
    widths = [max([cell_width(c.header)] + [cell_width(visible(row[i])) for row in cells])
              for i, c in enumerate(columns)]
    free = shutil.get_terminal_size().columns - sum(widths) - _GAP * len(columns)
    return None if free < max(MIN_CHART, cell_width(heading)) else min(free, wanted)
