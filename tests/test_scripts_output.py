"""Output for scripts and spreadsheets: --csv, `stores`, `info` (docs/commands.md)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import data


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def rows_of(result) -> list[dict[str, str]]:
    text = result.stdout_bytes.decode()
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""), "RFC 4180 lines end with CRLF"
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.fixture
def shop(invoke):
    ok(invoke("add", 'MUG,"BLUE"', "6"))
    ok(invoke("add", "TEA-250", "40", "--reason", "delivery, boxed"))
    ok(invoke("reserve", "TEA-250", "5", "--customer", "c-17", "--id", "web-1"))
    ok(invoke("transfer", "TEA-250", "4", "--from", "main", "--to", "north", "--id", "T-1"))
    ok(invoke("product", "set", "TEA-250", "--name", "Green tea", "--reorder-point", "3"))
    return invoke


@pytest.mark.parametrize("command", [
    ("stock", "--all-stores"), ("history", "TEA-250"), ("history",), ("replay", "--all-stores"),
    ("diff", "--all-stores", "--from-position", "1"), ("reservations", "--all-stores"),
    ("transfers",), ("product", "list", "--all-stores"), ("stores",),
])
def test_csv_has_the_fields_and_values_of_the_json_document(shop, command):
    documents = data(ok(shop(*command)))
    rows = rows_of(ok(shop(*command, "--csv", json=False)))
    assert len(rows) == len(documents) > 0
    for row, document in zip(rows, documents):
        assert set(document) <= set(row)
        for key, value in document.items():
            assert row[key] == ("" if value is None else str(value)), key
        assert all(row[key] == "" for key in set(row) - set(document))


def test_csv_quotes_commas_and_quotes_as_rfc_4180_says(shop):
    text = ok(shop("stock", "--csv", json=False)).stdout
    assert '"MUG,""BLUE"""' in text
    history = ok(shop("history", "TEA-250", "--csv", json=False)).stdout
    assert '"delivery, boxed"' in history


def test_csv_of_nothing_is_the_header_alone(invoke):
    result = ok(invoke("reservations", "--csv", json=False))
    assert result.stdout_bytes == b"reservation_id,store,product,quantity,customer,created_at,expires_at\r\n"


def test_csv_and_json_together_is_a_usage_error(shop):
    result = shop("stock", "--csv")  # --json added by invoke
    assert result.exit_code == 2 and result.stdout == ""
    assert "either --json or --csv" in result.stderr


def test_stores_sums_the_stock_lines_of_each_store(shop):
    assert data(ok(shop("stores"))) == [
        {"store": "main", "lines": 2, "on_hand": 42, "reserved": 5, "incoming": 0},
        {"store": "north", "lines": 1, "on_hand": 0, "reserved": 0, "incoming": 4},
    ]
    table = ok(shop("stores", json=False)).stdout
    assert "north" in table and "42" in table


def test_stores_and_info_on_a_missing_database_answer_empty_and_create_nothing(invoke, db_path):
    assert data(ok(invoke("stores"))) == []
    assert data(ok(invoke("info"))) == {
        "database": str(db_path), "backend": "sqlite", "schema_version": 0, "events": 0,
        "streams": 0, "stores": 0, "head_position": 0, "head_hash": None,
    }
    assert "does not exist yet" in ok(invoke("info", json=False)).stdout
    assert not db_path.exists()


def test_info_says_what_the_database_holds(shop, db_path):
    document = data(ok(shop("info")))
    verify = data(ok(shop("verify")))
    assert document["database"] == str(db_path) and document["backend"] == "sqlite"
    assert document["schema_version"] >= 5
    assert (document["events"], document["streams"], document["stores"]) == (verify["events"], 3, 2)
    assert (document["head_position"], document["head_hash"]) == (verify["head_position"], verify["head_hash"])
    text = ok(shop("info", json=False)).stdout
    assert f"{db_path.stat().st_size:,} bytes" in text and verify["head_hash"] in text


def test_counts_agree_with_their_nouns_in_every_message(invoke, tmp_path):
    from inventory_cli.cli.render import plural

    assert [plural(n, "bad row") for n in (0, 1, 2, 1000)] == ["0 bad rows", "1 bad row", "2 bad rows", "1,000 bad rows"]
    one_bad = tmp_path / "one.csv"
    one_bad.write_text("op,product,quantity\nadd,X,0\n")
    result = invoke("import", str(one_bad), json=False)
    assert result.exit_code == 65 and "1 bad row. Fix it and" in result.stderr
    assert invoke("expire", json=False).stdout == "Released 0 expired reservations.\n"
    ok(invoke("add", "X", "1000"))
    ok(invoke("reserve", "X", "1", "--customer", "c"))
    refused = invoke("count", "X", "0", json=False)
    assert refused.exit_code == 1 and "1 unit is reserved" in refused.stderr
    added = ok(invoke("add", "Y", "2500", json=False)).stdout
    assert added.startswith("Added 2,500 × Y") and "Now 2,500 on hand" in added
