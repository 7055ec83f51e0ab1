"""Output of the reports: CSV for scripts, and for people a table with a chart per row.

The charts appear only on a terminal and are sized to what the other columns
leave of its width; in a pipe the same table is printed without them.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from inventory_cli.cli import charts
from inventory_cli.cli.render import _width, print_table

if TYPE_CHECKING:
    from inventory_cli.application.reports import CoverRow, MovementRow

MIN_CHART = 4
CODES = frozenset({"store", "product"})
MAX_BAR = 30


def write_csv(rows: Sequence[NamedTuple], fields: Sequence[str]) -> None:
    """A header row, then one row per item: the --json fields and values (RFC 4180)."""
    import csv

    writer = csv.writer(sys.stdout)
    writer.writerow(fields)
    for row in rows:
        writer.writerow("" if value is None else value for value in row)


def print_movements_table(rows: Sequence[MovementRow], by: str) -> None:
    """One row per store + product over the periods, with a sparkline of its outflow."""
    from inventory_cli.application.reports import by_line, period_labels

    periods = period_labels(min(r.period for r in rows), max(r.period for r in rows), by)
    lines = by_line(list(rows), periods)
    columns = ("store", "product", "in", "out", "counted", "on hand")
    cells = [
        (l.store, l.product, f"{l.came_in:,}", f"{l.went_out:,}", f"{l.counted:+,}" if l.counted else "0",
         f"{l.on_hand_end:,}")
        for l in lines
    ]
    numeric = frozenset(columns[2:])
    span = periods[0] if len(periods) == 1 else f"{periods[0]} to {periods[-1]}"
    title = f"Movements by {by}, {span}"  # the chart's heading says what it shows
    width = _chart_width(columns, cells, len(periods), heading="out/10 weeks")
    if width is None:
        print_table(title, columns, cells, numeric=numeric)
        return
    buckets = [charts.bucket(l.out_by_period, width) for l in lines]
    per = buckets[0][1]
    unit = by if per == 1 else f"{per} {by}s"
    _print_with_chart(
        title, columns, cells, numeric, f"out/{unit}",
        [charts.sparkline(values) for values, _ in buckets],
    )


def print_cover_table(rows: Sequence[CoverRow], days: int, target_days: int) -> None:
    """One row per stock line, with a bar of its days of cover (┊ marks the target).

    Incoming and reorder point get a column only when some line has one.
    """
    with_incoming = any(r.incoming for r in rows)
    with_reorder = any(r.reorder_point is not None for r in rows)
    columns = ("store", "product", "available", *(("incoming",) if with_incoming else ()),
               *(("reorder at",) if with_reorder else ()), "sold/day", "days", "order")
    cells = [
        (r.store, r.product, f"{r.available:,}", *((f"{r.incoming:,}",) if with_incoming else ()),
         *(("" if r.reorder_point is None else f"{r.reorder_point:,}",) if with_reorder else ()),
         f"{r.sold_per_day:,.2f}", "no sales" if r.days_of_cover is None else f"{r.days_of_cover:,.1f}",
         f"{r.suggested_order:,}")
        for r in rows
    ]
    numeric = frozenset(columns[2:])
    title = f"Cover at the sales of the last {days} days, target {target_days} days"
    scale = max(2 * target_days, 1)
    heading = f"0-{scale} days"
    width = _chart_width(columns, cells, MAX_BAR, heading=heading)
    if width is None:
        print_table(title, columns, cells, numeric=numeric)
        return
    width -= 1  # room for the overflow mark
    bars = [charts.bar(r.days_of_cover, scale, width, target_days or None) for r in rows]
    _print_with_chart(title + " (┊)", columns, cells, numeric, heading, bars)


def _chart_width(columns: Sequence[str], cells: Sequence[Sequence[str]], wanted: int, *,
                 heading: str) -> int | None:
    """The chart's width on a terminal (at most ``wanted``); None in a pipe, or when the
    other columns leave no room for the chart and its heading."""
    if not sys.stdout.isatty():
        return None
    widths = [max([_width(c)] + [_width(row[i]) for row in cells]) for i, c in enumerate(columns)]
    # A simple-head table pads each column by a cell on either side and draws a (blank)
    # rule between columns and at both edges: 3 cells per column, the chart's included, and 1.
    free = shutil.get_terminal_size().columns - sum(widths) - 3 * (len(columns) + 1) - 1
    return None if free < max(MIN_CHART, _width(heading)) else min(free, wanted)


def _print_with_chart(
    title: str, columns: Sequence[str], cells: Sequence[Sequence[str]], numeric: frozenset[str],
    chart_heading: str, chart_cells: Sequence[str],
) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, box=box.SIMPLE_HEAD, safe_box=True, highlight=False)
    for i, column in enumerate(columns):
        if column in CODES:  # a code is never broken across lines
            longest = max([_width(column)] + [_width(row[i]) for row in cells])
            table.add_column(column, no_wrap=True, min_width=longest)
        else:
            table.add_column(column, justify="right" if column in numeric else "left", overflow="fold")
    table.add_column(chart_heading, no_wrap=True, overflow="crop")
    for row, chart in zip(cells, chart_cells):
        table.add_row(*(Text(value) for value in row), Text(chart))
    Console(markup=False, highlight=False).print(table, soft_wrap=False)
