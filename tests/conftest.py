"""Shared fixtures: a temporary database, the CLI through CliRunner, the CLI as a process.

Every test works on real SQLite files under ``tmp_path``; nothing reads or writes
the user's default database, because INVENTORY_DB is always given explicitly.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import typer.main
import typer.testing
from typer.testing import CliRunner

from inventory_cli.cli.main import app

REPO_ROOT = Path(__file__).resolve().parent.parent

# The real retail year (UCI Online Retail, CC BY 4.0): in the shared folder beside the
# checkout (as CI lays it out), else the workplace's; tests that need it skip without it.
RETAIL_DATA = next((folder for folder in (REPO_ROOT.parent / "shared" / "data" / "online-retail",
                                          Path("/work/shared/data/online-retail"))
                    if (folder / "online_retail_non_uk.csv").exists()), Path("/work/shared/data/online-retail"))

# Environment variables that change what the tool does; tests set what they need.
_TOOL_ENV = (
    "INVENTORY_DB",
    "INVENTORY_STORE",
    "INVENTORY_USER",
    "INVENTORY_DEBUG",
    "INVENTORY_BUSY_TIMEOUT",
    "INVENTORY_CONFIG",
    "FORCE_COLOR",
    "NO_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
)

# The JSON shapes: a stock line and a write command's answer (docs/commands.md,
# "Conventions"), an event in `history --json` (docs/commands.md, "history").
STOCK_LINE_KEYS = {
    "store", "product", "name", "on_hand", "reserved", "available", "incoming", "reorder_point",
    "version", "updated_at",
}
WRITE_KEYS = STOCK_LINE_KEYS | {"position"}
RESERVATION_WRITE_KEYS = WRITE_KEYS | {"reservation_id", "quantity", "customer"}
HISTORY_KEYS = {
    "position", "version", "type", "store", "product", "quantity", "occurred_at",
    "recorded_at", "reason", "customer", "reservation_id", "on_hand", "reserved", "available",
    "actor",  # docs/audit.md, "Who did what": history shows who (`actor` in JSON)
}


def assert_keys(document: dict, expected: set[str]) -> None:
    """Exactly the keys the docs name: none missing, none besides."""
    keys = set(document)
    assert keys == expected, f"missing {sorted(expected - keys)}, unexpected {sorted(keys - expected)}"


ANSI_ESCAPE = "\x1b"

# Where tests look for the configuration file: nowhere, so that a developer's own
# ~/.config/inventory-cli/config.toml never changes what a test sees.
NO_CONFIG_HOME = "/nonexistent/inventory-tests-config"


_COMMAND = []


@contextlib.contextmanager
def _built_once():
    """typer's CliRunner rebuilds the whole click command tree (evaluating every signature)
    at each invoke, ~50 ms; reuse one build. Only speed changes: the same command runs."""
    if not hasattr(typer.testing, "_get_command"):  # another typer: nothing to speed up
        yield
        return
    if not _COMMAND:
        _COMMAND.append(typer.main.get_command(app))
    with mock.patch.object(typer.testing, "_get_command", lambda _app: _COMMAND[0]):
        yield


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the database of one test lives; it does not exist until the first write."""
    return tmp_path / "inv.db"


def cli_env(db: Path | str | None, extra: dict[str, str | None] | None = None) -> dict[str, str | None]:
    """CliRunner env: INVENTORY_DB set, the other variables of the tool unset (None)."""
    env: dict[str, str | None] = {name: None for name in _TOOL_ENV}
    env["XDG_CONFIG_HOME"] = NO_CONFIG_HOME
    if db is not None:
        env["INVENTORY_DB"] = str(db)
    env.update(extra or {})
    return env


@pytest.fixture
def invoke(db_path: Path):
    """Run the CLI in-process: ``invoke("add", "SKU", "5")`` appends ``--json`` by default.

    ``db=`` runs against another file, ``env=`` adds variables (None unsets one).
    Returns click's Result; ``result.stdout`` and ``result.stderr`` are separate.
    """
    runner = CliRunner()

    def _invoke(*args: str, json: bool = True, db: Path | str | None = None,
                env: dict[str, str | None] | None = None, input: str | None = None):
        argv = [str(a) for a in args] + (["--json"] if json else [])
        with _built_once():
            return runner.invoke(app, argv, env=cli_env(db or db_path, env), input=input,
                                 catch_exceptions=False)

    return _invoke


def data(result) -> object:
    """The one JSON document a ``--json`` command printed (fails if there is anything else)."""
    return jsonlib.loads(result.stdout)  # raises on anything besides one document


def process_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a real ``inventory`` process: the repository importable, tool vars unset."""
    env = {k: v for k, v in os.environ.items() if k not in _TOOL_ENV}
    env["XDG_CONFIG_HOME"] = NO_CONFIG_HOME
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def _existing_folder(db: Path | str) -> Path:
    """The nearest existing folder above the database: the processes' working directory."""
    folder = Path(db).parent
    while not folder.is_dir():
        folder = folder.parent
    return folder


def inventory_argv(db: Path | str, *args: str) -> list[str]:
    return [sys.executable, "-m", "inventory_cli", "--db", str(db), *map(str, args)]


def run_inventory(db: Path | str, *args: str, env: dict[str, str] | None = None,
                  timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real console script (``python -m inventory_cli``) in a subprocess and wait."""
    return subprocess.run(
        inventory_argv(db, *args), env=process_env(env), cwd=_existing_folder(db),
        capture_output=True, text=True, timeout=timeout,
    )


def spawn_inventory(db: Path | str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start the real console script without waiting for it."""
    return subprocess.Popen(
        inventory_argv(db, *args), env=process_env(env), cwd=_existing_folder(db),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def event_count(db: Path | str) -> int:
    """Events in the log, read without creating or changing anything (0 if no file)."""
    if not Path(db).exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()
