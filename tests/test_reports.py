"""`report movements` and `report cover` (spec/cli.md, "Reports").

Movements are checked on the real retail year (UCI Online Retail, CC BY 4.0:
a sample of its countries, converted by benchmarks/retail.py and imported)
against an oracle computed here straight from the CSV. Cover is checked on a
small log with known sales, now and as of a past date.
"""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO_ROOT, RETAIL_DATA, data, run_inventory
from terminal import on_terminal

RETAIL = RETAIL_DATA / "online_retail_non_uk.csv"
SAMPLE_COUNTRIES = ("Spain", "Portugal", "Norway", "Channel Islands", "Japan", "Saudi Arabia")
SERVICE_CODES = {"POST", "DOT", "M", "D", "C2", "S", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS", "B"}
LONDON = ZoneInfo("Europe/London")
MOVEMENT_KEYS = ["period", "store", "product", "added", "received", "removed", "fulfilled",
                 "shipped", "lost", "counted", "on_hand_end"]


# -- the retail year ---------------------------------------------------------------------


def _csv_lines() -> list[dict[str, str]]:
    with RETAIL.open(newline="", encoding="utf-8") as file:
        return [row for row in csv.DictReader(file) if row["Country"] in SAMPLE_COUNTRIES]


@pytest.fixture(scope="module")
def retail(tmp_path_factory) -> tuple[Path, list[dict[str, str]]]:
    """The sample imported into a database, and its CSV rows."""
    if not RETAIL.exists():
        pytest.skip(f"{RETAIL} is not on this machine")
    folder = tmp_path_factory.mktemp("retail")
    rows = _csv_lines()
    sample = folder / "sample.csv"
    with sample.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    converted = folder / "sample.ndjson"
    subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "retail.py"), str(sample),
                    str(converted), "t"], check=True, capture_output=True, cwd=folder)
    db = folder / "retail.db"
    result = run_inventory(db, "import", str(converted), "-q")
    assert result.returncode == 0, result.stderr
    return db, rows


def _oracle(rows: list[dict[str, str]], period_of) -> dict[tuple[str, str], list[dict]]:
    """Per store + product, the report rows computed from the CSV alone.

    A sale is fulfilled, a cancellation comes back as added, a negative quantity
    on a normal invoice is removed; the stream opens with a count of the deepest
    deficit it would otherwise reach (no receipts in the data).
    """
    events: dict[tuple[str, str], list[tuple[datetime, str, int]]] = defaultdict(list)
    for row in rows:
        quantity, code, invoice = int(row["Quantity"]), row["StockCode"], row["InvoiceNo"]
        if quantity == 0 or code in SERVICE_CODES or (invoice.startswith("C") and quantity > 0):
            continue
        kind = "added" if invoice.startswith("C") else "removed" if quantity < 0 else "fulfilled"
        when = datetime.strptime(row["InvoiceDate"], "%m/%d/%Y %H:%M").replace(tzinfo=LONDON)
        events[row["Country"], code].append((when, kind, abs(quantity)))
    lines = {}
    for (store, product), moves in events.items():
        moves.sort(key=lambda move: move[0])
        balance = deepest = 0
        for _, kind, quantity in moves:
            balance += quantity if kind == "added" else -quantity
            deepest = min(deepest, balance)
        periods: dict[str, dict] = {}
        on_hand = 0
        for index, (when, kind, quantity) in enumerate(moves):
            period = period_of(when)
            row = periods.setdefault(period, dict.fromkeys(MOVEMENT_KEYS[3:], 0))
            if index == 0:
                row["counted"] += -deepest
                on_hand = -deepest
            row[kind] += quantity
            on_hand += quantity if kind == "added" else -quantity
            row["on_hand_end"] = on_hand
        lines[store, product] = [
            {"period": period, "store": store, "product": product, **figures}
            for period, figures in periods.items()
        ]
    return lines


def _sampled(oracle: dict, count: int = 25) -> list[tuple[str, str]]:
    lines = sorted(oracle)
    return random.Random(18).sample(lines, count)


def _report(db: Path, *args: str, tz: str = "Europe/London") -> list[dict]:
    result = run_inventory(db, "report", "movements", *args, "--json", env={"TZ": tz})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _by_line(documents: list[dict]) -> dict[tuple[str, str], list[dict]]:
    lines: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for document in documents:
        lines[document["store"], document["product"]].append(document)
    return lines


def test_monthly_movements_of_the_retail_year_match_the_csv(retail):
    db, rows = retail
    oracle = _oracle(rows, lambda when: f"{when.year}-{when.month:02d}")
    documents = _report(db, "--all-stores", "--by", "month")
    assert all(list(d) == MOVEMENT_KEYS for d in documents)
    report = _by_line(documents)
    assert set(report) == set(oracle)
    for line in _sampled(oracle):
        assert report[line] == oracle[line], line
    months = {d["period"] for d in documents}
    assert min(months) == "2010-12" and max(months) == "2011-12"


def test_weekly_movements_use_iso_weeks_across_the_new_year(retail):
    db, rows = retail
    oracle = _oracle(rows, lambda when: "%d-W%02d" % when.isocalendar()[:2])
    documents = _report(db, "--all-stores", "--by", "week")
    report = _by_line(documents)
    for line in _sampled(oracle):
        assert report[line] == oracle[line], line
    weeks = sorted({d["period"] for d in documents})
    assert weeks[0] == "2010-W48" and weeks[-1] == "2011-W49"  # 2010-12-01 .. 2011-12-09


def test_daily_movements_follow_the_time_zone_in_force(retail):
    db, rows = retail
    tokyo = ZoneInfo("Asia/Tokyo")
    oracle = _oracle(rows, lambda when: when.astimezone(tokyo).date().isoformat())
    report = _by_line(_report(db, "--all-stores", "--by", "day", tz="Asia/Tokyo"))
    for line in _sampled(oracle, 10):
        assert report[line] == oracle[line], line


def test_the_last_period_ends_on_the_stock_of_every_line(retail):
    db, _ = retail
    report = _by_line(_report(db, "--all-stores"))
    stock = json.loads(run_inventory(db, "stock", "--all-stores", "--json").stdout)
    assert {(l["store"], l["product"]): l["on_hand"] for l in stock} == {
        line: periods[-1]["on_hand_end"] for line, periods in report.items()
    }


def test_since_and_until_keep_the_periods_between_and_the_stock_before(retail):
    db, rows = retail
    oracle = _oracle(rows, lambda when: f"{when.year}-{when.month:02d}")
    report = _by_line(_report(db, "--all-stores", "--since", "2011-03-01", "--until", "2011-05-31"))
    for line in _sampled(oracle):
        expected = [r for r in oracle[line] if "2011-03" <= r["period"] <= "2011-05"]
        assert report.get(line, []) == expected, line


# -- a log of known movements --------------------------------------------------------------


def _import(db: Path, rows: list[dict], tz: str = "UTC") -> None:
    text = "".join(json.dumps(row) + "\n" for row in rows)
    file = db.parent / f"rows-{len(text)}.ndjson"
    file.write_text(text)
    result = run_inventory(db, "import", str(file), "-q", env={"TZ": tz})
    assert result.returncode == 0, result.stderr


def test_iso_weeks_of_many_new_years(db_path):
    days = [date(year, 12, 24) + timedelta(days=i) for year in range(2003, 2026) for i in range(14)]
    _import(db_path, [{"op": "add", "product": "P", "quantity": 1, "at": f"{d}T12:00:00+00:00"}
                      for d in days])
    weeks = defaultdict(int)
    for d in days:
        weeks["%d-W%02d" % d.isocalendar()[:2]] += 1
    report = _report(db_path, "P", "--by", "week", tz="UTC")
    assert [(r["period"], r["added"]) for r in report] == sorted(weeks.items())


@pytest.mark.parametrize(("tz", "month"), [("UTC", "2011-03"), ("Europe/London", "2011-04"),
                                           ("America/New_York", "2011-03")])
def test_an_event_near_midnight_falls_in_the_local_month(db_path, tz, month):
    _import(db_path, [{"op": "add", "product": "P", "quantity": 3, "at": "2011-03-31T23:30:00+00:00"}])
    assert [r["period"] for r in _report(db_path, "P", tz=tz)] == [month]


def test_every_kind_of_movement_has_its_column(invoke, db_path):
    invoke("add", "P", "10")
    invoke("remove", "P", "2", "--reason", "damaged")
    rid = data(invoke("reserve", "P", "3", "--customer", "c"))["reservation_id"]
    invoke("fulfill", rid)
    invoke("count", "P", "4")
    invoke("add", "P", "6")
    tid = data(invoke("transfer", "P", "5", "--from", "main", "--to", "north"))["transfer_id"]
    invoke("receive", tid, "--quantity", "4")
    rows = data(invoke("report", "movements", "--all-stores", "--by", "day"))
    figures = {r["store"]: {k: v for k, v in r.items() if k not in ("period", "store", "product")}
               for r in rows}
    assert figures == {
        "main": {"added": 16, "received": 0, "removed": 2, "fulfilled": 3, "shipped": 5,
                 "lost": 0, "counted": -1, "on_hand_end": 5},
        "north": {"added": 0, "received": 4, "removed": 0, "fulfilled": 0, "shipped": 0,
                  "lost": 1, "counted": 0, "on_hand_end": 4},
    }


def test_csv_has_the_json_fields_and_values(invoke):
    invoke("add", "P;1", "10")
    invoke("add", 'Q"2', "5")
    documents = data(invoke("report", "movements"))
    result = invoke("report", "movements", "--csv", json=False)
    assert result.exit_code == 0
    table = list(csv.reader(io.StringIO(result.stdout, newline="")))
    assert table[0] == MOVEMENT_KEYS
    assert table[1:] == [[str(d[k]) for k in MOVEMENT_KEYS] for d in documents]


@pytest.mark.parametrize("args", [
    ["movements", "--by", "year"],
    ["movements", "--json", "--csv"],
    ["movements", "--since", "yesterday"],
    ["cover", "--days", "0"],
    ["cover", "--target-days", "-1"],
    ["cover", "--until", "not a date"],
])
def test_bad_options_are_usage_errors(invoke, db_path, args):
    invoke("add", "P", "1")
    result = invoke("report", *args, json=False)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_reports_of_a_missing_database_are_empty_and_create_nothing(invoke, db_path):
    assert data(invoke("report", "movements")) == []
    assert data(invoke("report", "cover", "--all-stores")) == []
    assert not db_path.exists()


# -- cover ---------------------------------------------------------------------------------------


def _at(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _cover_log(db: Path, now: datetime) -> None:
    """P: 100 in 40 days ago, 20 sold 35 days ago, 5 damaged 20 days ago, and 42 sold in
    the last 28 days (28 removed as sold, 14 through reservations). Q: never sold."""
    rows = [{"op": "add", "product": "P", "quantity": 100, "at": _at(now - timedelta(days=40))},
            {"op": "add", "product": "Q", "quantity": 7, "at": _at(now - timedelta(days=40))},
            {"op": "remove", "product": "P", "quantity": 20, "at": _at(now - timedelta(days=35))},
            {"op": "remove", "product": "P", "quantity": 5, "reason": "damaged",
             "at": _at(now - timedelta(days=20))}]
    for day in range(21, 0, -3):  # 7 days of 6 sold: 4 removed, 2 by a reservation
        at = _at(now - timedelta(days=day))
        rows += [{"op": "remove", "product": "P", "quantity": 4, "at": at},
                 {"op": "reserve", "product": "P", "quantity": 2, "customer": "c",
                  "reservation_id": f"R{day}", "at": at},
                 {"op": "fulfill", "reservation_id": f"R{day}", "at": at}]
    _import(db, sorted(rows, key=lambda row: row["at"]))


def test_cover_from_the_sales_of_the_last_days(invoke, db_path):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    _cover_log(db_path, now)
    invoke("product", "set", "P", "--reorder-point", "10")
    rows = {r["product"]: r for r in data(invoke("report", "cover"))}
    p = rows["P"]
    assert (p["available"], p["sold"], p["sold_per_day"]) == (33, 42, 1.5)
    assert p["days_of_cover"] == 22.0  # 33 / 1.5
    assert p["suggested_order"] == 0  # ⌈1.5 × 14⌉ + 10 − 33 < 0
    assert data(invoke("report", "cover", "--target-days", "30"))[0]["suggested_order"] == 22  # 45 + 10 − 33
    q = rows["Q"]
    assert (q["sold"], q["sold_per_day"], q["days_of_cover"], q["suggested_order"]) == (0, 0.0, None, 0)
    week = {r["product"]: r for r in data(invoke("report", "cover", "--days", "7"))}["P"]
    assert (week["sold"], week["sold_per_day"], week["days_of_cover"]) == (12, round(12 / 7, 4), 19.2)


def test_cover_until_a_past_date_replays_the_stock_and_the_sales_before_it(invoke, db_path):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    _cover_log(db_path, now)
    then = (now - timedelta(days=10)).astimezone()  # a local time, as a person types it
    rows = {r["product"]: r for r in data(invoke("report", "cover", "--until",
                                                 then.replace(tzinfo=None).isoformat()))}
    # By then: 100 − 20 − 5 − 4 sales days of 6 (days 21, 18, 15, 12) = 51; in the 28 days
    # before, those 24 units plus the 20 removed 35 days ago (25 days before then).
    p = rows["P"]
    assert (p["on_hand"], p["available"], p["sold"]) == (51, 51, 44)
    assert p["sold_per_day"] == round(44 / 28, 4)
    assert p["days_of_cover"] == round(51 * 28 / 44, 1)
    assert p["suggested_order"] == max(0, -(-44 * 14 // 28) - 51)
    history = data(invoke("replay", "P", "--until", then.isoformat()))
    assert history[0]["on_hand"] == 51


def test_incoming_units_reduce_the_suggested_order(invoke, db_path):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    _import(db_path, [{"op": "add", "product": "P", "quantity": 30, "at": _at(now - timedelta(days=5))},
                      {"op": "add", "product": "P", "store": "north", "quantity": 50,
                       "at": _at(now - timedelta(days=5))},
                      {"op": "remove", "product": "P", "quantity": 28, "at": _at(now - timedelta(days=2))}])
    invoke("transfer", "P", "10", "--from", "north", "--to", "main")
    row = data(invoke("report", "cover"))[0]
    assert (row["available"], row["incoming"], row["sold_per_day"]) == (2, 10, 1.0)
    assert row["suggested_order"] == 14 - 2 - 10
    assert row["days_of_cover"] == 2.0


def test_cover_csv_has_the_json_fields(invoke):
    invoke("add", "P", "5")
    invoke("remove", "P", "1")
    documents = data(invoke("report", "cover"))
    result = invoke("report", "cover", "--csv", json=False)
    table = list(csv.reader(io.StringIO(result.stdout, newline="")))
    assert table[0] == list(documents[0])
    assert table[1] == ["" if v is None else str(v) for v in documents[0].values()]


# -- what a person sees ------------------------------------------------------------------------

def _on_a_terminal(db: Path, *args: str, columns: int = 80) -> str:
    """The text the command draws on a real pseudo-terminal of ``columns`` columns."""
    shown = on_terminal(db, *args, columns=columns, env={"TZ": "UTC", "NO_COLOR": "1"})
    assert shown.exit_code == 0, shown.raw
    return shown.text


def _year_of_sales(db: Path) -> None:
    """P-LONG-CODE-1 sells more every month of 2011, P-2 less."""
    rows = [{"op": "add", "product": p, "quantity": 1000, "at": "2011-01-01T09:00:00+00:00"}
            for p in ("P-LONG-CODE-1", "P-2")]
    for month in range(1, 13):
        at = f"2011-{month:02d}-15T12:00:00+00:00"
        rows += [{"op": "remove", "product": "P-LONG-CODE-1", "quantity": month * 5, "at": at},
                 {"op": "remove", "product": "P-2", "quantity": (13 - month) * 5, "at": at}]
    _import(db, rows)


BLOCKS = set("▁▂▃▄▅▆▇█")


def test_movements_on_a_terminal_show_a_sparkline_per_line_within_the_width(db_path):
    _year_of_sales(db_path)
    screen = _on_a_terminal(db_path, "report", "movements", "--by", "month", columns=80)
    lines = screen.splitlines()
    assert max(len(line) for line in lines) <= 80
    rising = next(line for line in lines if "P-LONG-CODE-1" in line)
    falling = next(line for line in lines if " P-2 " in line)
    # Units out 5, 10 … 60 (and back), each in eighths of the line's largest, rounded up.
    assert rising.rstrip().endswith("  ▁▂▂▃▄▄▅▆▆▇██")
    assert falling.rstrip().endswith("  ██▇▆▆▅▄▄▃▂▂▁")
    assert "out/month" in screen and "2011-01 to 2011-12" in screen


def test_cover_on_a_terminal_shows_a_bar_and_no_codes_break(db_path):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    _cover_log(db_path, now)
    for columns in (80, 60):  # at 60 the figures leave no room for the bars
        screen = _on_a_terminal(db_path, "report", "cover", columns=columns)
        lines = screen.splitlines()
        assert max(len(line) for line in lines) <= columns, screen
        p = next(line for line in lines if " P " in line)
        q = next(line for line in lines if " Q " in line)
        assert ("█" in p) == (columns == 80) and "█" not in q


def test_no_chart_in_a_pipe(db_path):
    _year_of_sales(db_path)
    for args in (["movements", "--by", "month"], ["cover"]):
        result = run_inventory(db_path, "report", *args, env={"TZ": "UTC"})
        assert result.returncode == 0, result.stderr
        assert "P-LONG-CODE-1" in result.stdout
        assert not BLOCKS & set(result.stdout) and "\x1b" not in result.stdout


def test_a_log_folded_in_two_halves_gives_the_rows_of_one_fold(retail, monkeypatch):
    from inventory_cli.storage.sqlite import reports as sqlite_reports
    from inventory_cli.storage.sqlite import open_store

    db, _ = retail
    store = open_store(str(db), create=False)
    try:
        results = []
        for threshold in (10**12, 1):  # one fold; then two halves on two connections
            monkeypatch.setattr(sqlite_reports, "PARALLEL_FROM", threshold)
            results.append(store.period_movements(None, None, by="week", since="2011-02-01T00:00:00+00:00",
                                                  until=None))
    finally:
        store.close()
    assert results[0] == results[1] and len(results[0]) > 1000


@pytest.mark.parametrize("by", ["day", "week", "month"])
def test_the_terminal_view_folds_every_period_of_each_line(retail, by):
    from inventory_cli.application import reports
    from inventory_cli.storage.sqlite import open_store

    db, _ = retail
    store = open_store(str(db), create=False)
    try:
        rows = reports.movements(store, None, None, by=by)
    finally:
        store.close()
    periods = reports.period_labels(min(r.period for r in rows), max(r.period for r in rows), by)
    assert len(periods) == len(set(periods)) and {r.period for r in rows} <= set(periods)
    lines = reports.by_line(rows, periods)
    out = sum(r.removed + r.fulfilled + r.shipped + r.lost for r in rows)
    assert sum(line.went_out for line in lines) == out
    assert sum(v or 0 for line in lines for v in line.out_by_period) == out
    assert len(lines) == len({(r.store, r.product) for r in rows})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_each_period_ends_on_the_running_on_hand_of_its_movements(invoke, tmp_path, data_):
    """Any valid log: per line, on_hand_end is the previous one plus what came in, minus
    what went out, plus the counts; the last one is the stock line's on_hand."""
    db = tmp_path / f"{uuid.uuid4().hex}.db"
    on_hand: dict[tuple[str, str], int] = defaultdict(int)
    rows, moment = [], datetime(2025, 12, 20, tzinfo=timezone.utc)
    for index in range(data_.draw(st.integers(1, 40))):
        moment += timedelta(hours=data_.draw(st.integers(0, 60)))
        line = (data_.draw(st.sampled_from(["main", "north"])), data_.draw(st.sampled_from(["A", "B"])))
        op = data_.draw(st.sampled_from(["add", "remove", "sale", "count"]))
        row = {"store": line[0], "product": line[1], "at": _at(moment)}
        quantity = data_.draw(st.integers(1, 9))
        if op == "count":
            rows.append({**row, "op": "count", "quantity": quantity})
            on_hand[line] = quantity
        elif op == "add" or on_hand[line] < quantity:
            rows.append({**row, "op": "add", "quantity": quantity})
            on_hand[line] += quantity
        elif op == "remove":
            rows.append({**row, "op": "remove", "quantity": quantity})
            on_hand[line] -= quantity
        else:
            rows += [{**row, "op": "reserve", "quantity": quantity, "customer": "c", "reservation_id": f"R{index}"},
                     {"op": "fulfill", "reservation_id": f"R{index}", "at": row["at"]}]
            on_hand[line] -= quantity
    assert invoke("import", "-", "--format", "ndjson", db=db, input="".join(json.dumps(r) + "\n" for r in rows)
                  ).exit_code == 0
    by = data_.draw(st.sampled_from(["day", "week", "month"]))
    report = _by_line(data(invoke("report", "movements", "--all-stores", "--by", by, db=db)))
    assert {line: periods[-1]["on_hand_end"] for line, periods in report.items()} == dict(on_hand)
    for periods in report.values():
        previous = 0
        for p in periods:
            assert p["on_hand_end"] == previous + p["added"] + p["received"] - p["removed"] - p["fulfilled"] \
                - p["shipped"] + p["counted"]
            previous = p["on_hand_end"]
        assert [p["period"] for p in periods] == sorted({p["period"] for p in periods})
