"""Small charts drawn with block characters, readable without colour.

Only for a terminal: the reports leave them out of pipes, JSON and CSV.
"""

from __future__ import annotations

from collections.abc import Sequence

LEVELS = "▁▂▃▄▅▆▇█"
EIGHTHS = " ▏▎▍▌▋▊▉█"
TARGET_MARK = "┊"
OVERFLOW_MARK = "▸"


def bucket(values: Sequence[int | None], width: int) -> tuple[list[int | None], int]:
    """At most ``width`` values, each the sum of ``per`` consecutive ones; and ``per``.

    A bucket with no value at all (None throughout) stays None.
    """
    if width < 1:
        return [], max(1, len(values))
    per = max(1, -(-len(values) // width))
    buckets: list[int | None] = []
    for start in range(0, len(values), per):
        chunk = [v for v in values[start:start + per] if v is not None]
        buckets.append(sum(chunk) if chunk else None)
    return buckets, per


def sparkline(values: Sequence[int | None], top: int | None = None) -> str:
    """One character per value: a block from ▁ to █ in proportion to ``top`` (default:
    the largest value); a blank for nothing (None or 0)."""
    top = max((v for v in values if v), default=0) if top is None else top
    marks = []
    for value in values:
        if not value or value < 0 or top <= 0:
            marks.append(" ")
        else:
            level = min(len(LEVELS), max(1, -(-value * len(LEVELS) // top)))
            marks.append(LEVELS[level - 1])
    return "".join(marks)


def bar(value: float | None, full_scale: float, width: int, target: float | None = None) -> str:
    """A horizontal bar of ``width`` cells for ``value`` on a scale from 0 to
    ``full_scale`` (eighths of a cell), ▸ at the end when it goes beyond, and ┊ where
    ``target`` falls while the bar has not reached it. "" for None."""
    if value is None or width < 1 or full_scale <= 0:
        return ""
    eighths = round(min(value, full_scale) / full_scale * width * 8)
    cells = ["█"] * (eighths // 8)
    if eighths % 8:
        cells.append(EIGHTHS[eighths % 8])
    cells += [" "] * (width - len(cells))
    if target is not None and 0 < target < full_scale:
        mark = min(width - 1, int(target / full_scale * width))
        if cells[mark] == " ":
            cells[mark] = TARGET_MARK
    text = "".join(cells)
    return text + OVERFLOW_MARK if value > full_scale else text.rstrip()
