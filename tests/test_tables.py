"""The table layout (cli/tables.py): whatever the rows, a table fits the terminal and
keeps codes whole; in a pipe, rows are never cut."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from inventory_cli.cli.tables import SAMPLE, Column, cell_width, write_table

COLUMNS = (
    Column("pos", "number", drop=3), Column("product"), Column("event"),
    Column("qty", "number"), Column("detail", "note", drop=2), Column("by", "text", drop=1),
    Column("name", "text"), Column("reserved", "number", drop=0),
)

codes = st.text(st.characters(codec="utf-8", categories=("L", "N", "Pd")), min_size=1, max_size=14)
words = st.lists(st.text(st.characters(codec="utf-8", categories=("L", "N", "Pd", "Sm"),
                                       exclude_characters="|"),
                         min_size=1, max_size=30), min_size=0, max_size=6).map(" ".join)
rows = st.lists(st.tuples(st.integers(1, 10**6).map(str), codes, codes,
                          st.integers(-99, 999).map(str), words, words, words,
                          st.integers(0, 99).map(str)), min_size=1, max_size=30)


def drawn(table_rows, width):
    out = io.StringIO()
    write_table(out, COLUMNS, table_rows, width=width)
    return out.getvalue().splitlines()


@settings(max_examples=150, deadline=None)
@given(rows, st.integers(60, 160))
def test_a_table_fits_the_terminal_and_keeps_codes_whole(table_rows, width):
    lines = drawn(table_rows, width)
    assert all(cell_width(line) <= width for line in lines)
    for row in table_rows:
        for code in row[1:3]:
            assert any(code in line for line in lines), code


@settings(max_examples=100, deadline=None)
@given(rows)
def test_in_a_pipe_every_row_is_one_whole_line(table_rows):
    lines = drawn(table_rows, None)
    body = [line for line in lines if line.startswith("| ") and not line.startswith("| pos ")]
    assert len(body) == len(table_rows)
    for line, row in zip(body, table_rows):
        assert [cell.strip() for cell in line[2:-2].split(" | ")] == [v.strip() for v in row]


def test_a_longer_code_after_the_measured_rows_starts_a_new_block_with_its_header():
    table_rows = [(str(n), "SKU", "StockAdded", "1", "", "", "", "0") for n in range(SAMPLE)]
    table_rows.append(("9", "A-MUCH-LONGER-CODE", "StockAdded", "1", "", "", "", "0"))
    for width in (None, 80):
        lines = drawn(table_rows, width)
        assert sum(line.lstrip("| ").startswith("pos") for line in lines) == 2
        assert any("A-MUCH-LONGER-CODE" in line for line in lines[-3:])
