"""Tables for people, written row by row as the rows are read.

The column widths come from the first rows (up to ``SAMPLE`` of them) and the
header; a later row that needs more room for a code starts a new block with the
header again. On a terminal the table fits its width: text columns (names,
details) wrap, and when that is not enough the columns of less use go, in each
table's order. Codes, ids, numbers and times are never broken. Away from a
terminal (a pipe, a file, cron mail) it is a plain ASCII grid, one line a row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import NamedTuple, TextIO

SAMPLE = 1000  # rows measured before the first line is written
_GAP = 2  # spaces between columns on a terminal
_TEXT_MIN = 8  # a text column is not made narrower than this (or its header)
_WORD_MAX = 40  # a text column keeps its words whole up to this length


class Column(NamedTuple):
    """A column: its header, what it holds, and when it goes on a narrow terminal.

    kind: "code" (codes, ids, words: never broken), "number" (right-aligned),
    "time" (never broken), "text" (wraps at spaces), "note" (text that, when its
    drop number comes, moves to its own lines under the row instead of going).
    drop: columns with a lower number go first when the table does not fit;
    None: never dropped.
    """

    header: str
    kind: str = "code"
    drop: int | None = None


def cell_width(text: str) -> int:
    """Terminal cells a text takes: wide East Asian letters two, combining marks none."""
    if text.isascii():
        return len(text)
    from unicodedata import combining, east_asian_width

    return sum(0 if combining(ch) else 2 if east_asian_width(ch) in "WF" else 1 for ch in text)


def write_table(out: TextIO, columns: Sequence[Column], rows: Iterable[Sequence[str]], *,
                width: int | None, bold: Callable[[str], str] = str) -> None:
    """Write the rows (cells already text) as a table on ``out``.

    width: the terminal's width (a table that fits it), or None for the plain grid.
    """
    iterator = iter(rows)
    pending = list(islice(iterator, SAMPLE))
    measure = _Measure(columns)
    measure.add(pending)
    layout = _Layout(columns, measure, width, bold)
    out.write(layout.head())
    while pending:
        for row in pending:
            if layout.too_narrow_for(row):
                measure.add([row])
                out.write(layout.foot())
                layout = _Layout(columns, measure, width, bold)
                out.write(layout.head())
            out.write(layout.row(row))
        pending = list(islice(iterator, 100))
    out.write(layout.foot())


class _Measure:
    """The widest cell of each column, and the longest word of each text column."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = columns
        self.natural = [cell_width(c.header) for c in columns]
        self.words = [0] * len(columns)
        self.text = [i for i, c in enumerate(columns) if c.kind in _WRAPPED]

    def add(self, rows: Sequence[Sequence[str]]) -> None:
        natural, words = self.natural, self.words
        for row in rows:
            for i, value in enumerate(row):
                size = len(value) if value.isascii() else cell_width(value)
                if size > natural[i]:
                    natural[i] = size
            for i in self.text:
                if row[i]:
                    longest = max(cell_width(piece) for piece, _ in _pieces(row[i]))
                    words[i] = max(words[i], min(longest, _WORD_MAX))


_WRAPPED = ("text", "note")
_INDENT = "    "  # before a note under its row


class Fitted(NamedTuple):
    widths: list[int | None]  # None: not in the row
    below: list[int]  # the note columns written under the row


def fit(columns: Sequence[Column], natural: Sequence[int], words: Sequence[int],
        width: int) -> Fitted:
    """Each column's width on a terminal ``width`` cells wide.

    A text column may be as narrow as its header, _TEXT_MIN or its longest word
    (whichever is widest); when even that does not fit, columns go in their drop
    order (a note to its own lines), and as a last resort long words are cut.
    """
    shown = list(range(len(columns)))
    below: list[int] = []
    by_drop = sorted({c.drop for c in columns if c.drop is not None})
    whole_words = True
    while True:
        room = width - _GAP * (len(shown) - 1)
        fixed = sum(natural[i] for i in shown if columns[i].kind not in _WRAPPED)
        text = [i for i in shown if columns[i].kind in _WRAPPED]
        least = {i: min(natural[i], max(_TEXT_MIN, cell_width(columns[i].header),
                                        words[i] if whole_words else 0))
                 for i in text}
        if fixed + sum(least.values()) <= room:
            break
        if by_drop:  # the columns of the lowest drop number go together
            going = by_drop.pop(0)
            below += [i for i in shown if columns[i].drop == going and columns[i].kind == "note"]
            shown = [i for i in shown if columns[i].drop != going]
        elif whole_words:  # the last resort: long words in text columns are cut
            whole_words = False
        else:
            break
    widths: list[int | None] = [None] * len(columns)
    for i in shown:
        widths[i] = natural[i]
    spare = room - fixed - sum(least.values())
    for i in text:  # the room left goes to the text columns, in order
        widths[i] = least[i] + max(0, min(natural[i] - least[i], spare))
        spare -= widths[i] - least[i]
    return Fitted(widths, below)


class _Layout:
    """Column widths for one block of rows, and how to draw its lines."""

    def __init__(self, columns: Sequence[Column], measure: _Measure, width: int | None,
                 bold: Callable[[str], str]) -> None:
        self.columns = columns
        self.terminal = width is not None
        self.width = width or 0
        fitted = (fit(columns, measure.natural, measure.words, width) if width is not None
                  else Fitted(list(measure.natural), []))
        self.widths, self.below = fitted
        self.bold = bold

    def too_narrow_for(self, row: Sequence[str]) -> bool:
        """A cell of this row would not fit its column (on a terminal, text wraps instead)."""
        return any(
            w is not None and (c.kind not in _WRAPPED or not self.terminal)
            and len(v) > w // 2 and cell_width(v) > w
            for c, w, v in zip(self.columns, self.widths, row)
        )

    def _shown(self, values: Sequence[str]) -> list[tuple[Column, int, str]]:
        return [(c, w, v) for c, w, v in zip(self.columns, self.widths, values) if w is not None]

    def head(self) -> str:
        headers = self._shown([c.header for c in self.columns])
        if self.terminal:
            line = (" " * _GAP).join(_pad(h, w, False) for _, w, h in headers).rstrip()
            rule = "─" * sum(w + _GAP for _, w, _ in headers)
            return self.bold(line) + "\n" + rule[:-_GAP] + "\n"
        line = "| " + " | ".join(_pad(h, w, False) for _, w, h in headers) + " |"
        return f"{self._rule()}\n{line}\n{self._rule()}\n"

    def foot(self) -> str:
        return "" if self.terminal else self._rule() + "\n"

    def _rule(self) -> str:
        return "+" + "+".join("-" * (w + 2) for w in self.widths if w is not None) + "+"

    def row(self, values: Sequence[str]) -> str:
        cells = self._shown(values)
        if not self.terminal:
            return "| " + " | ".join(_pad(v, w, c.kind == "number") for c, w, v in cells) + " |\n"
        stacked = [_wrap(v, w) if c.kind in _WRAPPED else [v] for c, w, v in cells]
        height = max(len(lines) for lines in stacked)
        out = []
        for n in range(height):
            out.append((" " * _GAP).join(
                _pad(lines[n] if n < len(lines) else "", w, c.kind == "number")
                for (c, w, _), lines in zip(cells, stacked)
            ).rstrip())
        for i in self.below:
            if values[i]:
                out += [_INDENT + line for line in _wrap(values[i], self.width - len(_INDENT))]
        return "\n".join(out) + "\n"


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(0, width - cell_width(text))
    return gap + text if right else text + gap


def _pieces(text: str) -> Iterator[tuple[str, str]]:
    """The pieces a line may break between, each with what joins it to the one before:
    words (joined by a space), and in `key=value` the key and the value (joined by nothing),
    so that an id after `reservation_id=` moves to the next line whole."""
    for n, word in enumerate(text.split(" ")):
        key, equals, value = word.partition("=")
        if equals and key and value:
            yield key + "=", " " if n else ""
            yield value, ""
        else:
            yield word, " " if n else ""


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` cells, broken between pieces; a longer piece is cut."""
    if cell_width(text) <= width:
        return [text]
    lines: list[str] = []
    line = ""
    for piece, joint in _pieces(text):
        for n, part in enumerate(_cut(piece, width)):
            candidate = line + (joint if n == 0 else "") + part if line else part
            if cell_width(candidate) <= width:
                line = candidate
            else:
                lines.append(line)
                line = part
    lines.append(line)
    return [l for l in lines if l] or [""]


def _cut(word: str, width: int) -> Iterator[str]:
    while cell_width(word) > width:
        size = width
        while cell_width(word[:size]) > width:
            size -= 1
        yield word[:max(size, 1)]
        word = word[max(size, 1):]
    yield word
