"""Output: JSON for scripts, short lines and tables for people.

What reaches a terminal from the database goes through ``visible`` (tables through
``_cell``), JSON through ``safe_json``; how tables are laid out is ``tables``' concern.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from inventory_cli.cli.tables import Column
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
        f"Now {line.on_hand:,} on hand, {line.reserved:,} reserved, "
        f"{line.available:,} available in store {line.store}."
    )


def plural(count: int, noun: str, many: str | None = None) -> str:
    """"1 row", "2 rows", "1,000 rows" (``many`` for an irregular plural): the one
    way every command writes a count."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"


def verb(count: int, one: str, many: str) -> str:
    """The verb that agrees with a count: verb(1, "was", "were")."""
    return one if count == 1 else many


def print_message(text: str) -> None:
    _write(visible(text) + "\n")


def print_lines(text: str) -> None:
    """Text of several lines (the metrics exposition) with each line shown escaped."""
    _write("\n".join(visible(line) for line in text.split("\n")))


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

def print_json_array(documents: Iterable[object]) -> None:
    """One JSON array, written element by element as they come (the same text as print_json)."""
    write = sys.stdout.write
    encode = json.JSONEncoder(ensure_ascii=False).encode
    separator = "["
    for document in documents:
        write(separator + safe_json(encode(document)))
        separator = ", "
    write("[]\n" if separator == "[" else "]\n")


def local_time(moment: str) -> str:
    """A stored ISO-8601 time as people read it: local (the TZ in force), to the second."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(moment).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return moment


def _cell(value: object, kind: str) -> str:
    """What a person sees of one value of the database."""
    if value is None:
        return ""
    return visible(local_time(str(value)) if kind == "time" else str(value))


def print_table(columns: Sequence[Column], rows: Iterable[Sequence[object]]) -> None:
    """A table on stdout, written as the rows come: fitted to a terminal, else a plain grid."""
    from inventory_cli.cli.tables import write_table

    kinds = [c.kind for c in columns]
    cells = ([_cell(v, k) for v, k in zip(row, kinds)] for row in rows)
    out = sys.stdout
    if out.isatty():
        import shutil

        write_table(out, columns, cells, width=shutil.get_terminal_size().columns,
                    bold=lambda text: f"\x1b[1m{text}\x1b[0m")
    else:
        write_table(out, columns, cells, width=None)


STOCK_COLUMNS = (
    Column("store"), Column("product"), Column("name", "text", drop=5),
    Column("on hand", "number"), Column("reserved", "number", drop=4),
    Column("available", "number"), Column("incoming", "number", drop=3),
    Column("reorder at", "number", drop=2), Column("version", "number", drop=0),
    Column("updated at", "time", drop=1),
)


def print_stock_table(lines: Iterable[StockLine]) -> None:
    print_table(
        STOCK_COLUMNS,
        (
            (l.store, l.product, l.name, l.on_hand, l.reserved, l.available, l.incoming,
             l.reorder_point, l.version, l.updated_at)
            for l in lines
        ),
    )


def _detail(entry: HistoryEntry) -> str:
    data = event_data(entry.recorded.event)
    return " ".join(
        f"{k}={local_time(v) if k.endswith('_at') and isinstance(v, str) else v}"
        for k, v in data.items()
    )


def print_history_table(entries: Iterable[HistoryEntry], *, with_product: bool = False) -> None:
    columns = (
        Column("pos", "number", drop=3), Column("occurred at", "time"),
        *((Column("product"),) if with_product else ()),
        Column("event"), Column("qty", "number"), Column("detail", "note", drop=2),
        Column("by", "text", drop=1), Column("on hand", "number", drop=4),
        Column("reserved", "number", drop=0), Column("available", "number", drop=5),
    )
    print_table(
        columns,
        (
            (
                e.recorded.position,
                e.recorded.occurred_at,
                *((e.recorded.product,) if with_product else ()),
                type(e.recorded.event).__name__,
                e.recorded.event.quantity,
                _detail(e),
                e.recorded.actor,
                e.on_hand,
                e.reserved,
                e.available,
            )
            for e in entries
        ),
    )


def print_diff_table(documents: Iterable[dict[str, Any]]) -> None:
    figures = (("on hand", "on_hand", None), ("reserved", "reserved", 1),
               ("available", "available", None), ("incoming", "incoming", 0))
    columns = (Column("store"), Column("product")) + tuple(
        column
        for header, _, drop in figures
        for column in (Column(header, "number", drop), Column("change", "number", drop))
    )
    print_table(
        columns,
        (
            (
                d["store"], d["product"],
                *(
                    value
                    for _, figure, _ in figures
                    for value in (f"{d[figure + '_before']} → {d[figure + '_after']}",
                                  f"{d[figure + '_change']:+}")
                ),
            )
            for d in documents
        ),
    )


RESERVATION_COLUMNS = (
    ("reservation_id", Column("reservation")), ("store", Column("store", drop=1)),
    ("product", Column("product")), ("quantity", Column("qty", "number")),
    ("customer", Column("customer", "text")), ("created_at", Column("created at", "time", drop=0)),
    ("expires_at", Column("expires at", "time", drop=2)),
)

TRANSFER_COLUMNS = (
    ("transfer_id", Column("transfer")), ("product", Column("product")),
    ("from", Column("from", drop=4)), ("to", Column("to")), ("quantity", Column("qty", "number")),
    ("received", Column("received", "number", drop=2)), ("lost", Column("lost", "number", drop=1)),
    ("status", Column("status", drop=3)), ("shipped_at", Column("shipped at", "time", drop=0)),
)

PRODUCT_COLUMNS = (
    ("store", Column("store")), ("product", Column("product")), ("name", Column("name", "text")),
    ("reorder_point", Column("reorder point", "number")),
)


def print_records(columns: Sequence[tuple[str, Column]], records: Iterable[dict[str, Any]]) -> None:
    """A table of records (reservations, transfers, products): each column is a field."""
    print_table([c for _, c in columns], ([record[k] for k, _ in columns] for record in records))


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
