"""Unknown codes are answered with the close known ones, on stderr (docs/commands.md)."""

from __future__ import annotations

import pytest

from inventory_cli.cli.suggestions import close_codes
from tests.conftest import data


def ok(result):
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def shop(invoke):
    for product in ("TEA-250", "MUG-BLUE", "SKU-1"):
        ok(invoke("add", product, "5"))
    ok(invoke("add", "TEA-250", "5", "--store", "north"))
    return invoke


@pytest.mark.parametrize("typed, meant", [
    ("TEA250", ["TEA-250"]), ("tea-250", ["TEA-250"]), ("MUG-BLEU", ["MUG-BLUE"]), ("Tea 250", ["TEA-250"]),
    ("SKU-2", []), ("TEA-500", []), ("CHAIR", []),
])
def test_close_codes_are_typos_not_neighbours(typed, meant):
    assert close_codes(typed, ["TEA-250", "MUG-BLUE", "SKU-1"]) == meant


def test_a_query_of_an_unknown_product_stays_empty_and_names_the_close_one(shop):
    for command in (("stock", "TEA250"), ("history", "TEA250")):
        result = ok(shop(*command))
        assert data(result) == []
        assert result.stderr == "inventory: no product TEA250 in store main; did you mean TEA-250?\n"


def test_a_known_product_or_a_far_one_gets_no_suggestion(shop):
    assert ok(shop("stock", "TEA-250")).stderr == ""
    assert ok(shop("stock", "CHAIR")).stderr == ""
    assert ok(shop("history", "TEA-250", "--until", "2000-01-01")).stderr == ""


@pytest.mark.parametrize("command", [("remove", "TEA250", "1"), ("reserve", "TEA250", "1", "--customer", "c")])
def test_a_refused_write_of_an_unknown_product_names_the_close_one(shop, command):
    result = shop(*command, json=False)
    assert result.exit_code == 1 and result.stdout == ""
    assert "no product TEA250 in store main; did you mean TEA-250?" in result.stderr
    assert "only 0 available" in result.stderr


def test_a_new_product_close_to_a_known_one_is_added_and_said(shop):
    result = ok(shop("add", "tea-250", "1", json=False))
    assert result.stdout.startswith("Added 1 × tea-250")
    assert result.stderr == "inventory: new product tea-250; did you mean TEA-250?\n"
    assert ok(shop("add", "tea-250", "1")).stderr == ""  # known now
    assert ok(shop("add", "SKU-2", "1")).stderr == ""


def test_a_transfer_to_a_new_store_close_to_a_known_one_runs_and_says_so(shop):
    result = ok(shop("transfer", "TEA-250", "1", "--from", "main", "--to", "North"))
    assert data(result)["to"] == "North"
    assert result.stderr == "inventory: new store North; did you mean north?\n"
    assert ok(shop("transfer", "TEA-250", "1", "--from", "main", "--to", "North")).stderr == ""
    assert ok(shop("transfer", "TEA-250", "1", "--from", "main", "--to", "paris")).stderr == ""
