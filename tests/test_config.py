"""The configuration file (docs/commands.md, "Configuration file"): db, store, user;
option, then environment variable, then the file, then the default."""

from __future__ import annotations

import os

import pytest

from inventory_cli.cli import config
from tests.conftest import data, event_count


def ok(result):
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def configured(invoke, tmp_path):
    """invoke() with INVENTORY_CONFIG naming a file the test writes; no --db, no INVENTORY_DB."""
    path = tmp_path / "config.toml"
    filed_db = tmp_path / "filed.db"
    path.write_text(f'# the counter\ndb = "{filed_db}"\nstore = "north"\nuser = "zoe"\n')

    def run(*args, env=None, **kwargs):
        return invoke(*args, db="", env={"INVENTORY_CONFIG": str(path), "INVENTORY_DB": None, **(env or {})}, **kwargs)

    run.path, run.db = path, filed_db
    return run


def test_the_file_gives_the_database_the_store_and_the_user(configured):
    line = data(ok(configured("add", "TEA-250", "3")))
    assert line["store"] == "north"
    assert event_count(configured.db) == 1
    [event] = data(ok(configured("history", "TEA-250")))
    assert event["actor"] == "zoe"
    assert data(ok(configured("product", "set", "TEA-250", "--reorder-point", "2")))["store"] == "north"


def test_options_and_environment_variables_win_over_the_file(configured, tmp_path):
    other = tmp_path / "other.db"
    assert data(ok(configured("add", "X", "1", "--store", "main", "--user", "ana")))["store"] == "main"
    assert data(ok(configured("add", "X", "1", env={"INVENTORY_STORE": "south"})))["store"] == "south"
    ok(configured("--db", str(other), "add", "X", "1"))
    ok(configured("add", "X", "1", env={"INVENTORY_DB": str(other)}))
    assert event_count(other) == 2 and event_count(configured.db) == 2
    actors = [e["actor"] for e in data(ok(configured("history", "X", "--store", "main")))]
    assert actors == ["ana"]
    assert data(ok(configured("history", "X", "--store", "south", env={"INVENTORY_USER": "bo"})))[0]["actor"] == "zoe"


@pytest.mark.parametrize("text, says", [
    ('db = "x.db"\ncolour = "red"\n', "line 2: unknown key 'colour'"),
    ('store = "north\n', "not valid TOML"),
    ("store = 7\n", "line 1: store must be a non-empty string"),
    ('user = ""\n', "line 1: user must be a non-empty string"),
])
def test_a_malformed_file_or_an_unknown_key_is_a_usage_error_naming_file_and_line(configured, text, says):
    configured.path.write_text(text)
    result = configured("add", "X", "1", json=False)
    assert result.exit_code == 2 and result.stdout == ""
    assert str(configured.path) in result.stderr and says in result.stderr
    assert not configured.db.exists()


def test_toml_errors_name_the_line(configured):
    configured.path.write_text('db = "a.db"\nstore = = "x"\n')
    assert "line 2" in configured("stock", json=False).stderr


def test_inventory_config_naming_a_missing_file_is_a_usage_error(configured, tmp_path):
    result = configured("stock", env={"INVENTORY_CONFIG": str(tmp_path / "none.toml")})
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_without_inventory_config_the_file_is_config_toml_in_the_user_config_folder(monkeypatch, tmp_path):
    from platformdirs import user_config_dir

    monkeypatch.delenv("INVENTORY_CONFIG", raising=False)
    for home in (str(tmp_path), ""):
        monkeypatch.setenv("XDG_CONFIG_HOME", home)
        assert config.config_path() == (os.path.join(user_config_dir("inventory-cli", appauthor=False), "config.toml"), False)
    (tmp_path / "inventory-cli").mkdir()
    (tmp_path / "inventory-cli" / "config.toml").write_text('store = "east"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config.load() == {"store": "east"}


@pytest.mark.parametrize("args", [[], ["--help"], ["add", "--help"], ["product"], ["product", "set", "-h"],
                                  ["report", "cover", "--help"], ["--db", "x.db", "stock", "--help"]])
def test_help_is_shown_whatever_the_file_says(configured, args):
    configured.path.write_text('store = "north\ncolour = 7\n')
    result = configured(*args, json=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: inventory") and result.stderr == ""


def test_a_broken_file_still_stops_every_command_that_runs(configured):
    configured.path.write_text('store = "north\n')
    for args in (["stock"], ["product", "list"], ["report", "cover"], ["add", "X", "1"]):
        result = configured(*args, json=False)
        assert result.exit_code == 2 and "not valid TOML" in result.stderr, args
    assert not configured.db.exists()
