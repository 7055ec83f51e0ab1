"""The docs are tested: every `$ inventory …` example of README.md and docs/*.md runs,
page by page in order on a fresh database, and prints what the page shows.

The conventions a page follows (`# exit N`, `$ cat FILE`, `<!-- doctest: skip -->`,
`run-only`, `terminal`, `follow`, `postgresql`, `sleep`, `env`, `…`, what is masked)
are described in tests/doc_examples.py; tests/doc_run.py runs a page.

`INVENTORY_DOCS_UPDATE=1 python -m pytest tests/test_docs.py` writes what the
examples printed back into the pages (then read the diff before committing; a
`…` the page shows is written out in full, and follow examples are left as they are).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from tests import doc_examples as dx
from tests import doc_follow
from tests.conftest import REPO_ROOT
from tests.doc_run import PageRun, _outside, run_page

PAGES = ["README.md", *sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "docs").glob("*.md"))]


@pytest.fixture
def restore_time_zone():
    yield
    time.tzset()  # monkeypatch has put TZ back by now


@pytest.fixture
def page_run(tmp_path, monkeypatch, restore_time_zone):
    """A page's run in tmp_path (the working folder), its PostgreSQL schemas dropped after."""
    monkeypatch.chdir(tmp_path)
    with contextlib.ExitStack() as schemas:
        yield PageRun(tmp_path, monkeypatch, schemas)


@pytest.mark.parametrize("page", PAGES)
def test_examples_of_the_page_print_what_it_shows(page, page_run):
    path = REPO_ROOT / page
    text = path.read_text(encoding="utf-8")
    problems, outputs = run_page(page, text, page_run)
    if os.environ.get("INVENTORY_DOCS_UPDATE") == "1":
        path.write_text(dx.rewrite(text, outputs, dx.examples(text)), encoding="utf-8")
    assert not problems, f"{len(problems)} example(s) differ:\n\n" + "\n\n".join(problems)


def test_examples_that_would_touch_the_machine_outside_their_folder_are_caught(tmp_path):
    assert _outside('inventory backup "/srv/backups/shop-$(date +%F).db" --json', tmp_path)
    assert _outside("inventory backup /mnt/usb/shop.db", tmp_path) == ["/mnt/usb/shop.db"]
    assert _outside(f"inventory --db {tmp_path}/x.db stock | jq -c '.[] | {{product}}' > /dev/null", tmp_path) == []
    assert _outside("inventory import - --format csv", tmp_path) == []


def test_masks_hide_what_changes_from_run_to_run_only():
    shown = ['{"updated_at": "2026-11-27T21:57:56.252237+00:00", "id": "R-BF71FCCB", "seconds": 0.017}']
    printed = ['{"updated_at": "2026-12-05T04:40:01.000001+00:00", "id": "R-0A1B2C3D", "seconds": 0.2}']
    assert dx.mask(shown) == dx.mask(printed)
    assert dx.mask(["Now 40 on hand"]) != dx.mask(["Now 41 on hand"])


def test_conventions_are_read_from_the_page():
    page = "\n".join([
        "<!-- doctest: env INVENTORY_USER=anna -->",
        "```", "$ inventory add X 1.5    # exit 2", "inventory: bad", "", "$ cat a.csv", "op", "```",
        "<!-- doctest: skip -->", "```", "$ inventory stock", "```",
        "<!-- doctest: run-only -->", "```", "$ inventory stock | head -1", "x", "```",
    ])
    found = dx.examples(page)
    assert [(e.line, e.exit_code, e.mode) for e in found] == [(3, 2, "check"), (6, 0, "check"), (15, 0, "run-only")]
    assert found[0].expected == ["inventory: bad"] and found[0].env == {"INVENTORY_USER": "anna"}
    assert dx.file_shown(found[1].command) == ("a.csv", False)
    assert dx.simple_argv("A=1 inventory add X 2 # note") == ({"A": "1"}, ["add", "X", "2"])
    assert dx.simple_argv(found[2].command) is None


def test_a_line_of_three_dots_stands_for_any_lines_none_included():
    shown = ["title", "…", "row 7", "row 8", "…"]
    assert dx.same_output(["title", "row 7", "row 8"], shown)
    assert dx.same_output(["title", "row 1", "row 7", "row 8", "row 9", "row 10"], shown)
    assert not dx.same_output(["title", "row 1", "row 8", "row 7"], shown)
    assert not dx.same_output(["heading", "row 7", "row 8"], shown)
    assert not dx.same_output(["title", "row 1"], ["title"])  # without `…` every line counts


def test_terminal_follow_and_postgresql_directives_are_read_from_the_page():
    page = "\n".join([
        "<!-- doctest: terminal 80 -->", "```", "$ inventory stock", "x", "```",
        "<!-- doctest: postgresql -->", "<!-- doctest: follow -->", "```",
        "$ inventory export --follow", "line 1", "   (a till runs `inventory remove X 1 --id t-1`)",
        "line 2", "^C       # exit 0", "```",
        "<!-- doctest: postgresql -->", "```", "$ inventory stock", "```",
    ])
    terminal, followed, fresh = dx.examples(page)
    assert (terminal.mode, terminal.columns, terminal.schema) == ("terminal", 80, 0)
    assert (followed.mode, followed.schema, fresh.schema) == ("follow", 1, 2)
    assert followed.shown_output == ["line 1", "line 2"] and followed.exit_code == 0
    steps = dx.follow_steps(followed)
    assert [(s.shown, s.command, s.stop) for s in steps] == [
        (["line 1"], "inventory remove X 1 --id t-1", None), (["line 1", "line 2"], None, "SIGINT")]
    without_ctrl_c = dx.examples("<!-- doctest: follow -->\n```\n$ inventory export --follow\nline 1\n```")[0]
    assert [s.stop for s in dx.follow_steps(without_ctrl_c)] == ["SIGTERM"]


def _processes_naming(token: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if token in cmdline.read_bytes().decode(errors="replace"):
                found.append(cmdline.parent.name)
    return found


FOLLOWED = """<!-- doctest: env INVENTORY_USER=anna -->
<!-- doctest: shell inventory add TEA-250 24 -->
<!-- doctest: follow -->
```
$ inventory export --follow --consumer {consumer}
{{"position": 1, "version": 1, "type": "StockAdded", "store": "main", "product": "TEA-250", "quantity": 24, "occurred_at": "2026-12-05T04:23:51.996369+00:00", "recorded_at": "2026-12-05T04:23:51.996369+00:00", "reason": "received", "customer": null, "reservation_id": null, "actor": "anna", "idempotency_key": null, "data": "{{\\"reason\\":\\"received\\"}}", "hash": "855d66b0da2b4e18015db71a0a27b94897e9dc81f8f653ccb903071ef86a183d"}}
                  (a till runs `inventory remove TEA-250 {sold} --id till-3-17`)
{{"position": 2, "version": 2, "type": "StockRemoved", "store": "main", "product": "TEA-250", "quantity": 1, "occurred_at": "2026-12-05T04:23:55.781103+00:00", "recorded_at": "2026-12-05T04:23:55.781103+00:00", "reason": "sold", "customer": null, "reservation_id": null, "actor": "anna", "idempotency_key": "till-3-17", "data": "{{\\"reason\\":\\"sold\\"}}", "hash": "fe1104d5bf88fb68c3902bbac0d3d466ed369c67c0e5e51b608b55518d66f3a1"}}
^C                # exit {code}
```
"""


def test_a_follower_runs_the_page_s_command_between_its_lines_and_ends_at_ctrl_c(page_run):
    consumer = f"doc-{uuid.uuid4().hex[:8]}"
    problems, _ = run_page("follow.md", FOLLOWED.format(consumer=consumer, sold=1, code=0), page_run)
    assert not problems, "\n".join(problems)
    (page_run.folder / "again").mkdir()
    again = PageRun(page_run.folder / "again", page_run.monkeypatch, page_run.schemas)
    [problem] = run_page("follow.md", FOLLOWED.format(consumer=consumer, sold=1, code=3), again)[0]
    assert "exit 0, the page says 3" in problem
    (page_run.folder / "stopped").mkdir()
    stopped = PageRun(page_run.folder / "stopped", page_run.monkeypatch, page_run.schemas)
    without_ctrl_c = re.sub(r"\n\^C.*", "", FOLLOWED.format(consumer=consumer, sold=1, code=0))
    problems, _ = run_page("follow.md", without_ctrl_c, stopped)  # SIGTERM, as systemd stops it
    assert not problems, "\n".join(problems)
    assert not _processes_naming(consumer)


def test_a_follower_that_does_not_print_the_page_s_lines_fails_in_time_and_is_ended(page_run, monkeypatch):
    monkeypatch.setattr(doc_follow, "DEADLINE", 3.0)
    consumer = f"doc-{uuid.uuid4().hex[:8]}"
    [problem] = run_page("follow.md", FOLLOWED.format(consumer=consumer, sold=2, code=0), page_run)[0]
    assert "did not all appear within 3 s" in problem and '"quantity": 2' in problem
    assert not _processes_naming(consumer)


def test_terminal_examples_run_on_a_terminal_of_the_page_s_width(page_run):
    page = "```\n$ inventory add X 1\nAdded 1 × X (received). Now 1 on hand, 0 reserved, 1 available in store main.\n```\n" \
           "<!-- doctest: terminal 60 -->\n```\n$ inventory stock\n```\n"
    [problem] = run_page("terminal.md", page, page_run)[0]
    assert "store  product  name  on hand  reserved  available  incoming\n    " + "─" * 60 in problem


SERVER_PAGE = """<!-- doctest: postgresql -->
```
$ export INVENTORY_DB='postgresql://clerk@db.chain.example:5432/inventory'
$ inventory add SKU-1 5 --store north --json | jq -c '{store, on_hand}'
{"store":"north","on_hand":5}

$ inventory --db 'postgres://reader@db.chain.example/inventory?sslmode=verify-full' stock SKU-10 --store north
inventory: no product SKU-10 in store north; did you mean SKU-1?
No stock of SKU-10 recorded yet in store north.
```

<!-- doctest: postgresql -->
```
$ inventory --db postgresql://owner@db.chain.example/inventory stock --all-stores --json
[]
```
"""


def test_the_page_s_server_urls_name_fresh_schemas_of_the_test_server(page_run):
    problems, _ = run_page("server.md", SERVER_PAGE, page_run)
    assert not problems, "\n".join(problems)
    assert not (page_run.folder / "inventory.db").exists()
    first, second = page_run.urls[1], page_run.urls[2]
    with psycopg.connect(first) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)
    assert first != second
