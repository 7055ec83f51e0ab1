"""`inventory metrics` and `inventory consumers`, and the tables behind them.

The Prometheus text is parsed with prometheus_client's own parser and checked
against what `stock`, `reservations`, `transfers`, `consumers` and `export` say.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from unittest import mock

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import data, process_env, run_inventory

FEED_PAGE = Path(__file__).resolve().parent.parent / "docs" / "feed.md"
PER_STORE = ("stock_lines", "low_stock_lines", "open_reservations", "overdue_reservations",
             "incoming_transfers")


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def samples(text: str) -> dict[str, dict[tuple, float]]:
    """{sample name: {label values: value}} of a Prometheus text exposition."""
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def per_store(found: dict, name: str) -> dict[str, int]:
    return {dict(labels)["store"]: int(value) for labels, value in found.get(f"inventory_{name}", {}).items()}


@pytest.fixture
def busy_db(invoke, db_path):
    """Two stores with low lines, open and overdue reservations, open and received transfers, consumers."""
    ok(invoke("add", "TEA", "20"))
    ok(invoke("add", "MUG", "4"))
    ok(invoke("add", "TEA", "9", "--store", "north"))
    ok(invoke("product", "set", "MUG", "--reorder-point", "5"))
    ok(invoke("product", "set", "TEA", "--reorder-point", "10", "--store", "north"))
    ok(invoke("reserve", "TEA", "2", "--customer", "c1", "--ttl", "1s"))
    ok(invoke("reserve", "TEA", "3", "--customer", "c2"))
    ok(invoke("reserve", "TEA", "1", "--customer", "c3", "--store", "north"))
    ok(invoke("transfer", "TEA", "4", "--from", "main", "--to", "north"))
    ok(invoke("transfer", "TEA", "1", "--from", "main", "--to", "south"))
    shipped = data(ok(invoke("transfer", "MUG", "1", "--from", "main", "--to", "north")))
    ok(invoke("receive", shipped["transfer_id"]))
    ok(invoke("export", "--consumer", "warehouse", json=False))
    ok(invoke("add", "MUG", "1"))
    ok(invoke("export", "--consumer", "nats", "--after-position", "3", json=False))
    time.sleep(1.1)  # the 1 s reservation is now overdue (nothing has released it)
    return db_path


def test_metrics_agree_with_stock_reservations_transfers_and_consumers(invoke, busy_db):
    found = samples(ok(invoke("metrics", json=False)).stdout)
    stock = data(ok(invoke("stock", "--all-stores")))
    low = data(ok(invoke("stock", "--all-stores", "--low")))
    reservations = data(ok(invoke("reservations", "--all-stores")))
    transfers = data(ok(invoke("transfers", "--open")))
    consumers = data(ok(invoke("consumers")))
    events = [json.loads(line) for line in ok(invoke("export", json=False)).stdout.splitlines()]
    now = time.time()

    stores = {line["store"] for line in stock} | {t["to"] for t in transfers}
    assert set(per_store(found, "stock_lines")) == stores == {"main", "north", "south"}
    expected = {
        "stock_lines": Counter(line["store"] for line in stock),
        "low_stock_lines": Counter(line["store"] for line in low),
        "open_reservations": Counter(r["store"] for r in reservations),
        "overdue_reservations": Counter(
            r["store"] for r in reservations
            if r["expires_at"] and _epoch(r["expires_at"]) <= now
        ),
        "incoming_transfers": Counter(t["to"] for t in transfers),
    }
    for name in PER_STORE:
        assert per_store(found, name) == {store: expected[name][store] for store in stores}, name
    assert expected["low_stock_lines"]["main"] == 1 and expected["overdue_reservations"]["main"] == 1
    assert expected["incoming_transfers"] == {"north": 1, "south": 1}

    assert found["inventory_head_position"][()] == events[-1]["position"]
    by_type = {dict(labels)["type"]: int(v) for labels, v in found["inventory_events_total"].items()}
    counted = Counter(event["type"] for event in events)
    assert {t: n for t, n in by_type.items() if n} == dict(counted)
    assert by_type["StockCounted"] == 0  # every type is listed, also before its first event

    lag = {dict(labels)["consumer"]: int(v) for labels, v in found["inventory_consumer_lag"].items()}
    assert lag == {c["consumer"]: c["lag"] for c in consumers} == {"warehouse": 1, "nats": 0}


def test_the_feed_pages_alert_rules_and_table_use_what_metrics_writes(invoke, busy_db):
    """docs/feed.md's Prometheus rules and its table of metrics name only metrics and labels
    that `inventory metrics` writes. (The rules' syntax is promtool's to check: not here.)"""
    page = FEED_PAGE.read_text()
    found = samples(ok(invoke("metrics", json=False)).stdout)
    labels = {name: {key for sample in values for key, _ in sample} for name, values in found.items()}
    [rules] = re.findall(r"^```yaml\n(.*?)^```", page, re.S | re.M)
    alerts = re.split(r"^ *- alert: ", rules, flags=re.M)[1:]
    used: set[str] = set()
    for alert in alerts:
        expr = re.search(r"expr: (.*)", alert).group(1)
        names = set(re.findall(r"\binventory_\w+", expr))
        for name in names:
            assert name in found, f"the rule {alert.split()[0]} uses {name}, which metrics does not write"
            assert set(re.findall(r"\$labels\.(\w+)", alert)) <= labels[name], alert
        used |= names
    assert len(alerts) == 3 and used == {"inventory_consumer_lag", "inventory_overdue_reservations"}
    table = set(re.findall(r"^\| `(inventory_\w+)` \| `?(\w*)`? ?\|", page, re.M))
    assert table == {(name, "".join(labels[name])) for name in found}


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def head(invoke) -> int:
    return len(ok(invoke("export", json=False)).stdout.splitlines())


def test_consumers_lists_position_and_lag_sorted_by_name(invoke, busy_db):
    consumers = data(ok(invoke("consumers")))
    last = head(invoke)
    assert consumers == [
        {"consumer": "nats", "position": last, "lag": 0},
        {"consumer": "warehouse", "position": last - 1, "lag": 1},
    ]
    table = ok(invoke("consumers", json=False)).stdout
    assert "warehouse" in table and "nats" in table


def test_consumers_and_metrics_of_a_missing_database_are_empty_and_create_nothing(invoke, tmp_path):
    missing = tmp_path / "none" / "inv.db"
    assert data(ok(invoke("consumers", db=missing))) == []
    found = samples(ok(invoke("metrics", json=False, db=missing)).stdout)
    assert found["inventory_head_position"][()] == 0
    assert set(found["inventory_events_total"].values()) == {0}
    assert not missing.parent.exists()


def test_without_prometheus_client_metrics_says_how_to_install_it(invoke, busy_db):
    blocked = {name: None for name in list(sys.modules) if name.startswith("prometheus_client")}
    with mock.patch.dict(sys.modules, {"prometheus_client": None, "prometheus_client.core": None, **blocked}):
        result = invoke("metrics", json=False)
    assert (result.exit_code, result.stdout) == (2, "")
    assert "pip install 'inventory-cli[metrics]'" in result.stderr


# -- --textfile ---------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_textfile_is_written_whole_with_a_new_files_permissions(invoke, busy_db, tmp_path, umask):
    folder = tmp_path / "textfile"
    folder.mkdir()
    target = folder / "inventory.prom"
    target.write_text("old\n")
    target.chmod(0o604)  # an existing file's mode is not kept: the file is replaced
    previous = os.umask(umask)
    try:
        result = run_inventory(busy_db, "metrics", "--textfile", str(target))
    finally:
        os.umask(previous)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert os.listdir(folder) == ["inventory.prom"]  # no temporary file left beside it
    written = samples(target.read_text())
    assert written["inventory_head_position"][()] == head(invoke)
    assert per_store(written, "incoming_transfers") == {"main": 0, "north": 1, "south": 1}


def test_textfile_in_a_missing_folder_is_a_usage_error(invoke, busy_db, tmp_path):
    result = invoke("metrics", "--textfile", str(tmp_path / "no" / "x.prom"), json=False)
    assert result.exit_code == 2 and "does not exist" in result.stderr
    assert not (tmp_path / "no").exists()


# -- the tables behind them -------------------------------------------------------------------------


def events_by_type(invoke, **kwargs) -> dict[str, int]:
    found = samples(ok(invoke("metrics", json=False, **kwargs)).stdout)
    return {dict(labels)["type"]: int(v) for labels, v in found["inventory_events_total"].items() if v}


def logged_types(invoke) -> dict[str, int]:
    return dict(Counter(json.loads(line)["type"] for line in ok(invoke("export", json=False)).stdout.splitlines()))


def test_the_event_counts_tally_is_checked_rebuilt_and_caught_up(invoke, busy_db):
    assert events_by_type(invoke) == logged_types(invoke)  # tallies the log up to the head
    tally = sqlite3.connect(busy_db, isolation_level=None)
    assert tally.execute("SELECT max(through) FROM event_counts").fetchone()[0] == head(invoke)
    ok(invoke("rebuild-projections", "--check"))
    tally.execute("UPDATE event_counts SET events = events + 7 WHERE type = 'StockAdded'")
    check = invoke("rebuild-projections", "--check")
    assert check.exit_code == 1
    assert [(d["table"], d["key"]) for d in data(check)["differences"]] == [("event_counts", "StockAdded")]
    ok(invoke("rebuild-projections"))
    ok(invoke("rebuild-projections", "--check"))
    assert [c["consumer"] for c in data(ok(invoke("consumers")))] == ["nats", "warehouse"]  # left alone
    ok(invoke("add", "MUG", "2"))
    read_only = f"file:{busy_db}?mode=ro"
    assert events_by_type(invoke, db=read_only) == logged_types(invoke)  # counts without a tally
    assert tally.execute("SELECT count(*) FROM event_counts").fetchone()[0] == 0
    assert events_by_type(invoke) == logged_types(invoke)  # and tallies again where it may write
    ok(invoke("remove", "MUG", "1"))
    assert events_by_type(invoke) == logged_types(invoke)  # the tally plus what came after it
    ok(invoke("rebuild-projections", "--check"))
    tally.close()


def test_a_schema_5_file_gains_consumers_and_counts_its_events(invoke, busy_db):
    """Schema 5 as it was: neither table (the test drops them and sets the version back)."""
    conn = sqlite3.connect(busy_db, isolation_level=None)
    conn.executescript("DROP TABLE consumers; DROP TABLE event_counts; PRAGMA user_version = 5;")
    conn.close()
    assert events_by_type(invoke) == logged_types(invoke)
    assert data(ok(invoke("consumers"))) == []
    ok(invoke("rebuild-projections", "--check"))
    conn = sqlite3.connect(busy_db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] >= 6
    conn.close()


def test_imports_and_commands_keep_event_counts_in_step(invoke, db_path, tmp_path):
    source = tmp_path / "rows.ndjson"
    source.write_text("".join(
        json.dumps({"op": op, "product": "P", "quantity": 1}) + "\n"
        for op in ["add"] * 1500 + ["remove"] * 700
    ))
    ok(invoke("import", str(source), json=False))
    ok(invoke("count", "P", "3"))
    found = samples(ok(invoke("metrics", json=False)).stdout)
    by_type = {dict(labels)["type"]: int(v) for labels, v in found["inventory_events_total"].items()}
    assert {t: n for t, n in by_type.items() if n} == {"StockAdded": 1500, "StockRemoved": 700,
                                                       "StockCounted": 1}
    ok(invoke("rebuild-projections", "--check"))


@pytest.mark.parametrize("args", [("stock",), ("export",), ("consumers",), ("metrics",)])
def test_only_metrics_loads_prometheus_client(invoke, db_path, args):
    ok(invoke("add", "A", "1"))
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "inventory_cli", "--db", str(db_path), *args],
        capture_output=True, text=True, env=process_env(), timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert ("prometheus_client" in result.stderr) == (args == ("metrics",))
