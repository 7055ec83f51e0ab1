"""The CLI on PostgreSQL as real processes: many counters at once, a follower of the log,
an unreachable server, a reader role, kill -9 during an import."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

from conftest import REPO_ROOT, process_env, run_inventory, spawn_inventory
from pg_fixtures import PgSchema, admin_connection, pg_schema, pg_url  # noqa: F401  (fixtures)
from test_postgresql_roles import READER_GRANTS, roles  # noqa: F401  (fixture)

# Runs `inventory` once per line of argv lists given as JSON, one after another; prints the exit codes.
SEQUENCE = textwrap.dedent("""
    import json, subprocess, sys
    codes = []
    for argv in json.loads(sys.argv[1]):
        done = subprocess.run([sys.executable, "-m", "inventory_cli", *argv], capture_output=True, text=True)
        if done.returncode not in (0, 1):
            sys.stderr.write(done.stderr)
        codes.append(done.returncode)
    print(json.dumps(codes))
""")

# Polls `export --after-position LAST` until the stop file says so; prints every position seen.
FOLLOWER = textwrap.dedent("""
    import json, os, subprocess, sys
    db, stop = sys.argv[1], sys.argv[2]
    seen = []
    while True:
        stopping = os.path.exists(stop)
        after = seen[-1] if seen else 0
        done = subprocess.run([sys.executable, "-m", "inventory_cli", "--db", db, "export",
                               "--after-position", str(after)], capture_output=True, text=True, check=True)
        seen += [json.loads(line)["position"] for line in done.stdout.splitlines()]
        if stopping:
            break
    print(json.dumps(seen))
""")


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], env=process_env(), cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_counters_at_once_never_oversell_or_lose_an_add_and_a_follower_sees_each_event_once(
    pg_url: str, tmp_path
) -> None:
    assert run_inventory(pg_url, "add", "scarce", "12").returncode == 0
    stop = tmp_path / "stop"
    follower = _python(FOLLOWER, pg_url, str(stop))
    counters = []
    for me in range(5):
        argv = []
        for i in range(5):
            argv.append(["--db", pg_url, "remove", "scarce", "1", "--store", "main"])
            argv.append(["--db", pg_url, "add", "shared", "1", "--store", f"s{me % 2}"])
        counters.append(_python(SEQUENCE, json.dumps(argv)))
    results = [c.communicate(timeout=600) for c in counters]
    stop.write_text("stop")
    seen, follower_err = follower.communicate(timeout=300)
    assert follower.returncode == 0, follower_err

    codes = [code for out, err in results for code in json.loads(out)]
    removals, adds = codes[0::2], codes[1::2]
    assert adds == [0] * 25
    assert removals.count(0) == 12 and removals.count(1) == 13  # each unit sold once, the rest refused
    stock = json.loads(run_inventory(pg_url, "stock", "--all-stores", "--json").stdout)
    on_hand = {(line["store"], line["product"]): line["on_hand"] for line in stock}
    assert on_hand["main", "scarce"] == 0
    assert on_hand["s0", "shared"] + on_hand["s1", "shared"] == 25
    assert json.loads(seen) == list(range(1, 1 + 1 + 12 + 25))
    assert run_inventory(pg_url, "verify").returncode == 0


def test_an_unreachable_server_exits_75_for_writes_and_queries_without_a_password_in_sight() -> None:
    url = "postgresql://postgres:hunter2@127.0.0.1:1/test"
    for argv in (["add", "A", "1"], ["stock"]):
        done = run_inventory(url, *argv, env={"INVENTORY_BUSY_TIMEOUT": "1"})
        assert done.returncode == 75, done.stderr
        assert "could not be reached" in done.stderr and "hunter2" not in done.stderr + done.stdout


def test_a_refused_login_or_an_unknown_database_exits_74() -> None:
    done = run_inventory("postgresql://no_such_role_x@127.0.0.1:5432/test", "stock")
    assert done.returncode == 74 and "no_such_role_x" in done.stderr
    done = run_inventory("postgresql://postgres@127.0.0.1:5432/no_such_database", "add", "A", "1")
    assert done.returncode == 74 and "does not exist" in done.stderr


def test_a_reader_roles_write_exits_74_naming_the_privilege(pg_schema: PgSchema, roles) -> None:  # noqa: F811
    assert run_inventory(pg_schema.url, "add", "A", "3").returncode == 0
    with admin_connection() as conn:
        conn.execute(READER_GRANTS.format(s=pg_schema.name, reader=roles["reader"]))
    reader_url = pg_schema.url.replace("postgres@", f"{roles['reader']}@", 1)
    assert json.loads(run_inventory(reader_url, "stock", "--json").stdout)[0]["on_hand"] == 3
    done = run_inventory(reader_url, "remove", "A", "1")
    assert done.returncode == 74 and "INSERT" in done.stderr
    assert pg_schema.sql("SELECT count(*) FROM events") == [(1,)]


def test_kill_9_during_an_import_leaves_all_or_nothing(pg_schema: PgSchema, tmp_path) -> None:
    rows = 40_000
    source = tmp_path / "rows.ndjson"
    source.write_text("".join(
        json.dumps({"op": "add", "product": f"P{i % 50}", "quantity": 1, "id": f"r{i}"}) + "\n"
        for i in range(rows)
    ))
    importer = spawn_inventory(pg_schema.url, "import", str(source))
    holds_log_lock = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s"
        " AND objsubid = 2 AND objid::bigint = hashtext(%s)::bigint & 4294967295"
    )
    from inventory_cli.storage.postgresql.schema import LOCK_CLASS

    deadline = time.monotonic() + 120
    while pg_schema.sql(holds_log_lock, (LOCK_CLASS, pg_schema.name)) != [(1,)]:
        assert importer.poll() is None, importer.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(importer.pid, signal.SIGKILL)  # mid-transaction: events appended, not committed
    importer.wait()
    time.sleep(0.5)
    # Nothing of it remains, not even the tables its first write was creating.
    assert pg_schema.sql("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (pg_schema.name,)) == [(0,)]
    done = run_inventory(pg_schema.url, "import", str(source), "--json")
    assert done.returncode == 0, done.stderr
    assert pg_schema.sql("SELECT count(*), max(position) FROM events") == [(rows, rows)]


def test_the_same_import_twice_at_once_applies_each_row_once(pg_schema: PgSchema, tmp_path) -> None:
    source = tmp_path / "rows.ndjson"
    source.write_text("".join(
        json.dumps({"op": "add", "product": f"P{i % 20}", "quantity": 1, "id": f"r{i}"}) + "\n"
        for i in range(3000)
    ))
    assert run_inventory(pg_schema.url, "migrate").returncode == 0
    imports = [spawn_inventory(pg_schema.url, "import", str(source), "--json") for _ in range(2)]
    outcomes = [(p.wait(timeout=300), *p.communicate()) for p in imports]
    for code, _out, err in outcomes:
        assert code == 0, err  # import batches run one after the other: neither loses a race
    reports = sorted((json.loads(out)["applied"], json.loads(out)["duplicates"]) for _, out, _ in outcomes)
    assert reports == [(0, 3000), (3000, 0)]
    assert pg_schema.sql("SELECT count(*), max(position) FROM events") == [(3000, 3000)]
    again = run_inventory(pg_schema.url, "import", str(source), "--json")
    assert json.loads(again.stdout)["duplicates"] == 3000


def test_a_writer_that_waits_longer_than_the_busy_timeout_exits_75_having_written_nothing(pg_schema) -> None:
    from inventory_cli.storage.postgresql.schema import STREAM_LOCK_SQL

    assert run_inventory(pg_schema.url, "add", "A", "1").returncode == 0
    with admin_connection() as holder:
        holder.execute(f'SET search_path TO "{pg_schema.name}"')
        with holder.transaction():
            holder.execute(STREAM_LOCK_SQL, ("main", "A"))  # another counter, mid-command
            done = run_inventory(pg_schema.url, "add", "A", "1", env={"INVENTORY_BUSY_TIMEOUT": "1"})
    assert done.returncode == 75 and "busy" in done.stderr
    assert pg_schema.sql("SELECT count(*) FROM events") == [(1,)]
    assert run_inventory(pg_schema.url, "add", "A", "1").returncode == 0  # free again
