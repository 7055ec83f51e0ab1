"""Output: one JSON document for scripts, short lines and rich tables for people.

rich is imported only when a table is printed, to keep start-up short.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from inventory_cli.domain.events import event_data

if TYPE_CHECKING:
    from inventory_cli.application.results import WriteResult
    from inventory_cli.application.queries import HistoryEntry
    from inventory_cli.storage.port import StockLine


# Characters that act on a terminal instead of showing: C0 and C1 controls (ESC, CSI),
# line and paragraph separators, direction overrides and isolates, lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def visible(text: str) -> str:
    """Text as it may reach a terminal: whatever a file holds, controls shown escaped
    (ESC as ``\\x1b``), so that output never clears a screen or reorders a line."""
    if text.isprintable():
        return text
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def safe_json(text: str) -> str:
    """JSON text with every unsafe character written as a \\u escape: the same document,
    but nothing in it acts on a terminal (json leaves C1 controls and U+202E raw)."""
    return text if text.isprintable() else _UNSAFE.sub(_json_escape, text)


def reader_left() -> None:
    """stdout's reader has gone (`| head`): that is not an error. Later output (and
    Python's final flush) goes nowhere; the command ends with its own exit code."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor: nothing will be flushed to it
        pass


def _write(text: str) -> bool:
    """Write to stdout; False once its reader has gone."""
    try:
        sys.stdout.write(text)
        return True
    except BrokenPipeError:
        reader_left()
        return False


def print_json(document: object) -> None:
    _write(safe_json(json.dumps(document, ensure_ascii=False, indent=None)) + "\n")


def write_result_json(result: WriteResult) -> dict[str, object]:
    """A write command's ``--json`` document (the shape lives with the typed result)."""
    return result.as_json()


def balance_sentence(line: StockLine) -> str:
    return (
        f"Now {line.on_hand} on hand, {line.reserved} reserved, "
        f"{line.available} available in store {line.store}."
    )


def plural(count: int, noun: str) -> str:
    """"1 row", "2 rows", "1,000 rows"."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def print_message(text: str) -> None:
    _write(visible(text) + "\n")


def _event_json(recorded: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The fields every event shows, in history and in the export feed."""
    return {
        "position": recorded.position,
        "version": recorded.version,
        "type": type(recorded.event).__name__,
        "store": recorded.store,
        "product": recorded.product,
        "quantity": recorded.event.quantity,
        "occurred_at": recorded.occurred_at,
        "recorded_at": recorded.recorded_at,
        "reason": data.get("reason"),
        "customer": data.get("customer"),
        "reservation_id": data.get("reservation_id"),
    }


def history_json(entry: HistoryEntry) -> dict[str, Any]:
    recorded = entry.recorded
    data = event_data(recorded.event)
    return {
        **_event_json(recorded, data),
        "actor": recorded.actor,
        "on_hand": entry.on_hand,
        "reserved": entry.reserved,
        "available": entry.available,
        # The fields of newer event types (transfer_id, to_store, expires_at, name…):
        **{k: v for k, v in data.items() if k not in ("reason", "customer", "reservation_id")},
    }

def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]], *,
                numeric: frozenset[str] = frozenset()) -> None:
    """A rich table on a terminal; elsewhere the same grid in plain ASCII, written directly.

    Away from a terminal (a pipe, a file, cron mail) rich adds nothing but time:
    laying out a 4,000-line table took it 4 s, the plain grid takes 0.1 s.
    """
    cells = [["" if value is None else visible(str(value)) for value in row] for row in rows]
    title = None if title is None else visible(title)
    if not sys.stdout.isatty():
        _print_plain_grid(title, columns, cells, numeric)
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, box=box.SIMPLE_HEAD, safe_box=True, highlight=False)
    for column in columns:
        table.add_column(column, justify="right" if column in numeric else "left", overflow="fold")
    for row in cells:
        # Text, not str: codes like "X[red]Y" are data, never rich markup.
        table.add_row(*(Text(value) for value in row))
    try:
        Console(markup=False).print(table, soft_wrap=False)
    except BrokenPipeError:
        reader_left()


def _print_plain_grid(
    title: str | None, columns: Sequence[str], cells: list[list[str]], numeric: frozenset[str]
) -> None:
    # Each cell is measured once: a history of a few hundred rows has thousands of them.
    heads = [_width(c) for c in columns]
    sizes = [[len(v) if v.isascii() else _width(v) for v in row] for row in cells]
    widths = [max(column) for column in zip(heads, *sizes)]

    def line(values: Sequence[str], lengths: Sequence[int], right: Sequence[bool]) -> str:
        padded = (
            (" " * (w - n) + v) if r else (v + " " * (w - n))
            for v, n, w, r in zip(values, lengths, widths, right)
        )
        return "| " + " | ".join(padded) + " |"

    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    right = [c in numeric for c in columns]
    out = [title] if title else []
    out += [rule, line(columns, heads, [False] * len(columns)), rule]
    out += [line(row, lengths, right) for row, lengths in zip(cells, sizes)]
    out.append(rule)
    _write("\n".join(out) + "\n")


def _width(text: str) -> int:
    """Terminal cells a text takes: wide East Asian letters two, combining marks none."""
    if text.isascii():
        return len(text)
    from unicodedata import combining, east_asian_width

    return sum(0 if combining(ch) else 2 if east_asian_width(ch) in "WF" else 1 for ch in text)


STOCK_COLUMNS = (
    "store", "product", "name", "on hand", "reserved", "available", "incoming", "reorder at",
    "version", "updated at",
)
_STOCK_NUMERIC = frozenset({"on hand", "reserved", "available", "incoming", "reorder at", "version"})


def print_stock_table(lines: Sequence[StockLine], title: str | None = None) -> None:
    print_table(
        title,
        STOCK_COLUMNS,
        (
            (l.store, l.product, l.name, l.on_hand, l.reserved, l.available, l.incoming,
             l.reorder_point, l.version, l.updated_at)
            for l in lines
        ),
        numeric=_STOCK_NUMERIC,
    )


def print_history_table(entries: Sequence[HistoryEntry], *, with_product: bool = False) -> None:
    def detail(entry: HistoryEntry) -> str:
        data = event_data(entry.recorded.event)
        return " ".join(f"{k}={v}" for k, v in data.items())

    columns = ("pos", "occurred at") + (("product",) if with_product else ()) + (
        "event", "qty", "detail", "by", "on hand", "reserved", "available")
    print_table(
        None,
        columns,
        (
            (
                e.recorded.position,
                e.recorded.occurred_at,
                *((e.recorded.product,) if with_product else ()),
                type(e.recorded.event).__name__,
                e.recorded.event.quantity,
                detail(e),
                e.recorded.actor,
                e.on_hand,
                e.reserved,
                e.available,
            )
            for e in entries
        ),
        numeric=frozenset({"pos", "qty", "on hand", "reserved", "available"}),
    )


def print_diff_table(documents: Sequence[dict[str, Any]]) -> None:
    print_table(
        None,
        ("store", "product", "on hand", "change", "reserved", "change", "available", "change",
         "incoming", "change"),
        (
            (
                d["store"], d["product"],
                *(
                    value
                    for figure in ("on_hand", "reserved", "available", "incoming")
                    for value in (f"{d[figure + '_before']} → {d[figure + '_after']}",
                                  f"{d[figure + '_change']:+}")
                ),
            )
            for d in documents
        ),
        numeric=frozenset({"change"}),
    )


def export_json(recorded: Any) -> dict[str, Any]:
    """One event of the feed: every stored field, the payload flattened and verbatim."""
    data = event_data(recorded.event)
    return {
        **_event_json(recorded, data),
        **data,
        "actor": recorded.actor,
        "idempotency_key": recorded.idempotency_key,
        "data": recorded.data,
        "hash": recorded.hash,
    }

def write_ndjson(documents: Iterable[dict[str, Any]]) -> None:
    write = sys.stdout.write
    encode = json.JSONEncoder(ensure_ascii=False).encode
    try:
        for document in documents:
            write(safe_json(encode(document)) + "\n")
    except BrokenPipeError:  # `export | head`: stop reading the log
        reader_left()


def verify_sentence(document: dict[str, Any], anchor: str | None) -> str:
    return _verify_outcome(document, anchor) + _dated_ahead_sentence(document)


def _dated_ahead_sentence(document: dict[str, Any]) -> str:
    count = document.get("dated_after_recorded")
    if not count:
        return ""
    return (f" {plural(count, 'event')} {'is' if count == 1 else 'are'} dated after "
            f"{'it was' if count == 1 else 'they were'} recorded, the first at position "
            f"{document['first_dated_after_recorded']}: a clock was ahead when an earlier event "
            "of that product was written; check the computers' clocks.")


def _verify_outcome(document: dict[str, Any], anchor: str | None) -> str:
    if document["ok"]:
        text = (f"The log holds: {plural(document['events'], 'event')} chained, projections match. "
                f"Head: {document['head_position']}:{document['head_hash']}")
        return text + (" (passes through the anchor)." if anchor else ".")
    problems = []
    if document["first_bad_position"] is not None:
        problems.append(f"the event at position {document['first_bad_position']} no longer matches its hash "
                        "(the file was changed behind inventory's back)")
    if document.get("anchor_ok") is False:
        problems.append(f"the chain does not pass through the anchor {anchor}")
    if not document["projections_ok"]:
        problems.append("the projections differ from the log (run `inventory rebuild-projections`)")
    return "Verification failed: " + "; ".join(problems) + "."
