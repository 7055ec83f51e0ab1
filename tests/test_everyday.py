"""Everyday use at the counter and in scripts (docs/commands.md, "Conventions" and
"At a terminal"): locations given empty, help, closed pipes, Ctrl-C, read-only files."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import _built_once, cli_env, event_count
from inventory_cli.cli.main import app


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """A user whose data folder is under tmp_path: the default database would land there."""
    return {"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "home" / "data")}


def _run(args: list[str], env: dict[str, str | None]):
    with _built_once():
        return CliRunner().invoke(app, args, env=env, catch_exceptions=False)


@pytest.mark.parametrize("how", ["--db ''", "INVENTORY_DB=", "INVENTORY_DB='  '"])
@pytest.mark.parametrize("command", [["add", "SKU", "1"], ["stock"]])
def test_an_empty_database_location_is_a_usage_error_not_the_default_file(tmp_path, home, how, command):
    env = cli_env(None, home)
    args = list(command)
    if how == "--db ''":
        args = ["--db", "", *args]
    else:
        env["INVENTORY_DB"] = how.partition("=")[2].strip("'")
    result = _run(args, env)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert ("--db is empty" if how.startswith("--db") else "INVENTORY_DB is empty") in result.stderr
    assert not any((tmp_path / "home").rglob("*")), "something was written under the user's home"


def test_a_given_location_still_wins_over_an_empty_environment_variable(tmp_path, home):
    db = tmp_path / "given.db"
    env = {**cli_env(None, home), "INVENTORY_DB": ""}
    result = _run(["--db", str(db), "add", "SKU", "1"], env)
    assert result.exit_code == 0, result.stderr
    assert event_count(db) == 1
