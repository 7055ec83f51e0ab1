"""Goal 7: a real retail year (UCI "Online Retail", CC BY 4.0) as an inventory import.

Conversion (also usable alone: python benchmarks/retail.py CSV OUT.ndjson [TAG]):

- store = Country, product = StockCode exactly as written (codes are
  case-sensitive: 15056bl and 15056BL stay two products);
- a sale (a normal invoice line) is a `reserve` for the CustomerID (or
  `unknown` when it is empty) and a `fulfill` of that reservation;
- a cancellation (InvoiceNo starting with C, negative Quantity) is an `add`
  of the units with reason `returned`;
- a negative Quantity on a normal invoice (a write-off: no customer, price 0)
  is a `remove` with reason `written off`;
- a Quantity of 0, and service lines that are not goods (POST, DOT, M, D, C2,
  S, BANK CHARGES, AMAZONFEE, CRUK, PADS, B), are skipped and counted;
- each store+product opens with a `count` just before its first row: the
  smallest stock that lets every later sale and write-off through (the data
  has no receipts);
- `at` is InvoiceDate (M/D/YYYY or M/D/YY, H:MM), UK local time via
  zoneinfo Europe/London, with its offset; rows are put in time order (stable,
  so rows of one minute keep the file's order);
- ids are stable: TAG:INVOICE:LINE (the file's physical line), so re-running
  the converter gives the same ids and re-importing applies nothing twice.
  Exact duplicate lines are genuine sales and stay two sales.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from common import (WORK, Result, import_cases, info_result, interleaved, inventory_argv, median,
                    remove_db, run, say)

DATA = next((folder for folder in (Path(__file__).resolve().parents[2] / "shared" / "data" / "online-retail",
                                  Path("/work/shared/data/online-retail")) if folder.is_dir()),
            Path("/work/shared/data/online-retail"))
FILES = {"non-uk": "online_retail_non_uk.csv", "first-20k": "online_retail_first_20k.csv"}
SERVICE_CODES = frozenset({"POST", "DOT", "M", "D", "C2", "S", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS", "B"})
LONDON = ZoneInfo("Europe/London")


def convert(source: Path, target: Path, tag: str) -> Counter:
    """Write the import file; return counts of what was made of the rows."""
    stats: Counter = Counter()
    times: dict[str, str] = {}
    rows = []  # (at, line, kind, store, product, quantity, invoice, customer)
    with source.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        for record in reader:
            stats["csv rows"] += 1
            line = reader.line_num
            code, quantity, invoice = record["StockCode"], int(record["Quantity"]), record["InvoiceNo"]
            if quantity == 0:
                stats["skipped: quantity 0"] += 1
                continue
            if code in SERVICE_CODES:
                stats["skipped: service line"] += 1
                continue
            if invoice.startswith("C"):
                if quantity > 0:
                    stats["skipped: cancellation with a positive quantity"] += 1
                    continue
                kind = "return"
            elif quantity < 0:
                kind = "write-off"
            else:
                kind = "sale"
            stats[kind + "s"] += 1
            when = times.get(record["InvoiceDate"])
            if when is None:
                when = times[record["InvoiceDate"]] = _local_time(record["InvoiceDate"])
            rows.append((when, line, kind, record["Country"], code, abs(quantity), invoice,
                         record["CustomerID"] or "unknown"))
    rows.sort(key=lambda row: (datetime.fromisoformat(row[0]), row[1]))

    # The opening stock of each store+product: the deepest the balance would go below 0.
    balance: dict[tuple[str, str], int] = {}
    opening: dict[tuple[str, str], int] = {}
    for _, _, kind, store, product, quantity, _, _ in rows:
        stream = (store, product)
        balance[stream] = balance.get(stream, 0) + (quantity if kind == "return" else -quantity)
        opening[stream] = max(opening.get(stream, 0), -balance[stream])

    codes = {product for _, product in opening}
    stats["products whose code differs from another only by case"] = sum(
        1 for code in codes if code != code.upper() and code.upper() in codes
    )
    stats["store+product streams"] = len(opening)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    opened: set[tuple[str, str]] = set()
    with target.open("w", encoding="utf-8") as out:
        for at, line, kind, store, product, quantity, invoice, customer in rows:
            stream = (store, product)
            if stream not in opened:
                opened.add(stream)
                out.write(dumps({"op": "count", "store": store, "product": product,
                                 "quantity": opening[stream], "at": at,
                                 "id": f"{tag}:open:{store}:{product}"}) + "\n")
                stats["import rows"] += 1
            key = f"{tag}:{invoice}:{line}"
            if kind == "sale":
                out.write(dumps({"op": "reserve", "store": store, "product": product,
                                 "quantity": quantity, "customer": customer, "id": key, "at": at}) + "\n")
                out.write(dumps({"op": "fulfill", "reservation_id": key, "id": key + ":f", "at": at}) + "\n")
                stats["import rows"] += 2
            else:
                out.write(dumps({"op": "add" if kind == "return" else "remove", "store": store,
                                 "product": product, "quantity": quantity,
                                 "reason": "returned" if kind == "return" else "written off",
                                 "id": key, "at": at}) + "\n")
                stats["import rows"] += 1
    return stats


def _local_time(text: str) -> str:
    for layout in ("%m/%d/%Y %H:%M", "%m/%d/%y %H:%M"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=LONDON).isoformat()
        except ValueError:
            continue
    raise ValueError(f"unexpected InvoiceDate {text!r}")


def bench(quick: bool) -> list[Result]:
    reps = 1 if quick else 5
    results = []
    for tag, name in FILES.items():
        source = DATA / name
        if not source.exists():
            say(f"goal 7: {source} is missing; skipped")
            continue
        target = WORK / f"retail-{tag}.ndjson"
        started = time.perf_counter()
        stats = convert(source, target, tag)
        converted = time.perf_counter() - started
        rows = stats["import rows"]
        db_tool, db_plain = WORK / f"retail-{tag}.db", WORK / f"retail-{tag}-plain.db"

        say(f"goal 7: {name}: {stats['csv rows']:,} CSV rows -> {rows:,} import rows, {reps} repetitions")
        samples = interleaved(import_cases(target, db_tool, db_plain), reps, warmup=not quick)
        t, p = median(samples["tool"]), median(samples["plain"])
        lines = json.loads(run([*inventory_argv(), "--db", str(db_tool), "stock", "--all-stores", "--json"],
                               capture=True).stdout)
        quirks = "; ".join(f"{k} {v:,}" for k, v in sorted(stats.items()))
        results.append(info_result(
            "7", f"import {name} ({rows:,} rows, one transaction)", rows / t, "rows/s",
            "plain executemany script", rows / p,
            note=f"{t:.2f} s vs {p:.2f} s; converted in {converted:.2f} s; "
                 f"{len(lines):,} stock lines after import; {quirks}",
        ))
        remove_db(db_tool)
        remove_db(db_plain)
    return results


if __name__ == "__main__":
    counts = convert(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "retail")
    for key, value in sorted(counts.items()):
        print(f"{key}: {value:,}")
