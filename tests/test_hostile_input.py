"""Hostile input from issue 13 (an adversarial trial), each finding with its exact bytes.

Look-alike codes, direction overrides in free text, duplicate JSON keys, byte-order
marks, device files as import sources, arguments that are not UTF-8 and numbers
too large for SQLite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import data, event_count, inventory_argv, process_env, run_inventory
from inventory_cli.domain.errors import InvalidValue
from inventory_cli.domain.values import ProductCode

# -- finding 8: codes refuse Cc and Cf; free text refuses direction overrides ---------

LOOK_ALIKES = {
    "right-to-left override": "\u202eBA",
    "zero-width space": "A\u200bB",
    "byte-order mark": "\ufeffAB",
    "arabic letter mark": "A\u061cB",
    "left-to-right isolate": "\u2066AB",
    "soft hyphen": "A\u00adB",
}


@pytest.mark.parametrize("code", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_a_code_with_a_format_character_is_a_usage_error_and_writes_nothing(invoke, db_path, code):
    assert invoke("add", "AB", "1").exit_code == 0
    for args in (("add", code, "1"), ("add", "AB", "1", "--store", code),
                 ("reserve", "AB", "1", "--customer", "c", "--id", code),
                 ("add", "AB", "1", "--id", code)):
        result = invoke(*args)
        assert result.exit_code == 2, args
        assert "format character" in result.stderr
        assert result.stdout == ""
    lines = data(invoke("stock", "--all-stores"))
    assert [(line["store"], line["product"]) for line in lines] == [("main", "AB")]
    assert event_count(db_path) == 1


OVERRIDES = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]


@pytest.mark.parametrize("mark", OVERRIDES, ids=[f"U+{ord(m):04X}" for m in OVERRIDES])
def test_free_text_refuses_direction_overrides_and_isolates(invoke, db_path, mark):
    hostile = f"paid{mark}gnp.exe"
    for args in (("add", "A", "5", "--reason", hostile),
                 ("reserve", "A", "1", "--customer", hostile),
                 ("add", "A", "5", "--user", hostile),
                 ("product", "set", "A", "--name", hostile)):
        result = invoke(*args)
        assert result.exit_code == 2, args
        assert "direction override" in result.stderr
    assert not db_path.exists()


def test_free_text_refuses_control_characters_but_keeps_other_format_characters(invoke):
    assert invoke("add", "A", "5", "--reason", "late\x1b[2Jdelivery").exit_code == 2
    assert invoke("product", "set", "A", "--name", "Tea\x07").exit_code == 2
    # A zero-width joiner is part of how some names are written; it stays.
    named = invoke("product", "set", "A", "--name", "\U0001f469\u200d\U0001f373 kit")
    assert named.exit_code == 0, named.stderr
    assert data(named)["name"] == "\U0001f469\u200d\U0001f373 kit"


def test_import_rows_with_look_alikes_or_overrides_are_bad_rows(invoke, tmp_path, db_path):
    rows = [
        {"op": "add", "product": "AB", "quantity": 1},
        {"op": "add", "product": "A\u200bB", "quantity": 1},
        {"op": "add", "product": "AB", "quantity": 1, "reason": "x\u202ey"},
        {"op": "reserve", "product": "AB", "quantity": 1, "customer": "\u2067c"},
        {"op": "add", "product": "AB", "quantity": 1, "user": "bob\u202d"},
    ]
    source = tmp_path / "rows.ndjson"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = invoke("import", str(source))
    assert result.exit_code == 65
    report = data(result)
    assert [error["line"] for error in report["errors"]] == [2, 3, 4, 5]
    assert report["applied"] == 0
    assert event_count(db_path) == 0


# -- finding 11: an argument that is not UTF-8 is said to be so --------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX arguments are bytes")
def test_an_argument_that_is_not_utf8_is_called_invalid_text_not_a_control_character(tmp_path):
    db = tmp_path / "inv.db"
    argv = [os.fsencode(a) for a in inventory_argv(db, "add")] + [b"A\xffB", b"1"]
    result = subprocess.run(argv, env=process_env({"LC_ALL": "C.UTF-8"}), cwd=tmp_path,
                            capture_output=True, timeout=60)
    assert result.returncode == 2
    stderr = result.stderr.decode("utf-8")
    assert "not valid text" in stderr and "UTF-8" in stderr
    assert "control character" not in stderr
    assert not db.exists()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20))
def test_an_accepted_code_holds_no_control_or_format_character(text):
    try:
        code = ProductCode(text)
    except InvalidValue:
        return
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in code)


# -- finding 5: a repeated key in an NDJSON object makes the row bad ----------------------


def test_a_repeated_key_in_an_ndjson_row_is_a_bad_row_like_a_repeated_csv_column(invoke, tmp_path, db_path):
    source = tmp_path / "dup.ndjson"
    source.write_bytes(b'{"op":"add","product":"DUP","quantity":1,"quantity":999}\n')
    result = invoke("import", str(source))
    assert result.exit_code == 65
    report = data(result)
    assert report["applied"] == 0 and report["rejected"] == 1
    assert report["errors"][0]["line"] == 1
    assert "quantity" in report["errors"][0]["error"] and "repeated" in report["errors"][0]["error"]
    assert event_count(db_path) == 0


@pytest.mark.parametrize("row", [
    b'{"op":"add","product":"A","quantity":1,"reason":"op"}\n',  # a value that reads like a key
    b'{"op":"add","product":"\\u00c9","quantity":2}\n',  # escapes, as json.dumps writes them
])
def test_rows_without_a_repeated_key_still_import(invoke, tmp_path, row):
    source = tmp_path / "ok.ndjson"
    source.write_bytes(row)
    result = invoke("import", str(source))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert data(result)["applied"] == 1


def test_a_key_repeated_through_an_escape_is_still_a_repeated_key(invoke, tmp_path, db_path):
    source = tmp_path / "dup.ndjson"
    source.write_bytes(b'{"op":"add","product":"DUP","quantity":1,"quantit\\u0079":999}\n')
    result = invoke("import", str(source))
    assert result.exit_code == 65
    assert event_count(db_path) == 0


_KEYS = st.sampled_from(["op", "product", "quantity", "id", "reason", "store", "at", "user"])
_VALUES = st.one_of(
    st.sampled_from(["add", "A", "op", "B"]), st.integers(1, 9),  # mostly valid values
    st.sampled_from(['q"uote', "\\", "\u00c9"]), st.text(max_size=4), st.integers(-3, 1000),
    st.none(), st.booleans(),
)


@st.composite
def _ndjson_objects(draw) -> bytes:
    """An object written by hand: keys possibly repeated, spaces around the colons,
    text escaped or not (a key spelt through an escape too)."""
    pairs = [("op", "add"), ("product", draw(st.sampled_from(["A", "\u00c9", 'q"']))),
             ("quantity", draw(st.sampled_from([1, "2", 3])))] if draw(st.booleans()) else []
    pairs += draw(st.lists(st.tuples(_KEYS, _VALUES), max_size=4))
    if pairs:
        pairs += draw(st.lists(st.sampled_from(pairs), max_size=2))  # a pair given twice
    pairs = draw(st.permutations(pairs))
    ascii_only = draw(st.sampled_from([False] * 3 + [True]))
    parts = []
    for key, value in pairs:
        escaped = draw(st.sampled_from([False] * 7 + [True]))
        name = json.dumps(key) if not escaped else '"' + "".join(f"\\u{ord(c):04x}" for c in key) + '"'
        parts.append(name + draw(st.sampled_from(["", " "])) + ":" + json.dumps(value, ensure_ascii=ascii_only))
    return ("{" + ",".join(parts) + "}").encode("utf-8", "surrogatepass")


@settings(max_examples=400, deadline=None)
@given(_ndjson_objects())
def test_repeated_fields_are_found_in_any_row_valid_or_not(raw):
    # The quick test for valid rows must agree with parsing pair by pair.
    from pydantic import ValidationError

    from inventory_cli.application.import_rows import ROW, repeated_fields

    keys = [key for key, _ in json.loads(raw, object_pairs_hook=lambda pairs: pairs)]
    expected = list(dict.fromkeys(key for i, key in enumerate(keys) if key in keys[:i]))
    try:
        parsed = ROW.validate_json(raw)
    except ValidationError:
        parsed = None
    assert repeated_fields(raw, parsed) == expected


# -- finding 11: a byte-order mark, and device files as import sources ---------------------


def test_ndjson_with_a_utf8_byte_order_mark_imports_like_csv_with_one(invoke, tmp_path):
    ndjson = tmp_path / "bom.ndjson"
    ndjson.write_bytes(b'\xef\xbb\xbf{"op":"add","product":"A","quantity":3}\n'
                       b'{"op":"add","product":"B","quantity":4}\n')
    csv_file = tmp_path / "bom.csv"
    csv_file.write_bytes(b"\xef\xbb\xbfop,product,quantity\r\nadd,C,5\r\n")
    for source in (ndjson, csv_file):
        result = invoke("import", str(source))
        assert result.exit_code == 0, result.stdout
    lines = data(invoke("stock"))
    assert {line["product"]: line["on_hand"] for line in lines} == {"A": 3, "B": 4, "C": 5}


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_importing_dev_null_reads_an_empty_file(invoke, db_path):
    result = invoke("import", "/dev/null", "--format", "ndjson")
    assert result.exit_code == 0, result.stderr
    assert data(result)["applied"] == 0
    assert "does not exist" not in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
def test_importing_from_a_pipe_given_by_name_reads_it(tmp_path):
    """Process substitution (`inventory import <(…)`) names a pipe, not a regular file."""
    db = tmp_path / "inv.db"
    read_end, write_end = os.pipe()
    os.write(write_end, b'{"op":"add","product":"P","quantity":2}\n')
    os.close(write_end)
    try:
        result = subprocess.run(
            inventory_argv(db, "import", f"/dev/fd/{read_end}", "--format", "ndjson", "--json"),
            env=process_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60,
            pass_fds=(read_end,),
        )
    finally:
        os.close(read_end)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["applied"] == 1


# -- finding 9: numbers beyond what SQLite stores are usage errors, not crashes -----------

HUGE = ["99999999999999999999", "9223372036854775808"]


@pytest.mark.parametrize("number", HUGE)
@pytest.mark.parametrize("args", [
    ("replay", "Q", "--position"), ("history", "Q", "--limit"), ("history", "--limit"),
    ("diff", "--from-position"), ("diff", "--from-position", "0", "--to-position"),
    ("export", "--after-position"), ("import", "-", "--batch-size"),
])
def test_a_huge_number_option_is_a_usage_error(invoke, db_path, args, number):
    assert invoke("add", "Q", "1").exit_code == 0
    result = invoke(*args, number, json=args[0] != "export", input="")
    assert result.exit_code == 2, result.stderr
    assert "bug" not in result.stderr
    assert "9223372036854775807" in result.stderr


def test_the_largest_position_sqlite_stores_is_still_accepted(invoke):
    assert invoke("add", "Q", "1").exit_code == 0
    result = invoke("replay", "Q", "--position", "9223372036854775807")
    assert result.exit_code == 0
    assert data(result)[0]["on_hand"] == 1


@pytest.mark.parametrize("number", HUGE)
def test_a_huge_anchor_position_is_a_usage_error(invoke, number):
    assert invoke("add", "Q", "1").exit_code == 0
    result = invoke("verify", "--anchor", f"{number}:{'0' * 64}")
    assert result.exit_code == 2, result.stderr
    assert "bug" not in result.stderr
