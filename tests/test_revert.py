"""`inventory revert POSITION`: a mistaken add, remove or count is corrected by the
opposite movement on the same stream (docs/commands.md, "revert")."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inventory_cli.domain.errors import NotRevertible
from inventory_cli.domain.events import StockAdded, StockCounted, StockRemoved, StockReserved
from inventory_cli.domain.inventory import Inventory
from tests.conftest import data


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def refused(result, says: str):
    assert result.exit_code == 1 and result.stdout == "", result.output
    assert says in result.stderr
    return result


def test_a_mistaken_add_is_taken_back_and_history_says_which_event_it_reverts(invoke):
    ok(invoke("add", "TEA-250", "10"))
    ok(invoke("add", "TEA-250", "100"))
    line = data(ok(invoke("revert", "2", "--reason", "typed 100 for 10", "--user", "ana")))
    assert (line["on_hand"], line["position"]) == (10, 3)
    last = data(ok(invoke("history", "TEA-250")))[-1]
    assert (last["type"], last["quantity"], last["reverts"], last["reason"], last["actor"]) == (
        "StockRemoved", 100, 2, "typed 100 for 10", "ana")
    table = ok(invoke("history", "TEA-250", json=False)).stdout
    assert "reverts=2" in table


def test_a_remove_is_reverted_by_an_add_and_a_count_by_a_count_back(invoke):
    ok(invoke("add", "X", "10"))
    ok(invoke("remove", "X", "4"))
    assert data(ok(invoke("revert", "2")))["on_hand"] == 10
    ok(invoke("count", "X", "7"))
    assert data(ok(invoke("revert", "4")))["on_hand"] == 10
    types = [(e["type"], e["quantity"], e.get("reverts")) for e in data(ok(invoke("history", "X")))]
    assert types[-3:] == [("StockAdded", 4, 2), ("StockCounted", -3, None), ("StockCounted", 3, 4)]


def test_refusals_write_nothing(invoke):
    ok(invoke("add", "X", "10"))
    ok(invoke("reserve", "X", "8", "--customer", "c", "--id", "r-1"))
    refused(invoke("revert", "99"), "No event at position 99")
    refused(invoke("revert", "2"), "is a StockReserved")
    refused(invoke("revert", "1"), "on hand would be 0 with 8 reserved")
    ok(invoke("release", "r-1"))
    ok(invoke("revert", "1"))
    refused(invoke("revert", "1"), "already reverted (at position 4)")
    refused(invoke("revert", "4"), "itself the revert of position 1")
    assert len(data(ok(invoke("history", "X")))) == 4
    assert invoke("revert", "0", json=False).exit_code == 2


def test_revert_with_an_id_is_idempotent(invoke):
    ok(invoke("add", "X", "5"))
    first = data(ok(invoke("revert", "1", "--id", "fix-1")))
    again = ok(invoke("revert", "1", "--id", "fix-1"))
    assert data(again) == first
    assert "Already done earlier" in ok(invoke("revert", "1", "--id", "fix-1", json=False)).stdout
    ok(invoke("add", "X", "5"))
    refused(invoke("revert", "3", "--id", "fix-1"), "already used for a different command")


def test_a_revert_is_chained_exported_verified_and_rebuilt_like_any_event(invoke):
    ok(invoke("add", "X", "5"))
    ok(invoke("revert", "1"))
    assert data(ok(invoke("verify")))["ok"] is True
    assert data(ok(invoke("rebuild-projections", "--check")))["ok"] is True
    exported = ok(invoke("export", json=False)).stdout.splitlines()
    assert '"reverts": 1' in exported[-1] and '\\"reverts\\":1' in exported[-1]
    assert data(ok(invoke("replay", "X")))[0]["on_hand"] == 0


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "remove", "count", "reserve"]), st.integers(0, 20)), max_size=12),
       st.integers(0, 11))
def test_a_revert_either_undoes_the_movement_or_is_refused_keeping_the_invariant(moves, pick):
    inventory = Inventory("main", "X")
    events = []
    for verb, n in moves:
        try:
            if verb == "add" and n:
                events.append(inventory.add(n, "r"))
            elif verb == "remove" and n:
                events.append(inventory.remove(n, "r"))
            elif verb == "count":
                events.append(inventory.count(n))
            elif verb == "reserve" and n:
                events.append(inventory.reserve(n, f"r{len(events)}", "c"))
        except Exception:
            pass
    if not events:
        return
    mistaken = events[pick % len(events)]
    before = (inventory.on_hand, inventory.reserved)
    try:
        correction = inventory.revert(mistaken, 1 + pick % len(events), "fix")
    except NotRevertible:
        assert (inventory.on_hand, inventory.reserved) == before
        return
    assert isinstance(mistaken, (StockAdded, StockRemoved, StockCounted))
    assert not isinstance(mistaken, StockReserved)
    assert inventory.on_hand == before[0] - mistaken.on_hand_sign * mistaken.quantity
    assert correction.on_hand_sign * correction.quantity == -(mistaken.on_hand_sign * mistaken.quantity)
    assert 0 <= inventory.reserved <= inventory.on_hand
