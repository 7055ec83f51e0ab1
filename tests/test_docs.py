"""The docs are tested: every `$ inventory …` example of README.md and docs/*.md runs,
page by page in order on a fresh database, and prints what the page shows.

The conventions a page follows (`# exit N`, `$ cat FILE`, `<!-- doctest: skip -->`,
`run-only`, `sleep`, `env`, what is masked) are described in tests/doc_examples.py.
Simple commands run in-process through CliRunner; lines that need a shell (pipes,
`;` lists, `$(…)`) run with bash, with `inventory` on PATH as this checkout.

`INVENTORY_DOCS_UPDATE=1 python -m pytest tests/test_docs.py` writes what the
examples printed back into the pages (then read the diff before committing).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inventory_cli.cli.main import app
from tests import doc_examples as dx
from tests.conftest import NO_CONFIG_HOME, REPO_ROOT, _TOOL_ENV, _built_once, process_env

PAGES = ["README.md", *sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "docs").glob("*.md"))]
_ABSOLUTE_DB = re.compile(r"--db (/\S+)")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/$-])/[\w.-]+(?:/[\w.%$()+-]*)*")


def _outside(command: str, folder: Path) -> list[str]:
    """Absolute paths a command would touch outside the page's folder (a doc example
    must never write to the machine it is tested on)."""
    return [p for p in _ABSOLUTE_PATH.findall(command)
            if not p.startswith(str(folder)) and p not in ("/dev/null",)]


def _local_db(command: str, folder: Path) -> str:
    """An absolute `--db /x/y.db` of the page becomes `y.db` in the page's folder."""
    return _ABSOLUTE_DB.sub(lambda m: f"--db {folder / os.path.basename(m.group(1))}", command)


def _folded(example: dx.Example) -> list[str]:
    """The output shown, the page's folder read as `<folder>`."""
    if example.folder is None:
        return example.shown_output
    return [line.replace(example.folder, "<folder>") for line in example.shown_output]


class PageRun:
    """Runs the examples of one page in its own folder and database."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder = folder
        self.db = folder / "inventory.db"
        self.monkeypatch = monkeypatch
        self.renamed: dict[str, str] = {}  # generated ids and hashes: the page's -> this run's
        self.runner = CliRunner()
        shim = folder / ".bin"
        shim.mkdir()
        (shim / "inventory").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m inventory_cli "$@"\n')
        (shim / "inventory").chmod(0o755)
        self.path = f"{shim}{os.pathsep}{os.environ.get('PATH', '')}"

    def run(self, example: dx.Example) -> tuple[int, list[str]]:
        command = _local_db(example.command, self.folder)
        assert not _outside(command, self.folder), (
            f"line {example.line}: {command!r} names {_outside(command, self.folder)}, outside the "
            "test's folder; use a relative path or <!-- doctest: skip REASON -->")
        for shown, actual in self.renamed.items():
            command = command.replace(shown, actual)
        self._set_time_zone(example.env.get("TZ", "UTC"))
        simple = dx.simple_argv(command)
        if simple is not None:
            assignments, argv = simple
            env = {name: None for name in _TOOL_ENV}
            env["XDG_CONFIG_HOME"] = NO_CONFIG_HOME
            env.update(example.env, INVENTORY_DB=str(self.db), **assignments)
            with _built_once():
                result = self.runner.invoke(app, argv, env=env, prog_name="inventory")
            return result.exit_code, result.output.split("\n")
        done = self.shell(command, example.env, check=False)
        return done.returncode, done.stdout.split("\n")

    def shell(self, command: str, env: dict[str, str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """bash runs the command in the page's folder, `inventory` being this checkout."""
        env = process_env({**env, "INVENTORY_DB": str(self.db), "PATH": self.path})
        return subprocess.run(["bash", "-c", command], cwd=self.folder, env=env, text=True, check=check,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)

    def learn(self, expected: list[str], actual: list[str]) -> None:
        """Carry the generated ids and hashes this run printed in place of the page's."""
        shown, printed = dx.generated_values(expected), dx.generated_values(actual)
        if len(shown) == len(printed):
            self.renamed.update({s: p for s, p in zip(shown, printed) if s != p})

    def as_the_page_names(self, lines: list[str]) -> list[str]:
        """Output with this run's generated ids and hashes named as the page names them."""
        back = {actual: shown for shown, actual in self.renamed.items()}
        return [dx.GENERATED.sub(lambda m: back.get(m.group(0), m.group(0)), line) for line in lines]

    def _set_time_zone(self, zone: str) -> None:
        self.monkeypatch.setenv("TZ", zone)
        time.tzset()


@pytest.fixture
def restore_time_zone():
    yield
    time.tzset()  # monkeypatch has put TZ back by now


@pytest.mark.parametrize("page", PAGES)
def test_examples_of_the_page_print_what_it_shows(page, tmp_path, monkeypatch, restore_time_zone):
    path = REPO_ROOT / page
    text = path.read_text(encoding="utf-8")
    examples = dx.examples(text)
    monkeypatch.chdir(tmp_path)
    run = PageRun(tmp_path, monkeypatch)
    problems: list[str] = []
    outputs: dict[int, list[str]] = {}
    for example in examples:
        if example.sleep:
            time.sleep(example.sleep)
        for command in example.setup:
            run.shell(command, example.env)
        if example.mode == "file":
            target = tmp_path / example.command
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("\n".join(example.expected) + "\n", encoding="utf-8")
            target.chmod(0o755)
            continue
        shown = None if example.mode == "every-line" else dx.file_shown(example.command)
        if shown is not None:
            target = tmp_path / shown[0]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(dx.file_content(example.shown_output, shown[1]), encoding="utf-8")
            continue
        if example.mode == "every-line" and not example.command.startswith("export INVENTORY_DB="):
            command = _local_db(example.command, tmp_path)
            assert not _outside(command, tmp_path), f"{page}:{example.line}: {command!r} leaves the test's folder"
            done = run.shell(command, example.env, check=False)
            code, output = done.returncode, done.stdout.split("\n")
        elif not dx.calls_inventory(example.command):
            continue
        else:
            code, output = run.run(example)
        actual = [line.rstrip().replace(str(tmp_path), "<folder>") for line in output]
        while actual and not actual[-1]:
            actual.pop()
        run.learn(example.shown_output, actual)
        where = f"{page}:{example.line}: $ {example.command}"
        if code != example.exit_code:
            problems.append(f"{where}\n  exit {code}, the page says {example.exit_code}\n  "
                            + "\n  ".join(actual))
        elif example.mode in ("check", "every-line") and not dx.same_output(actual, _folded(example)):
            outputs[example.line] = [line.replace("<folder>", example.folder or "<folder>")
                                     for line in run.as_the_page_names(actual)]
            problems.append(f"{where}\n  printed:\n    " + "\n    ".join(actual)
                            + "\n  the page shows:\n    " + "\n    ".join(example.shown_output))
    if os.environ.get("INVENTORY_DOCS_UPDATE") == "1":
        path.write_text(dx.rewrite(text, outputs, examples), encoding="utf-8")
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
