"""Everyday use at the counter and in scripts (docs/commands.md, "Conventions" and
"At a terminal"): locations given empty, help, closed pipes, Ctrl-C, read-only files."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from conftest import _built_once, cli_env, event_count, inventory_argv, process_env, run_inventory
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


@pytest.mark.parametrize("how", ["--db ''", "INVENTORY_DB="])
def test_an_empty_database_location_still_lets_a_command_show_its_help(tmp_path, home, how):
    env = cli_env(None, home)
    args = ["add", "--help"]
    if how == "--db ''":
        args = ["--db", "", *args]
    else:
        env["INVENTORY_DB"] = ""
    result = _run(args, env)
    assert result.exit_code == 0, result.stderr
    assert "inventory add PRODUCT QUANTITY" in result.stdout and result.stderr == ""


def test_a_given_location_still_wins_over_an_empty_environment_variable(tmp_path, home):
    db = tmp_path / "given.db"
    env = {**cli_env(None, home), "INVENTORY_DB": ""}
    result = _run(["--db", str(db), "add", "SKU", "1"], env)
    assert result.exit_code == 0, result.stderr
    assert event_count(db) == 1


# -- a reader that stops early -------------------------------------------------------


@pytest.fixture(scope="module")
def busy_store(tmp_path_factory) -> Path:
    """A store whose every listing is far longer than a pipe's buffer (64 KiB)."""
    db = tmp_path_factory.mktemp("busy") / "inv.db"
    rows = db.parent / "rows.ndjson"
    rows.write_text("".join(
        json.dumps({"op": "add", "product": f"SKU-{i % 2500:05}", "quantity": 1 + i % 7}) + "\n"
        for i in range(6000)
    ))
    assert run_inventory(db, "import", str(rows)).returncode == 0
    return db


@pytest.mark.parametrize("command", [
    ["export"], ["stock"], ["stock", "--json"], ["history"], ["history", "--json"],
    ["product", "list"], ["replay"], ["history", "SKU-00001"],
])
def test_a_reader_that_stops_after_one_line_is_not_an_error(busy_store, command):
    """`inventory export | head -1`: a real reader that leaves after its first line."""
    pipeline = subprocess.run(
        f"( {' '.join(map(shlex.quote, inventory_argv(busy_store, *command)))} 2> stderr.txt;"
        " echo $? > status.txt ) | head -1",
        shell=True, cwd=busy_store.parent, env=process_env(), capture_output=True, text=True,
        timeout=120,
    )
    assert pipeline.stdout.count("\n") == 1
    assert (busy_store.parent / "status.txt").read_text().strip() == "0"
    assert (busy_store.parent / "stderr.txt").read_text() == ""


def _with_stdout_closed(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe nobody reads any more: every write to it fails (EPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(inventory_argv(db, *args), env=process_env(), stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("json_output", [False, True])
def test_a_committed_write_whose_reader_has_gone_exits_0_and_stays_written(db_path, json_output):
    result = _with_stdout_closed(db_path, "add", "SKU", "3", *(["--json"] if json_output else []))
    assert (result.returncode, result.stderr) == (0, "")
    assert event_count(db_path) == 1


def test_a_refused_write_keeps_its_exit_code_when_stdout_is_closed(db_path):
    result = _with_stdout_closed(db_path, "remove", "SKU", "3")
    assert result.returncode == 1
    assert "only 0 available" in result.stderr or "available" in result.stderr


@pytest.mark.parametrize("command", [["export"], ["stock"], ["history", "--json"], ["product", "list"],
                                     ["reservations"], ["transfers"], ["verify"]])
def test_a_query_whose_stdout_is_closed_exits_0_quietly(busy_store, command):
    result = _with_stdout_closed(busy_store, *command)
    assert (result.returncode, result.stderr) == (0, "")


# -- help --------------------------------------------------------------------------------

PANELS = ["Stock moves", "Reservations", "Transfers", "Products", "Queries", "Reports", "Audit", "Feed",
          "Maintenance"]


def test_a_bare_inventory_prints_the_help_with_the_commands_in_panels(tmp_path):
    result = subprocess.run([sys.executable, "-m", "inventory_cli"], env=process_env(),
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: inventory [OPTIONS] COMMAND")
    headings = [line[:-1] for line in result.stdout.splitlines() if line.endswith(":") and line[0] != " "]
    assert headings[headings.index("Options") + 1:] == PANELS
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("command", "usage"), [
    (["add"], "inventory add PRODUCT QUANTITY [OPTIONS]"),
    (["reserve"], "inventory reserve PRODUCT QUANTITY [OPTIONS]"),
    (["history"], "inventory history [PRODUCT] [OPTIONS]"),
    (["release"], "inventory release RID [OPTIONS]"),
    (["product", "set"], "inventory product set PRODUCT [OPTIONS]"),
])
def test_help_names_arguments_and_option_values_without_python_types(command, usage, db_path):
    result = _run([*command, "--help"], cli_env(db_path))
    assert result.exit_code == 0
    text = result.stdout
    assert f"Usage: {usage}" in text
    assert "<" not in text and "{" not in text, text  # no <str>, <bool>, {PRODUCT}
    assert re.search(r"--json +Print one JSON document", text), text


def test_a_missing_argument_shows_the_usage_line_with_plain_names(db_path):
    result = _run(["reserve", "TEA", "1"], cli_env(db_path))
    assert result.exit_code == 2
    assert "Usage: inventory reserve PRODUCT QUANTITY [OPTIONS]" in result.stderr
    assert "--customer" in result.stderr


# -- long output streams: memory stays flat with the log's length ---------------------------

_PEAK_MEMORY = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


@pytest.fixture(scope="module")
def long_log(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("long") / "inv.db"
    rows = db.parent / "rows.ndjson"
    with rows.open("w") as out:
        for i in range(60_000):
            out.write(json.dumps({"op": "add", "product": f"SKU-{i % 400:04}", "quantity": 1,
                                  "reason": f"delivery {i}"}) + "\n")
    assert run_inventory(db, "import", str(rows), "--quiet").returncode == 0
    return db


@pytest.mark.parametrize("command", [["history", "--json"], ["history"], ["export"],
                                     ["history", "SKU-0001", "--json"]])
def test_long_output_is_written_as_it_is_read_in_little_memory(long_log, command):
    """60,000 events: held in memory at once they take well over 100 MiB."""
    result = subprocess.run([sys.executable, "-c", _PEAK_MEMORY, *inventory_argv(long_log, *command)],
                            env=process_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    peak_mib = int(result.stdout) / 1024
    assert peak_mib < 64, f"{command}: {peak_mib:.0f} MiB"


def test_history_json_written_incrementally_is_the_same_document(long_log):
    whole = json.loads(run_inventory(long_log, "history", "--json", "--limit", "3").stdout)
    assert [e["position"] for e in whole] == [59_998, 59_999, 60_000]
    empty = run_inventory(long_log, "history", "NOPE", "--json")
    assert empty.stdout == "[]\n"


def test_tables_in_a_pipe_show_local_times_to_the_second_and_json_keeps_iso(db_path):
    assert run_inventory(db_path, "add", "SKU", "5").returncode == 0
    [event] = json.loads(run_inventory(db_path, "history", "SKU", "--json").stdout)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", event["occurred_at"])
    moment = datetime.fromisoformat(event["occurred_at"])
    for zone in ("Asia/Kathmandu", "America/Los_Angeles"):
        shown = run_inventory(db_path, "history", "SKU", env={"TZ": zone}).stdout
        assert moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S") in shown
        assert "+00:00" not in shown


# -- read-only databases ------------------------------------------------------------------


def _can_mount_read_only() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture
def read_only(tmp_path):
    """Run the tool on a folder it can read but not write.

    root ignores file modes, so as root the folder is bind-mounted read-only onto
    itself in a mount namespace of the command's own (`unshare -m`); as anyone else
    the folder and file lose their write permission.
    """
    folder = tmp_path / "backup"
    folder.mkdir()
    if os.geteuid() == 0 and not _can_mount_read_only():
        pytest.skip("running as root without mount namespaces: no way to make a file read-only")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        db = folder / "inv.db"
        argv = inventory_argv(db, *args)
        if os.geteuid() == 0:
            script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
            argv = ["unshare", "-m", "sh", "-c", script, str(folder), *argv]
        else:
            for path in [*folder.iterdir(), folder]:
                path.chmod(path.stat().st_mode & ~0o222)
        try:
            return subprocess.run(argv, env=process_env(), cwd=tmp_path, capture_output=True,
                                  text=True, timeout=120)
        finally:
            if os.geteuid() != 0:
                for path in [folder, *folder.iterdir()]:
                    path.chmod(path.stat().st_mode | 0o200)

    return folder, run


def _filled(db: Path) -> None:
    for args in (("add", "TEA", "10"), ("reserve", "TEA", "3", "--customer", "c-1", "--id", "R-1"),
                 ("remove", "TEA", "2")):
        assert run_inventory(db, *args).returncode == 0


def test_a_read_only_database_answers_queries(read_only):
    folder, run = read_only
    _filled(folder / "inv.db")
    expected = {args: run_inventory(folder / "inv.db", *args).stdout
                for args in [("stock", "--json"), ("history", "TEA", "--json"), ("reservations", "--json")]}
    for args, output in expected.items():
        result = run(*args)
        assert (result.returncode, result.stderr) == (0, ""), args
        assert result.stdout == output
    assert run("verify").returncode == 0
    assert run("replay", "--position", "1", "--json").returncode == 0
    assert "TEA" in run("stock").stdout
    assert sorted(p.name for p in folder.iterdir()) == ["inv.db"]


@pytest.mark.parametrize("command", [["add", "TEA", "1"], ["release", "R-1"], ["rebuild-projections"]])
def test_a_write_to_a_read_only_database_exits_74_saying_so(read_only, command):
    folder, run = read_only
    _filled(folder / "inv.db")
    before = (folder / "inv.db").read_bytes()
    result = run(*command)
    assert result.returncode == 74
    assert "read-only" in result.stderr and "Traceback" not in result.stderr
    assert (folder / "inv.db").read_bytes() == before


def test_a_read_only_database_not_closed_cleanly_is_refused_with_a_hint(read_only, tmp_path):
    folder, run = read_only
    source = tmp_path / "live.db"
    _filled(source)
    holder = sqlite3.connect(source)  # keeps the next write in the -wal, as a crash would
    holder.execute("PRAGMA wal_autocheckpoint = 0")
    holder.execute("SELECT count(*) FROM events").fetchone()
    assert run_inventory(source, "add", "TEA", "5").returncode == 0
    shutil.copy(source, folder / "inv.db")
    shutil.copy(f"{source}-wal", folder / "inv.db-wal")
    holder.close()
    result = run("stock")
    assert result.returncode == 74
    assert "not closed cleanly" in result.stderr


@pytest.mark.parametrize(("group", "commands"), [("product", ("set", "list")),
                                                 ("report", ("movements", "cover"))])
def test_a_bare_group_prints_its_help_too(db_path, group, commands):
    result = _run([group], cli_env(db_path))
    assert result.exit_code == 0
    assert f"Usage: inventory {group} [OPTIONS] COMMAND" in result.stdout
    assert all(re.search(rf"^  {name} ", result.stdout, re.M) for name in commands)
