"""The feed on PostgreSQL against the real server, at the storage level: backlog then live
events woken by NOTIFY, polling when notifications are lost, consumers saved and resumed,
the figures of `metrics` against the projections."""

from __future__ import annotations

import select
import threading
import time
from collections import Counter

import pytest

from conftest import run_inventory
from inventory_cli.application.commands import (
    AddStock,
    DefineProduct,
    RemoveStock,
    ReserveStock,
    TransferStock,
)
from inventory_cli.application.feed import relay, start_position
from inventory_cli.application.handlers import run_command
from inventory_cli.storage.empty import EmptyFeed
from inventory_cli.storage.errors import StorageError
from inventory_cli.storage.port import ConsumerPosition
from inventory_cli.storage.postgresql.feed import PostgresLogFeed, open_feed
from inventory_cli.storage.postgresql.store import open_store as open_pg
from inventory_cli.storage.postgresql.schema import CURRENT_VERSION
from pg_fixtures import PgSchema, admin_connection, fresh_schema, pg_schema, pg_url  # noqa: F401
from test_postgresql_roles import READER_GRANTS, roles  # noqa: F401  (fixture)

HANG = 60.0  # seconds: only a bound against a hung test, never a measure


def writer(url: str):
    return open_pg(url, create=True)


def add(store, product: str = "A", quantity: int = 1, shop: str = "main") -> None:
    run_command(store, AddStock(shop, product, quantity), "tester")


def readable(fd: int, seconds: float) -> bool:
    return bool(select.select([fd], [], [], seconds)[0])


def test_a_schema_without_a_log_is_an_empty_feed(pg_url: str) -> None:
    feed = open_feed(pg_url, busy_timeout=5)
    assert isinstance(feed, EmptyFeed)


def test_backlog_then_an_append_from_another_process_wakes_the_follower(pg_url: str) -> None:
    store = writer(pg_url)
    for quantity in (1, 2, 3):
        add(store, quantity=quantity)
    feed = open_feed(pg_url, busy_timeout=5)
    assert isinstance(feed, PostgresLogFeed)
    try:
        assert [e.position for e in feed.read_after(0, 500)] == [1, 2, 3]
        assert not feed.may_have_changed()
        assert run_inventory(pg_url, "add", "B", "7").returncode == 0
        # The socket itself becomes readable: the NOTIFY sent at the append's COMMIT.
        assert readable(feed.wakeup_fileno(), HANG)
        assert feed.may_have_changed()
        [event] = feed.read_after(3, 500)
        assert (event.position, event.product, event.event.quantity) == (4, "B", 7)
        assert event.hash and event.data
        # Drained: the relay's wait is not woken again by the same notification.
        assert not readable(feed.wakeup_fileno(), 0)
        assert not feed.may_have_changed()
    finally:
        feed.close()
        store.close()


def test_appends_to_another_schema_wake_the_socket_but_change_nothing(pg_url: str) -> None:
    store = writer(pg_url)
    add(store)
    feed = open_feed(pg_url, busy_timeout=5)
    with fresh_schema() as other:
        other_store = writer(other.url)
        try:
            add(other_store)
            assert readable(feed.wakeup_fileno(), HANG)
            assert not feed.may_have_changed()
            assert feed.read_after(1, 500) == []
        finally:
            other_store.close()
            feed.close()
            store.close()


def follow_in_thread(feed, expected: int, *, consumer: str | None = None, after: int = 0):
    """The relay following ``feed`` in a thread, with the CLI's kind of idle wait (the socket
    or poll_interval), until ``expected`` lines arrived (or HANG passed)."""
    lines: list[int] = []
    deadline = time.monotonic() + HANG
    fd = feed.wakeup_fileno()

    def idle() -> bool:
        readable(fd, feed.poll_interval)
        return True

    def stopping() -> bool:
        return len(lines) >= expected or time.monotonic() > deadline

    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(relay(
        feed, after=after, emit=lambda e: lines.append(e.position), consumer=consumer, follow=True,
        stopping=stopping, idle=idle)))
    thread.start()
    return thread, lines, result


@pytest.mark.parametrize("loss", ["trigger disabled", "unlisten"])
def test_with_notifications_lost_polling_still_delivers_every_event(pg_schema: PgSchema, loss: str) -> None:
    store = writer(pg_schema.url)
    add(store)
    feed = open_feed(pg_schema.url, busy_timeout=5)
    if loss == "trigger disabled":
        pg_schema.sql("ALTER TABLE events DISABLE TRIGGER events_notify")
    else:
        feed.conn.execute("UNLISTEN *")
    try:
        thread, lines, _ = follow_in_thread(feed, 6)
        for quantity in range(5):
            add(store, quantity=quantity + 1)
        thread.join(HANG + 5)
        assert lines == [1, 2, 3, 4, 5, 6]
    finally:
        feed.close()
        store.close()


def test_a_follower_gets_live_appends_of_several_processes_once_each_in_order(pg_url: str) -> None:
    store = writer(pg_url)
    add(store)
    feed = open_feed(pg_url, busy_timeout=5)
    try:
        thread, lines, _ = follow_in_thread(feed, 7)
        import subprocess

        from conftest import inventory_argv, process_env

        procs = [
            subprocess.Popen(
                inventory_argv(pg_url, "import", "-"),
                env=process_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True,
            )
            for _ in range(2)
        ]
        for number, proc in enumerate(procs):
            rows = "".join(f'{{"op": "add", "product": "P{number}", "quantity": {i + 1}}}\n' for i in range(3))
            out, err = proc.communicate(rows, timeout=120)
            assert proc.returncode == 0, err
        thread.join(HANG + 5)
        assert lines == [1, 2, 3, 4, 5, 6, 7]
    finally:
        feed.close()
        store.close()


def test_a_consumer_is_saved_after_its_lines_and_resumes_after_them(pg_url: str) -> None:
    store = writer(pg_url)
    for quantity in (1, 2, 3):
        add(store, quantity=quantity)
    feed = open_feed(pg_url, busy_timeout=5)
    try:
        seen: list[int] = []
        result = relay(feed, after=start_position(feed, "erp", None), emit=lambda e: seen.append(e.position),
                       consumer="erp")
        assert (seen, result.last_position) == ([1, 2, 3], 3)
        assert feed.consumers() == [ConsumerPosition("erp", 3, 0)]
        add(store)
        add(store)
        assert feed.consumers() == [ConsumerPosition("erp", 3, 2)]
    finally:
        feed.close()
    again = open_feed(pg_url, busy_timeout=5)
    try:
        seen = []
        relay(again, after=start_position(again, "erp", None), emit=lambda e: seen.append(e.position),
              consumer="erp")
        assert seen == [4, 5]
        assert again.consumer_position("erp") == 5
        assert again.consumer_position("nobody") is None
    finally:
        again.close()
        store.close()


def test_a_locked_consumer_row_never_blocks_writers_and_a_save_that_need_not_wait_gives_up(pg_url: str) -> None:
    store = writer(pg_url)
    add(store)
    feed = open_feed(pg_url, busy_timeout=5)
    try:
        assert feed.save_position("erp", 1, wait=True)
        with admin_connection() as other:
            schema = pg_url.split("search_path%3D", 1)[1]
            other.execute(f'SET search_path TO "{schema}"')
            other.execute("BEGIN")
            other.execute("SELECT * FROM consumers WHERE consumer = 'erp' FOR UPDATE")
            assert feed.save_position("erp", 1, wait=False) is False
            add(store)  # a writer goes on while the consumer's row is held
            other.execute("ROLLBACK")
        assert feed.save_position("erp", 2, wait=False) is True
        assert feed.consumers() == [ConsumerPosition("erp", 2, 0)]
    finally:
        feed.close()
        store.close()


def test_a_reader_role_follows_with_a_consumer_given_insert_and_update_on_consumers_only(
    pg_schema: PgSchema, roles: dict[str, str]
) -> None:
    store = writer(pg_schema.url)
    add(store)
    reader = roles["reader"]
    with admin_connection() as conn:
        conn.execute(READER_GRANTS.format(s=pg_schema.name, reader=reader))
    url = pg_schema.url.replace("postgres@", f"{reader}@", 1)
    feed = open_feed(url, busy_timeout=5)
    try:
        with pytest.raises(StorageError, match="INSERT and UPDATE on the table consumers"):
            feed.save_position("erp", 1, wait=True)
        with admin_connection() as conn:
            conn.execute(f'GRANT INSERT, UPDATE ON "{pg_schema.name}".consumers TO "{reader}"')
        seen: list[int] = []
        relay(feed, after=0, emit=lambda e: seen.append(e.position), consumer="erp")
        assert seen == [1] and feed.consumer_position("erp") == 1
        # metrics as a reader: exact figures, the tally left as it was (it may not write it).
        assert dict(feed.figures("2000-01-01T00:00:00+00:00").events_by_type) == {"StockAdded": 1}
        assert pg_schema.sql("SELECT count(*) FROM event_counts") == [(0,)]
    finally:
        feed.close()
        store.close()


def expected_figures(store, now: str) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """What the figures must be, from the log and the port's queries (stock, reservations,
    transfers)."""
    types = Counter(type(recorded.event).__name__ for recorded in store.read_log())
    stores: dict[str, tuple[int, ...]] = {}
    codes = {line.store for line in store.stock_lines(None, None)}
    transfers = store.transfers(open_only=True)
    codes |= {t["to"] for t in transfers}
    for code in codes:
        reservations = store.open_reservations(code, None)
        stores[code] = (
            len(store.stock_lines(code, None)),
            len(store.stock_lines(code, None, low=True)),
            len(reservations),
            sum(1 for r in reservations if r.get("expires_at") and r["expires_at"] <= now),
            sum(1 for t in transfers if t["to"] == code),
        )
    return dict(types), stores


def figures_as_dicts(feed, now: str) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    figures = feed.figures(now)
    return dict(figures.events_by_type), {s.store: tuple(s[1:]) for s in figures.stores}


def test_figures_match_stock_reservations_and_transfers_and_the_tally_moves_on(pg_schema: PgSchema) -> None:
    store = writer(pg_schema.url)
    for command in [
        AddStock("main", "A", 10), AddStock("main", "B", 2), AddStock("east", "A", 1),
        DefineProduct("main", "B", name="Bolt", reorder_point=5),
        RemoveStock("main", "A", 1), ReserveStock("main", "A", 2, "ann", reservation_id="R1"),
        ReserveStock("main", "A", 1, "bob", reservation_id="R2", ttl_seconds=60),
        TransferStock("A", 3, "main", "north", transfer_id="T1"),
    ]:
        run_command(store, command, "tester")
    feed = open_feed(pg_schema.url, busy_timeout=5)
    try:
        for now in ("2000-01-01T00:00:00+00:00", "2999-01-01T00:00:00+00:00"):
            assert figures_as_dicts(feed, now) == expected_figures(store, now)
        assert feed.figures("2000-01-01T00:00:00+00:00").head_position == store.head_position()
        head = store.head_position()
        assert pg_schema.sql("SELECT DISTINCT through FROM event_counts") == [(head,)]
        add(store, "C", 4, "north")
        now = "2999-01-01T00:00:00+00:00"
        assert figures_as_dicts(feed, now) == expected_figures(store, now)
        assert pg_schema.sql("SELECT DISTINCT through FROM event_counts") == [(head + 1,)]
        assert sum(n for _, n in feed.figures(now).events_by_type) == head + 1
    finally:
        feed.close()
        store.close()


def test_a_schema_of_version_1_gets_the_feed_tables_when_opened(pg_schema: PgSchema) -> None:
    store = writer(pg_schema.url)
    add(store)
    store.close()
    pg_schema.sql(
        "DROP TRIGGER events_notify ON events; DROP FUNCTION inventory_notify_append();"
        " DROP TABLE consumers, event_counts, snapshots; DROP INDEX reservations_open_by_stream;"
        " UPDATE inventory_schema SET version = 1"
    )
    feed = open_feed(pg_schema.url, busy_timeout=5)
    try:
        assert pg_schema.sql("SELECT version FROM inventory_schema") == [(CURRENT_VERSION,)]
        assert feed.save_position("erp", 1, wait=True)
        assert [e.position for e in feed.read_after(0, 10)] == [1]
    finally:
        feed.close()


def test_a_follower_whose_connection_was_cut_connects_again_listens_and_goes_on(pg_url: str) -> None:
    store = writer(pg_url)
    add(store)
    feed = open_feed(pg_url, busy_timeout=10)
    try:
        assert [e.position for e in feed.read_after(0, 10)] == [1]
        pid, fd = feed.conn.info.backend_pid, feed.wakeup_fileno()
        with admin_connection() as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        add(store)
        assert readable(feed.wakeup_fileno(), HANG)  # the server's goodbye
        assert feed.may_have_changed()
        assert [e.position for e in feed.read_after(1, 10)] == [2]
        assert feed.conn.info.backend_pid != pid
        # The descriptor the relay polls is the same one, now on the new connection.
        assert feed.wakeup_fileno() == fd
        assert not readable(fd, 0)
        add(store)  # heard on the new connection
        assert readable(feed.wakeup_fileno(), HANG)
        assert feed.may_have_changed()
        assert [e.position for e in feed.read_after(2, 10)] == [3]
    finally:
        feed.close()
        store.close()
