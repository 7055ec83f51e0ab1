"""`export --follow` and `--consumer` as real processes (spec/cli.md, "Following the log").

A follower is the console script in a subprocess, read through a pipe; writers are
other processes. Waits have generous deadlines: nothing here measures speed.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import process_env, run_inventory, spawn_inventory

DEADLINE = 60  # seconds: how long a test waits for a line before failing


class Follower:
    """`inventory export --follow …` in a subprocess; its stdout read line by line by a thread."""

    def __init__(self, db: Path, *args: str) -> None:
        self.proc = spawn_inventory(db, "export", "--follow", *args)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # a last line without "\n" comes as it is
            self._lines.put(line)
        self._lines.put(None)

    def take(self, count: int) -> list[dict]:
        """The next ``count`` lines, parsed (each must be a whole line)."""
        taken = []
        for _ in range(count):
            line = self._lines.get(timeout=DEADLINE)
            assert line is not None, f"the follower ended early: {self.proc.stderr.read()}"
            assert line.endswith("\n"), f"partial line {line!r}"
            taken.append(json.loads(line))
        return taken

    def take_until(self, position: int) -> list[dict]:
        taken: list[dict] = []
        while not taken or taken[-1]["position"] < position:
            taken += self.take(1)
        return taken

    def end(self, signum: int | None = signal.SIGTERM) -> tuple[int, list[str], str]:
        """Send ``signum`` (None: just wait), then the exit code, the raw lines left, stderr."""
        if signum is not None:
            self.proc.send_signal(signum)
        code = self.proc.wait(timeout=DEADLINE)
        self._reader.join(timeout=DEADLINE)
        rest = []
        while (line := self._lines.get(timeout=DEADLINE)) is not None:
            rest.append(line)
        return code, rest, self.proc.stderr.read()

    def wait_until_listening_for_signals(self) -> None:
        """Until the follower has its SIGTERM handler (Linux: the caught-signals mask in /proc):
        a signal sent earlier would find Python's start-up, not the follower."""
        status = Path(f"/proc/{self.proc.pid}/status")
        if not status.exists():
            pytest.skip("needs /proc to see when the follower is ready")
        for _ in range(DEADLINE * 20):
            caught = next(line for line in status.read_text().splitlines() if line.startswith("SigCgt:"))
            if int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
                return
            threading.Event().wait(0.05)
        raise AssertionError("the follower never got ready")

    def kill(self) -> list[str]:
        self.proc.kill()
        return self.end(None)[1]


def positions(events: list[dict]) -> list[int]:
    return [event["position"] for event in events]


def parsed(lines: list[str]) -> list[dict]:
    assert all(line.endswith("\n") for line in lines), "a partial line was written"
    return [json.loads(line) for line in lines]


def add(db: Path, product: str = "P", quantity: int = 1, *args: str) -> None:
    result = run_inventory(db, "add", product, str(quantity), *args)
    assert result.returncode == 0, result.stderr


def backlog(db: Path, events: int, tmp_path: Path) -> None:
    """``events`` adds in one import (positions 1..events)."""
    source = tmp_path / f"backlog-{events}.ndjson"
    source.write_text("".join(
        json.dumps({"op": "add", "product": f"P{i % 50}", "quantity": 1}) + "\n" for i in range(events)
    ))
    result = run_inventory(db, "import", str(source), "-q")
    assert result.returncode == 0, result.stderr


def consumer_position(db: Path, name: str) -> int | None:
    result = run_inventory(db, "consumers", "--json")
    assert result.returncode == 0, result.stderr
    return {row["consumer"]: row["position"] for row in json.loads(result.stdout)}.get(name)


def head(db: Path) -> int:
    result = run_inventory(db, "export")
    return len(result.stdout.splitlines())


# -- backlog, then live events ---------------------------------------------------------------


def test_the_backlog_comes_first_then_each_event_as_other_processes_commit_it(db_path):
    add(db_path, "A", 5)
    add(db_path, "B", 3, "--store", "north")
    follower = Follower(db_path)
    first = follower.take(2)
    assert positions(first) == [1, 2]
    assert run_inventory(db_path, "export").stdout.splitlines() == [
        json.dumps(event, ensure_ascii=False) for event in first
    ]  # the same line format as `export`
    for number in range(3):
        add(db_path, "A", number + 1)
        (event,) = follower.take(1)  # each shows before the next is written
        assert (event["position"], event["type"], event["quantity"]) == (3 + number, "StockAdded", number + 1)
    code, rest, stderr = follower.end(signal.SIGTERM)
    assert (code, rest, stderr) == (0, [], "")


def test_after_position_starts_the_follower_later(db_path):
    for _ in range(4):
        add(db_path)
    follower = Follower(db_path, "--after-position", "2")
    assert positions(follower.take(2)) == [3, 4]
    add(db_path)
    assert positions(follower.take(1)) == [5]
    assert follower.end()[0] == 0


def test_a_follower_started_before_the_database_exists_waits_for_it(tmp_path):
    db = tmp_path / "later" / "inv.db"
    follower = Follower(db)
    add(db, "A", 2)
    assert positions(follower.take(1)) == [1]
    assert follower.end()[0] == 0


def test_a_follower_of_an_empty_file_waits_for_its_first_writer(db_path):
    db_path.touch()  # as a first writer leaves it until its schema commits
    one_off = run_inventory(db_path, "export", "--consumer", "x")
    assert (one_off.returncode, one_off.stdout, one_off.stderr) == (0, "", "")
    follower = Follower(db_path)
    follower.wait_until_listening_for_signals()
    add(db_path, "A", 2)
    assert positions(follower.take(1)) == [1]
    assert follower.end()[0] == 0


def test_a_follower_of_a_missing_database_creates_nothing(tmp_path):
    db = tmp_path / "never" / "inv.db"
    follower = Follower(db, "--consumer", "warehouse")
    follower.wait_until_listening_for_signals()
    code, rest, stderr = follower.end(signal.SIGINT)
    assert (code, rest, stderr) == (0, [], "")
    assert not db.parent.exists()


# -- signals: exit 0 after a whole line --------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_follower_with_exit_0_after_a_whole_line(db_path, tmp_path, signum):
    backlog(db_path, 3000, tmp_path)
    follower = Follower(db_path, "--consumer", "relay")
    first = follower.take(5)  # the rest fills the pipe: the follower is in the middle of writing
    code, rest, stderr = follower.end(signum)
    delivered = first + parsed(rest)
    assert (code, stderr) == (0, "")
    assert positions(delivered) == list(range(1, len(delivered) + 1))
    assert consumer_position(db_path, "relay") == len(delivered)  # saved at exit


def test_a_signal_while_waiting_for_events_ends_the_follower_at_once(db_path):
    add(db_path)
    follower = Follower(db_path, "--consumer", "idle")
    follower.take(1)
    code, rest, stderr = follower.end(signal.SIGINT)
    assert (code, rest, stderr) == (0, [], "")
    assert consumer_position(db_path, "idle") == 1


# -- resuming by consumer name ------------------------------------------------------------------


def test_a_consumer_killed_and_restarted_misses_nothing(db_path, tmp_path):
    backlog(db_path, 3000, tmp_path)
    first_run = Follower(db_path, "--consumer", "warehouse")
    seen = first_run.take(100)
    seen += parsed(first_run.kill())  # kill -9: whatever reached the pipe, and no goodbye
    assert positions(seen) == list(range(1, len(seen) + 1))
    saved = consumer_position(db_path, "warehouse")
    assert saved is not None and saved <= len(seen)  # saved only after its line was written

    second_run = Follower(db_path, "--consumer", "warehouse")
    add(db_path, "LATE", 1)
    resumed = second_run.take_until(3001)
    assert positions(resumed) == list(range(saved + 1, 3002))  # in order, from just after the save
    assert set(positions(seen + resumed)) == set(range(1, 3002))  # every position at least once
    assert second_run.end()[0] == 0
    assert consumer_position(db_path, "warehouse") == 3001


def test_export_with_a_consumer_but_without_follow_writes_what_is_new_and_stops(db_path):
    for _ in range(3):
        add(db_path)
    first = run_inventory(db_path, "export", "--consumer", "nightly")
    assert [json.loads(line)["position"] for line in first.stdout.splitlines()] == [1, 2, 3]
    add(db_path)
    second = run_inventory(db_path, "export", "--consumer", "nightly")
    assert [json.loads(line)["position"] for line in second.stdout.splitlines()] == [4]
    replay = run_inventory(db_path, "export", "--consumer", "nightly", "--after-position", "1")
    assert [json.loads(line)["position"] for line in replay.stdout.splitlines()] == [2, 3, 4]
    assert consumer_position(db_path, "nightly") == 4


def test_ctrl_c_cuts_a_one_off_consumer_export_short_with_130_and_saves_its_position(db_path, tmp_path):
    backlog(db_path, 3000, tmp_path)
    export = spawn_inventory(db_path, "export", "--consumer", "batch")
    first = export.stdout.readline()  # started; the rest waits in the full pipe
    export.send_signal(signal.SIGINT)
    rest = export.stdout.read()  # through the same buffered file as the first line
    stderr = export.stderr.read()
    export.wait(timeout=DEADLINE)
    delivered = parsed([first, *rest.splitlines(keepends=True)])
    assert export.returncode == 130 and "Traceback" not in stderr
    assert positions(delivered) == list(range(1, len(delivered) + 1))
    assert consumer_position(db_path, "batch") == len(delivered)


# -- several writers at once ---------------------------------------------------------------------


def test_several_writer_processes_each_position_is_delivered_once_in_order(db_path, tmp_path):
    add(db_path, "SEED", 1)
    follower = Follower(db_path, "--consumer", "audit")
    assert positions(follower.take(1)) == [1]
    writers = []
    for writer in range(4):
        source = tmp_path / f"writer-{writer}.ndjson"
        source.write_text("".join(
            json.dumps({"op": "add", "product": f"W{writer}-{row % 3}", "quantity": 1,
                        "id": f"w{writer}-{row}"}) + "\n"
            for row in range(40)
        ))
        # --batch-size 1: every row is a transaction of its own, interleaved with the others'.
        writers.append(spawn_inventory(db_path, "import", str(source), "--batch-size", "1", "-q"))
    for writer in writers:
        _, stderr = writer.communicate(timeout=DEADLINE * 3)
        assert writer.returncode == 0, stderr
    total = 1 + 4 * 40
    live = follower.take_until(total)
    code, rest, stderr = follower.end()
    assert (code, rest, stderr) == (0, [], "")
    assert positions(live) == list(range(2, total + 1))
    assert consumer_position(db_path, "audit") == total


# -- a reader that goes away ------------------------------------------------------------------------

READ_ONE_LINE = "import sys; sys.stdin.readline()"


@pytest.mark.parametrize("events", [1, 3000], ids=["while-idle", "while-writing"])
def test_a_closed_pipe_ends_the_follower_quietly(db_path, tmp_path, events):
    backlog(db_path, events, tmp_path)
    reader = subprocess.Popen([sys.executable, "-c", READ_ONE_LINE], stdin=subprocess.PIPE)
    follower = subprocess.Popen(
        [sys.executable, "-m", "inventory_cli", "--db", str(db_path), "export", "--follow",
         "--consumer", "head"],
        stdout=reader.stdin, stderr=subprocess.PIPE, env=process_env(), cwd=tmp_path,
    )
    reader.stdin.close()  # only the follower holds the pipe's writing end now
    assert reader.wait(timeout=DEADLINE) == 0
    _, stderr = follower.communicate(timeout=DEADLINE)
    assert (follower.returncode, stderr) == (0, b"")
    assert 1 <= consumer_position(db_path, "head") <= events


def test_export_follow_into_head_ends_by_itself(db_path):
    add(db_path)
    add(db_path)
    pipeline = subprocess.run(
        f"{sys.executable} -m inventory_cli --db {db_path} export --follow | head -n 1",
        shell=True, capture_output=True, text=True, env=process_env(), timeout=DEADLINE,
    )
    assert pipeline.returncode == 0 and pipeline.stderr == ""
    assert json.loads(pipeline.stdout)["position"] == 1


# -- refused before anything is written ---------------------------------------------------------------


def test_a_read_only_database_refuses_a_consumer_but_can_be_followed(db_path):
    add(db_path)
    read_only = f"file:{db_path}?mode=ro"
    refused = run_inventory(Path(read_only), "export", "--consumer", "x")
    assert (refused.returncode, refused.stdout) == (74, "")
    assert "read-only" in refused.stderr and "Traceback" not in refused.stderr
    follower = Follower(Path(read_only))
    assert positions(follower.take(1)) == [1]
    assert follower.end()[0] == 0


@pytest.mark.parametrize("args", [
    ["--follow", "--until", "2026-01-01"],
    ["--consumer", "x", "--until", "2026-01-01"],
    ["--follow", "--consumer", ""],
    ["--follow", "--consumer", "tab\there"],
    ["--follow", "--after-position", "-1"],
])
def test_bad_follow_options_are_usage_errors(invoke, db_path, args):
    invoke("add", "A", "1")
    result = invoke("export", *args, json=False)
    assert result.exit_code == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert os.path.exists(db_path)
