"""docs/feed.md's relay into NATS JetStream, run as the page writes it, against the local server.

The page's three scripts (the stream, the relay, the wrapper that systemd or cron
starts) are taken from the page; only the names change: a stream and a subject
prefix of this test's own, deleted afterwards. The wrapper runs twice, stopped
each time as `systemctl stop` stops it (SIGTERM to every process of the group);
the second run starts before the saved position, as after any restart, so it
publishes the first run's events again. The stream must keep each position once,
thanks to Nats-Msg-Id, while a plain subscriber sees every publish.

The server is part of the test environment (.ci/run starts it): without it this
test fails, it never skips.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import nats
import pytest

from conftest import REPO_ROOT, process_env, run_inventory
from inventory_cli.application.commands import AddStock, RemoveStock
from inventory_cli.application.handlers import run_command
from inventory_cli.storage.sqlite import open_store

NATS_SERVER = os.environ.get("INVENTORY_TEST_NATS", "nats://127.0.0.1:4222")
PAGE = REPO_ROOT / "docs" / "feed.md"
DEADLINE = 60.0  # seconds: only a bound against a hung test, never a measure
ODD_STORE = "north 2.b*"  # a store code with characters a subject reserves


def page_block(marker: str) -> str:
    """The fenced code block of docs/feed.md that holds ``marker``."""
    blocks = [b for b in re.findall(r"^```[a-z]*\n(.*?)^```", PAGE.read_text(), re.S | re.M) if marker in b]
    assert len(blocks) == 1, f"docs/feed.md should have one code block with {marker!r}"
    return blocks[0]


def replaced(text: str, old: str, new: str) -> str:
    assert old in text, f"docs/feed.md's script no longer holds {old!r}: update this test"
    return text.replace(old, new)


class Scripts:
    """The page's relay and wrapper installed in a folder, beside an `inventory` that runs
    this checkout; the wrapper is pointed at both by its variables."""

    def __init__(self, folder: Path, db: Path, prefix: str) -> None:
        folder.mkdir()
        relay = page_block("# /usr/local/bin/inventory-nats-relay")
        (folder / "inventory-nats-relay").write_text(
            replaced(relay, "#!/opt/inventory-nats/bin/python\n", f"#!{sys.executable}\n"))
        (folder / "inventory").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m inventory_cli "$@"\n')
        self.wrapper = folder / "inventory-to-nats"
        self.wrapper.write_text(page_block("# /usr/local/bin/inventory-to-nats"))
        for script in folder.iterdir():
            script.chmod(0o755)
        self.db = db
        self.env = process_env({
            "INVENTORY": str(folder / "inventory"),
            "INVENTORY_NATS_RELAY": str(folder / "inventory-nats-relay"),
            "INVENTORY_DB": str(db),
            "NATS_URL": NATS_SERVER,
            "INVENTORY_NATS_PREFIX": prefix,
        })

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(["/bin/sh", str(self.wrapper)], env=self.env, cwd=self.db.parent,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)


async def connect():
    try:
        return await nats.connect(NATS_SERVER, connect_timeout=5, max_reconnect_attempts=0)
    except Exception as error:  # noqa: BLE001 (whatever the client raises, say what to do)
        pytest.fail(
            f"The test NATS server at {NATS_SERVER} does not answer ({error!r}). Start it: "
            "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- "
            "-a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log"
        )


async def until(condition: Callable[[], object], what: str) -> None:
    """Wait until ``condition()`` (or what it awaits to) is true."""
    deadline = time.monotonic() + DEADLINE
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.05)


async def stop(wrapper: subprocess.Popen[str]) -> str:
    """SIGTERM to the wrapper's whole process group, as systemd sends it; its stderr."""
    os.killpg(wrapper.pid, signal.SIGTERM)
    _, err = await asyncio.get_running_loop().run_in_executor(None, lambda: wrapper.communicate(timeout=DEADLINE))
    return err


def test_the_pages_relay_stores_each_position_once_in_jetstream_across_a_redelivery(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:10]
    stream, prefix = f"INVENTORY_T{tag.upper()}", f"inventory_t{tag}"
    db = tmp_path / "shop.db"
    scripts = Scripts(tmp_path / "bin", db, prefix)
    store = open_store(str(db), create=True)
    for command in (AddStock("main", "TEA-250", 24), AddStock(ODD_STORE, "MUG", 2), RemoveStock("main", "TEA-250", 1)):
        run_command(store, command, "tester")

    async def scenario() -> tuple[list[tuple[str, int]], list]:
        nc = await connect()
        js = nc.jetstream()
        # The page's stream, under this test's names.
        source = page_block("StreamConfig(")
        snippet = source[source.index("<<'EOF'\n") + len("<<'EOF'\n"):source.rindex("EOF")]
        snippet = replaced(snippet, 'name="INVENTORY"', f'name="{stream}"')
        snippet = replaced(snippet, '"inventory.>"', f'"{prefix}.>"')
        snippet = replaced(snippet, '"nats://127.0.0.1:4222"', repr(NATS_SERVER))
        made = subprocess.run([sys.executable, "-"], input=snippet, capture_output=True, text=True, timeout=DEADLINE)
        assert made.returncode == 0, made.stderr
        try:
            assert (await js.stream_info(stream)).config.duplicate_window == 2 * 3600
            published: list[tuple[str, int]] = []  # every publish, duplicates too: (Nats-Msg-Id, position)

            async def note(msg) -> None:
                published.append((msg.headers["Nats-Msg-Id"], json.loads(msg.data)["position"]))

            await nc.subscribe(f"{prefix}.>", cb=note)

            async def stored() -> int:
                return (await js.stream_info(stream)).state.messages

            async def stored_is(count: int) -> bool:
                return await stored() == count

            async def stored_at_least(count: int) -> bool:
                return await stored() >= count

            # Run 1: the backlog, then an event that commits while it runs.
            first = scripts.start()
            await until(lambda: stored_is(3), "the backlog in the stream")
            run_command(store, AddStock("main", "TEA-250", 6), "tester")
            await until(lambda: stored_is(4), "the live event in the stream")
            assert await stop(first) == ""
            # Run 2 starts 500 before the saved position (4): it gives 1-4 again, then 5.
            second = scripts.start()
            await until(lambda: len(published) == 8, "the redelivery of 1-4")
            run_command(store, AddStock(ODD_STORE, "MUG", 1), "tester")
            await until(lambda: len(published) == 9, "the live event of run 2")
            await until(lambda: stored_at_least(5), "the live event of run 2 in the stream")
            assert await stop(second) == ""
            await nc.flush()
            kept = [await js.get_msg(stream, seq) for seq in range(1, await stored() + 1)]
            return published, kept
        finally:
            await js.delete_stream(stream)
            await nc.close()

    try:
        published, kept = asyncio.run(scenario())
    finally:
        store.close()
    lines = run_inventory(db, "export").stdout.splitlines()
    assert [message.data.decode() for message in kept] == lines
    assert [message.headers["Nats-Msg-Id"] for message in kept] == ["1", "2", "3", "4", "5"]
    # Each run published every line it was given (run 2 from the start again): the stream
    # dropped the second copies.
    assert published == [(str(p), p) for p in (1, 2, 3, 4, 1, 2, 3, 4, 5)]
    odd = f"{prefix}.north%202%2Eb%2A"
    assert [message.subject for message in kept] == [
        f"{prefix}.main.StockAdded", f"{odd}.StockAdded", f"{prefix}.main.StockRemoved",
        f"{prefix}.main.StockAdded", f"{odd}.StockAdded",
    ]
    assert json.loads(run_inventory(db, "consumers", "--json").stdout) == [
        {"consumer": "nats", "position": 5, "lag": 0}
    ]

