"""The domain on its own: the Inventory aggregate and the value objects."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory_cli.domain.errors import InvalidValue, RuleViolation
from inventory_cli.domain.inventory import Inventory
from inventory_cli.domain.values import (
    MAX_QUANTITY,
    CountedQuantity,
    CustomerCode,
    ProductCode,
    Quantity,
    StoreCode,
)

# -- the aggregate -------------------------------------------------------------------

RESERVATION_IDS = ["R1", "R2", "R3", "R4"]  # a small pool: reuse, unknown and closed ids happen
small = st.integers(min_value=1, max_value=12)
big = st.integers(min_value=1, max_value=MAX_QUANTITY)
quantities = st.one_of(small, small, big)

operations = st.one_of(
    st.tuples(st.just("add"), quantities, st.sampled_from(["received", "returned"])),
    st.tuples(st.just("remove"), quantities, st.sampled_from(["sold", "damaged"])),
    st.tuples(st.just("reserve"), quantities, st.sampled_from(RESERVATION_IDS),
              st.sampled_from(["c1", "c2"])),
    st.tuples(st.just("release"), st.sampled_from(RESERVATION_IDS), st.just("released")),
    st.tuples(st.just("fulfill"), st.sampled_from(RESERVATION_IDS)),
    st.tuples(st.just("count"), st.one_of(st.integers(min_value=0, max_value=30),
                                          st.integers(min_value=0, max_value=MAX_QUANTITY))),
)


def state(inventory: Inventory) -> tuple:
    return (inventory.on_hand, inventory.reserved, inventory.version,
            dict(inventory.open), dict(inventory.closed))


@settings(max_examples=300, deadline=None)
@given(st.lists(operations, max_size=40))
def test_random_command_sequences_keep_the_invariants(ops):
    inventory = Inventory("main", "SKU")
    events = []
    refusals = 0
    for name, *args in ops:
        before = state(inventory)
        try:
            event = getattr(inventory, name)(*args)
        except RuleViolation:
            refusals += 1
            assert state(inventory) == before, f"refused {name}{tuple(args)} changed the state"
        else:
            events.append(event)
            assert inventory.version == before[2] + 1
            assert event.quantity > 0 or type(event).__name__ == "StockCounted"
        assert 0 <= inventory.reserved <= inventory.on_hand
        assert inventory.available == inventory.on_hand - inventory.reserved >= 0
        assert inventory.reserved == sum(r.quantity for r in inventory.open.values())
        assert not inventory.open.keys() & inventory.closed.keys()
    folded = Inventory.from_events("main", "SKU", events)
    assert state(folded) == state(inventory)
    assert inventory.version == len(events) == len(ops) - refusals


def test_each_refusal_is_a_rule_violation_that_changes_nothing():
    inventory = Inventory("main", "SKU")
    inventory.add(5, "received")
    inventory.reserve(3, "R1", "c1")
    refused = [
        lambda: inventory.remove(3, "sold"),          # only 2 available
        lambda: inventory.reserve(3, "R2", "c2"),     # only 2 available
        lambda: inventory.reserve(1, "R1", "c2"),     # id in use
        lambda: inventory.release("NOPE", "x"),       # unknown
        lambda: inventory.fulfill("NOPE"),
        lambda: inventory.count(2),                   # below the 3 reserved
    ]
    for attempt in refused:
        before = state(inventory)
        with pytest.raises(RuleViolation):
            attempt()
        assert state(inventory) == before
    inventory.release("R1", "released")
    for attempt in (lambda: inventory.release("R1", "x"), lambda: inventory.fulfill("R1"),
                    lambda: inventory.reserve(1, "R1", "c1")):
        before = state(inventory)
        with pytest.raises(RuleViolation):
            attempt()
        assert state(inventory) == before


def test_fulfil_and_count_move_the_balances_as_the_contract_says():
    inventory = Inventory("main", "SKU")
    inventory.add(10, "received")
    inventory.reserve(4, "R1", "c1")
    fulfilled = inventory.fulfill("R1")
    assert (fulfilled.quantity, inventory.on_hand, inventory.reserved) == (4, 6, 0)
    inventory.reserve(2, "R2", "c1")
    counted = inventory.count(2)  # exactly the reserved units: allowed
    assert (counted.quantity, inventory.on_hand, inventory.available) == (-4, 2, 0)
    counted = inventory.count(9)
    assert (counted.quantity, inventory.on_hand, inventory.reserved) == (7, 9, 2)


# -- codes ------------------------------------------------------------------------------


@pytest.mark.parametrize("code_type", [ProductCode, StoreCode, CustomerCode])
@pytest.mark.parametrize(
    "text",
    ["", " ", "  SKU", "SKU ", "\tSKU", "SKU\n", "A" * 65, "A\x07B", "A\x00B", "A\x1bB",
     "A\nB", "A\x7fB", "A\u0085B", "A\u2028B"],
    ids=["empty", "space", "leading", "trailing", "tab", "newline", "65-chars", "bell", "nul",
         "escape", "inner-newline", "del", "nel", "line-separator"],
)
def test_malformed_codes_are_invalid_values(code_type, text):
    with pytest.raises(InvalidValue):
        code_type(text)


@pytest.mark.parametrize(
    "text",
    ["SKU-1", "A" * 64, "a b", "O'Brien \"x\"", ";--", "50%", "a/b", "Ærø", "Zürich", "東京",
     "x' OR '1'='1"],
)
def test_ordinary_characters_make_valid_codes_stored_exactly(text):
    assert ProductCode(text) == text
    assert StoreCode(text) == text


def test_codes_are_nfc_normalised():
    assert ProductCode("e\u0301") == "é" == ProductCode("é")
    assert ProductCode("Cafe\u0301") == ProductCode("Caf\u00e9")
    # Normalisation comes before the length limit: 65 code points, 64 letters.
    assert len(ProductCode("A" * 63 + "e\u0301")) == 64
    assert ProductCode("e\u0301" * 40) == "é" * 40


def test_codes_are_case_sensitive():
    assert ProductCode("sku") != ProductCode("SKU")


def test_a_code_must_be_text():
    for value in (None, 12, b"SKU"):
        with pytest.raises(InvalidValue):
            ProductCode(value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_either_a_valid_code_or_refused(text):
    normal = unicodedata.normalize("NFC", text)
    try:
        code = ProductCode(text)
    except InvalidValue:
        acceptable = (
            1 <= len(normal) <= 64
            and normal == normal.strip()
            and all(ch.isalnum() or unicodedata.category(ch).startswith(("P", "S")) or ch == " "
                    for ch in normal)
        )
        assert not acceptable, f"{text!r} is a plain code but was refused"
    else:
        assert code == normal
        assert 1 <= len(code) <= 64
        assert code == code.strip()
        assert not any(unicodedata.category(ch) == "Cc" for ch in code)
        assert ProductCode(code) == code


# -- quantities -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [0, -1, "0", "-1", "1.5", 1.5, "abc", "", " 5", "5 ", "1e3", 1_000_000_001, "1000000001",
     "99999999999999999999", "１２", "٣", True, False, None],
)
def test_bad_quantities_are_invalid_values(value):
    with pytest.raises(InvalidValue):
        Quantity(value)


@pytest.mark.parametrize("value", [-1, "-1", "1.5", "abc", 1_000_000_001, "１２", True])
def test_bad_counted_quantities_are_invalid_values(value):
    with pytest.raises(InvalidValue):
        CountedQuantity(value)


def test_quantity_bounds():
    assert Quantity(1) == Quantity("1") == 1
    assert Quantity("1000000000") == Quantity(MAX_QUANTITY) == 1_000_000_000
    assert CountedQuantity("0") == CountedQuantity(0) == 0
    assert CountedQuantity(MAX_QUANTITY) == MAX_QUANTITY


@settings(max_examples=200, deadline=None)
@given(st.integers())
def test_whole_numbers_are_accepted_exactly_in_range(number):
    for kind, low in ((Quantity, 1), (CountedQuantity, 0)):
        if low <= number <= MAX_QUANTITY:
            assert kind(number) == kind(str(number)) == number
        else:
            with pytest.raises(InvalidValue):
                kind(number)
            if number >= 0:
                with pytest.raises(InvalidValue):
                    kind(str(number))
