"""Shell completion from the database in force (docs/commands.md, "Shell completion"):
the bash completion protocol, run as the shell runs it, in a real process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, process_env, run_inventory


def complete(line: str, env: dict[str, str] | None = None, *, importtime: bool = False) -> subprocess.CompletedProcess:
    """What TAB offers after ``line`` (the last word is the one being completed)."""
    words = line.split(" ")
    argv = [sys.executable] + (["-X", "importtime"] if importtime else []) + ["-m", "inventory_cli"]
    return subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env=process_env({"_INVENTORY_COMPLETE": "complete_bash", "COMP_WORDS": line,
                         "COMP_CWORD": str(len(words) - 1), **(env or {})}),
    )


def offered(line: str, env: dict[str, str] | None = None) -> list[str]:
    done = complete(line, env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout.split()


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    db = tmp_path_factory.mktemp("completion") / "shop.db"
    for args in (("add", "TEA-250", "5"), ("add", "TEA-500", "5", "-s", "north"), ("add", "MUG-BLUE", "5"),
                 ("reserve", "MUG-BLUE", "1", "--customer", "c", "--id", "web-1"),
                 ("reserve", "MUG-BLUE", "1", "--customer", "c", "--id", "web-2"),
                 ("release", "web-2"),
                 ("transfer", "MUG-BLUE", "1", "--from", "main", "--to", "paris", "--id", "T-9")):
        assert run_inventory(db, *args).returncode == 0
    return db


def test_command_names_and_options_complete(shop):
    assert sorted(offered("inventory re", {"INVENTORY_DB": str(shop)})) == sorted([
        "remove", "revert", "reserve", "release", "reservations", "receive", "replay", "report",
        "rebuild-projections", "restore"])
    assert "--all-stores" in offered("inventory stock --a", {"INVENTORY_DB": str(shop)})


def test_product_codes_of_the_store_in_force(shop):
    env = {"INVENTORY_DB": str(shop)}
    assert offered("inventory add T", env) == ["TEA-250"]
    assert offered("inventory remove -s north T", env) == ["TEA-500"]
    assert offered("inventory history ", {**env, "INVENTORY_STORE": "north"}) == ["TEA-500"]
    assert offered("inventory stock --all-stores T", env) == ["TEA-250", "TEA-500"]


def test_store_codes_and_open_ids(shop):
    env = {"INVENTORY_DB": str(shop)}
    assert offered("inventory stock --store ", env) == ["main", "north", "paris"]
    assert offered("inventory transfer MUG-BLUE 1 --from main --to p", env) == ["paris"]
    assert offered("inventory release ", env) == ["web-1"]  # web-2 is closed
    assert offered("inventory fulfill w", env) == ["web-1"]
    assert offered("inventory receive ", env) == ["T-9"]


def test_the_database_is_the_one_the_command_line_names(shop, tmp_path):
    assert offered(f"inventory --db {shop} add M") == ["MUG-BLUE"]
    config = tmp_path / "config.toml"
    config.write_text(f'db = "{shop}"\n')
    assert offered("inventory add M", {"INVENTORY_CONFIG": str(config)}) == ["MUG-BLUE"]
    config.write_text(f'db = "{shop}"\nstore = "north"\n')
    assert offered("inventory add T", {"INVENTORY_CONFIG": str(config)}) == ["TEA-500"]
    missing = tmp_path / "missing.db"
    assert offered("inventory add ", {"INVENTORY_DB": str(missing)}) == []
    assert not missing.exists()
    (tmp_path / "junk.db").write_text("not a database")
    assert offered("inventory add ", {"INVENTORY_DB": str(tmp_path / "junk.db")}) == []


def test_completion_imports_nothing_heavy(shop):
    done = complete("inventory add T", {"INVENTORY_DB": str(shop)}, importtime=True)
    assert done.stdout.split() == ["TEA-250"]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "sqlite3" in imported
    # (typer 0.29 itself imports pydantic while completing, in typer._adapters: not ours to avoid)
    assert not imported & {"rich", "sqlite_utils", "psycopg", "platformdirs", "tomllib"}
    ours = {m for m in imported if m.startswith(("inventory_cli.storage", "inventory_cli.application", "inventory_cli.domain"))}
    assert ours <= {"inventory_cli.storage", "inventory_cli.storage.errors", "inventory_cli.application",
                    "inventory_cli.application.errors", "inventory_cli.domain", "inventory_cli.domain.errors"}
