"""Many writer processes on one PostgreSQL log (the application and store in-process, no
CLI): no oversell, no lost add, transfers in opposite directions without deadlock, each
command answered with its real position, gap-free positions that a reader polling after
its last position sees exactly once each, in order."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import REPO_ROOT, process_env
from pg_fixtures import pg_schema, pg_url  # noqa: F401  (fixtures)
from inventory_cli.application.commands import AddStock
from inventory_cli.application.handlers import run_command
from inventory_cli.storage.postgresql.store import open_store

WRITER = textwrap.dedent("""
    import sys
    from inventory_cli.application.commands import AddStock, RemoveStock, TransferStock
    from inventory_cli.application.handlers import run_command
    from inventory_cli.domain.errors import RuleViolation
    from inventory_cli.storage.postgresql.store import open_store

    url, me, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = open_store(url, create=True)
    sold, positions = 0, []
    for i in range(rounds):
        positions.append(run_command(store, AddStock("main", "shared", 1, key=f"add-{me}-{i}")).position)
        try:
            run_command(store, RemoveStock("main", "scarce", 1, key=f"sell-{me}-{i}"))
            sold += 1
        except RuleViolation:
            pass
        a, b = ("north", "south") if (me + i) % 2 else ("south", "north")
        try:
            run_command(store, TransferStock("T", 1, a, b))
        except RuleViolation:
            pass
    print(sold, *positions)
""")

READER = textwrap.dedent("""
    import sys, time
    from inventory_cli.storage.postgresql.store import open_store

    url, stop = sys.argv[1], sys.argv[2]
    store = open_store(url, create=False)
    seen, last = [], 0
    while True:
        batch = [r.position for r in store.read_log(after_position=last)]
        seen += batch
        last = seen[-1] if seen else 0
        if not batch and open(stop).read() == "stop":
            break
        time.sleep(0.005)
    print(" ".join(map(str, seen)))
""")


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], env=process_env(), cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_many_writers_neither_oversell_nor_lose_an_add_and_a_reader_sees_every_position_once(
    pg_url: str, tmp_path
) -> None:
    store = open_store(pg_url, create=True)
    run_command(store, AddStock("main", "scarce", 40))
    for shop in ("north", "south"):
        run_command(store, AddStock(shop, "T", 5))
    stop = tmp_path / "stop"
    stop.write_text("")
    reader = _python(READER, pg_url, str(stop))
    writers = [_python(WRITER, pg_url, str(me), "25") for me in range(6)]
    outputs = [w.communicate(timeout=300) for w in writers]
    stop.write_text("stop")
    seen_text, reader_err = reader.communicate(timeout=120)
    for (out, err), writer in zip(outputs, writers):
        assert writer.returncode == 0, err
    assert reader.returncode == 0, reader_err

    sold = sum(int(out.split()[0]) for out, _ in outputs)
    # Each add answered with the position the server gave its event.
    answered = {f"add-{me}-{i}": int(p) for me, (out, _) in enumerate(outputs) for i, p in enumerate(out.split()[1:])}
    keyed = {r.idempotency_key: r.position for r in store.read_log() if r.idempotency_key in answered}
    assert keyed == answered
    assert sold == 40  # 150 attempts on 40 units: every unit sold once, none twice
    lines = {(line.store, line.product): line for line in store.stock_lines(None, None)}
    assert lines["main", "scarce"].on_hand == 0
    assert lines["main", "shared"].on_hand == 150
    assert lines["north", "T"].on_hand + lines["south", "T"].on_hand + (
        lines["north", "T"].incoming + lines["south", "T"].incoming
    ) == 10
    head = store.head_position()
    assert [int(p) for p in seen_text.split()] == list(range(1, head + 1))
    assert store.verify_chain().first_bad_position is None
    assert store.check_projections().differences == []
    store.close()
