"""A clock that was ahead, from issue 13 (finding 10): one run with the clock a year
ahead dates a product's later events ahead (occurred_at never goes backwards). The
tool says so on stderr when it happens and `verify` reports such events."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import process_env, run_inventory

A_YEAR_AHEAD = datetime.now(timezone.utc) + timedelta(days=365)


def _run_with_clock_ahead(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real console script on a computer whose clock is a year ahead (as faketime +1y)."""
    program = (
        "import sys, inventory_cli.timestamps as t\n"
        f"t.utc_now = lambda: {A_YEAR_AHEAD.isoformat(timespec='microseconds')!r}\n"
        "from inventory_cli.cli.main import main\n"
        "sys.argv = ['inventory'] + sys.argv[1:]\n"
        "main()\n"
    )
    return subprocess.run([sys.executable, "-c", program, "--db", str(db), *args],
                          env=process_env(), cwd=db.parent, capture_output=True, text=True, timeout=60)


def test_a_write_behind_the_streams_latest_event_warns_on_stderr_and_still_succeeds(tmp_path):
    db = tmp_path / "inv.db"
    assert run_inventory(db, "add", "F", "1").returncode == 0
    ahead = _run_with_clock_ahead(db, "add", "F", "1")
    assert ahead.returncode == 0, ahead.stderr
    result = run_inventory(db, "add", "F", "1", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["on_hand"] == 3
    assert "warning" in result.stderr and "clock" in result.stderr
    assert "'F'" in result.stderr and str(A_YEAR_AHEAD.year) in result.stderr
    assert "position 2" in result.stderr  # the event dated ahead
    other = run_inventory(db, "add", "G", "1")  # another product: nothing to say
    assert other.returncode == 0 and other.stderr == ""


def test_verify_reports_events_dated_after_they_were_recorded_and_stays_ok(tmp_path):
    db = tmp_path / "inv.db"
    assert run_inventory(db, "add", "F", "1").returncode == 0
    assert _run_with_clock_ahead(db, "add", "F", "1").returncode == 0
    clean = json.loads(run_inventory(db, "verify", "--json").stdout)
    assert "dated_after_recorded" not in clean
    for _ in range(2):
        assert run_inventory(db, "add", "F", "1").returncode == 0
    result = run_inventory(db, "verify", "--json")
    assert result.returncode == 0  # the chain and the projections hold: ok as the contract says
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["dated_after_recorded"] == 2 and report["first_dated_after_recorded"] == 3
    plain = run_inventory(db, "verify")
    assert plain.returncode == 0 and "dated after" in plain.stdout and "clock" in plain.stdout
