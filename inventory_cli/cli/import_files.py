"""Reading import files row by row: NDJSON and CSV, from a file or stdin.

Line numbers are physical lines of the file (the CSV header is line 1). A row
that cannot be read becomes a SourceRow with a ``problem``, so that it is
reported with the others instead of stopping the import.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from typing import BinaryIO

from inventory_cli.application.import_rows import FIELDS
from inventory_cli.application.importer import SourceRow

FORMATS = ("csv", "ndjson")
_EXTENSIONS = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}
_KNOWN = frozenset(FIELDS)


def format_for(name: str, given: str | None) -> str | None:
    """The format to read: the one given, else the one the extension says (stdin: ndjson)."""
    if given is not None:
        return given
    if name == "-":
        return "ndjson"
    for extension, fmt in _EXTENSIONS.items():
        if name.lower().endswith(extension):
            return fmt
    return None


def read_rows(binary: BinaryIO, fmt: str) -> Iterator[SourceRow]:
    return _ndjson_rows(binary) if fmt == "ndjson" else _csv_rows(binary)


def _ndjson_rows(binary: BinaryIO) -> Iterator[SourceRow]:
    for number, raw in enumerate(binary, 1):
        if number == 1 and raw.startswith(_BOM):  # as for CSV: editors on Windows add one
            raw = raw[len(_BOM):]
        if not raw.strip():
            continue
        # tuple.__new__ skips the named tuple's Python-level __new__: once per row.
        # (Repeated keys are looked for where the row is parsed: import_rows.repeated_fields.)
        yield _new_tuple(SourceRow, (number, raw, None))


_BOM = b"\xef\xbb\xbf"
_new_tuple = tuple.__new__


def _csv_rows(binary: BinaryIO) -> Iterator[SourceRow]:
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as error:
        yield SourceRow(1, None, f"the header row cannot be read as CSV ({error})")
        return
    names = [name.strip() for name in header]
    unknown = [name for name in names if name not in _KNOWN]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if unknown or repeated:
        problems = []
        if unknown:
            problems.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
        if repeated:
            problems.append(f"repeated column(s) {', '.join(map(repr, repeated))}")
        yield SourceRow(
            1, None, "; ".join(problems) + f" in the header (the fields are {', '.join(FIELDS)})"
        )
    last_line = reader.line_num
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield SourceRow(last_line + 1, None, f"not readable as CSV ({error})")
            last_line = reader.line_num
            continue
        first_line, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(names):
            yield SourceRow(
                first_line, None, f"has {len(record)} cells but the header has {len(names)}"
            )
            continue
        content = {
            name: cell for name, cell in zip(names, record) if cell != "" and name in _KNOWN
        }
        if any(_has_undecodable(cell) for cell in content.values()):
            yield SourceRow(first_line, None, "is not valid UTF-8 text")
            continue
        yield SourceRow(first_line, content)


def _has_undecodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def open_source(name: str) -> BinaryIO:
    """The binary stream to read: stdin for '-', else the file (OSError if it can't be opened)."""
    if name == "-":
        return sys.stdin.buffer
    return open(name, "rb")
