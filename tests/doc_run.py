"""Running the examples of one page (tests/test_docs.py): in its own folder, on a fresh
database, each example in the way its directives say (tests/doc_examples.py).

Simple commands run in-process through CliRunner; lines that need a shell (pipes,
`;` lists, `$(…)`) run with bash, with `inventory` on PATH as this checkout.
Examples marked `terminal` run on a pseudo-terminal (tests/terminal.py), `follow`
ones as real processes stopped by a signal (tests/doc_follow.py), and the pages'
PostgreSQL URLs name schemas of the test server (tests/pg_fixtures.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inventory_cli.cli.main import app
from terminal import Terminal
from tests import doc_examples as dx
from tests.conftest import NO_CONFIG_HOME, REPO_ROOT, RETAIL_DATA, _TOOL_ENV, _built_once, process_env
from tests.doc_follow import follow
from tests.pg_fixtures import fresh_schema

_ABSOLUTE_DB = re.compile(r"--db (/\S+)")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/$-])/[\w.-]+(?:/[\w.%$()+-]*)*")
_PG_URL = re.compile(r"postgres(?:ql)?://[^\s'\"]+")


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

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch, schemas: contextlib.ExitStack) -> None:
        self.folder = folder
        self.db: Path | str = folder / "inventory.db"  # the database in force (INVENTORY_DB)
        self.monkeypatch = monkeypatch
        self.renamed: dict[str, str] = {}  # generated ids and hashes: the page's -> this run's
        self.runner = CliRunner()
        self.schemas, self.urls = schemas, {}  # the page's schema number -> its test URL
        self.page_url = ""  # the URL the page's `export INVENTORY_DB=` names
        shim = folder / ".bin"
        shim.mkdir()
        for name, target in (("inventory", f'"{sys.executable}" -m inventory_cli'), ("python3", f'"{sys.executable}"')):
            (shim / name).write_text(f'#!/bin/sh\nexec {target} "$@"\n')
            (shim / name).chmod(0o755)
        self.path = f"{shim}{os.pathsep}{os.environ.get('PATH', '')}"

    def command(self, example: dx.Example) -> str:
        """The example's command as it runs here: paths in the folder, this run's ids, the test's URLs."""
        command = self._on_test_server(example, _local_db(example.command, self.folder))
        assert not _outside(command, self.folder), (
            f"line {example.line}: {command!r} names {_outside(command, self.folder)}, outside the "
            "test's folder; use a relative path or <!-- doctest: skip REASON -->")
        for shown, actual in self.renamed.items():
            command = command.replace(shown, actual)
        self._set_time_zone(example.env.get("TZ", "UTC"))
        return command

    def run(self, example: dx.Example) -> tuple[int, list[str]]:
        command = self.command(example)
        simple = dx.simple_argv(command)
        if simple is not None:
            assignments, argv = simple
            env = {name: None for name in _TOOL_ENV}
            env["XDG_CONFIG_HOME"] = NO_CONFIG_HOME
            env.update(example.env, INVENTORY_DB=str(self.db), **assignments)
            with _built_once():
                result = self.runner.invoke(app, argv, env=env, prog_name="inventory")
            return result.exit_code, self._as_page_shows(example, result.output.split("\n"))
        done = self.shell(command, example.env, check=False)
        return done.returncode, self._as_page_shows(example, done.stdout.split("\n"))

    def on_terminal(self, example: dx.Example) -> tuple[int, list[str]]:
        """On a pseudo-terminal as wide as the page says, the pager off."""
        simple = dx.simple_argv(self.command(example))
        assert simple is not None, f"line {example.line}: a terminal example must be one `inventory …` command"
        assignments, argv = simple
        env = {**example.env, "INVENTORY_DB": str(self.db), "INVENTORY_PAGER": "cat", **assignments}
        with Terminal(self.db, *argv, rows=50, columns=example.columns, env=env) as terminal:
            shown = terminal.finish()
        return shown.exit_code, self._as_page_shows(example, shown.text.split("\n"))

    def follow(self, example: dx.Example) -> tuple[int | None, list[str], list[str]]:
        """A follower, stopped as the page shows; (exit code, output, what went wrong)."""
        def run_elsewhere(command: str) -> str | None:
            done = self.shell(self.command(dx.Example(example.line, command, [], env=example.env,
                                                      schema=example.schema)), example.env, check=False)
            return None if done.returncode == 0 else f"exit {done.returncode}: {done.stdout.strip()}"

        followed = follow(self.command(example), cwd=str(self.folder), env=self._shell_env(example.env),
                          steps=dx.follow_steps(example), run_elsewhere=run_elsewhere)
        return followed.exit_code, self._as_page_shows(example, followed.lines), followed.trouble

    def shell(self, command: str, env: dict[str, str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """bash runs the command in the page's folder, `inventory` (and `python3`) being this
        checkout's; $DOCS_REPO is the checkout, $DOCS_RETAIL the folder of the retail data."""
        if "$DOCS_RETAIL" in command and not (RETAIL_DATA / "online_retail_non_uk.csv").exists():
            pytest.skip(f"{RETAIL_DATA} (the retail data the page uses) is not on this machine")
        return subprocess.run(["bash", "-c", command], cwd=self.folder, env=self._shell_env(env), text=True,
                              check=check, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)

    def _shell_env(self, env: dict[str, str]) -> dict[str, str]:
        return process_env({**env, "INVENTORY_DB": str(self.db), "PATH": self.path,
                            "DOCS_REPO": str(REPO_ROOT), "DOCS_RETAIL": str(RETAIL_DATA)})

    def use_exported(self, example: dx.Example) -> None:
        """`export INVENTORY_DB=postgresql://…` under a `postgresql` directive: the test's
        schema is the database in force from here on."""
        url = _PG_URL.search(example.command)
        if example.schema and url:
            self.page_url, self.db = url.group(0), self._schema_url(example.schema)

    def _on_test_server(self, example: dx.Example, command: str) -> str:
        if not example.schema:
            return command
        if isinstance(self.db, str):  # the database in force follows the page's latest schema
            self.db = self._schema_url(example.schema)
        return _PG_URL.sub(lambda _: self._schema_url(example.schema), command)

    def _schema_url(self, number: int) -> str:
        if number not in self.urls:
            self.urls[number] = self.schemas.enter_context(fresh_schema()).url
        return self.urls[number]

    def _as_page_shows(self, example: dx.Example, lines: list[str]) -> list[str]:
        """Output naming the test's schema as the page names its server."""
        page_url = next(iter(_PG_URL.findall(example.command)), self.page_url)
        for url in self.urls.values():
            lines = [line.replace(url, page_url) for line in lines]
        return lines

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


def run_page(page: str, text: str, run: PageRun) -> tuple[list[str], dict[int, list[str]]]:
    """Run the examples of a page in order: what differs from the page, and the output of
    each example that differs (by the line of its `$`), to write back into the page."""
    problems: list[str] = []
    outputs: dict[int, list[str]] = {}
    for example in dx.examples(text):
        if example.sleep:
            time.sleep(example.sleep)
        for command in example.setup:
            run.shell(command, example.env)
        ran = _run_example(page, example, run)
        if ran is None:
            continue
        code, output, trouble = ran
        actual = [line.rstrip().replace(str(run.folder), "<folder>") for line in output]
        while actual and not actual[-1]:
            actual.pop()
        run.learn(example.shown_output, actual)
        where = f"{page}:{example.line}: $ {example.command}"
        if trouble:
            problems.append(f"{where}\n  " + "; ".join(trouble) + "; it printed:\n    " + "\n    ".join(actual))
        elif code != example.exit_code:
            problems.append(f"{where}\n  exit {code}, the page says {example.exit_code}\n  "
                            + "\n  ".join(actual))
        elif example.mode != "run-only" and not dx.same_output(actual, _folded(example)):
            if example.mode != "follow":
                outputs[example.line] = [line.replace("<folder>", example.folder or "<folder>")
                                         for line in run.as_the_page_names(actual)]
            problems.append(f"{where}\n  printed:\n    " + "\n    ".join(actual)
                            + "\n  the page shows:\n    " + "\n    ".join(example.shown_output))
    return problems, outputs


def _run_example(page: str, example: dx.Example, run: PageRun) -> tuple[int | None, list[str], list[str]] | None:
    """(exit code, output, what went wrong) of an example that runs; None for one that
    does not (a file written, a command that is not the tool's)."""
    if example.mode == "file":
        _write(run.folder / example.command, "\n".join(example.expected) + "\n")
        (run.folder / example.command).chmod(0o755)
        return None
    shown = None if example.mode == "every-line" else dx.file_shown(example.command)
    if shown is not None:
        _write(run.folder / shown[0], dx.file_content(example.shown_output, shown[1]))
        return None
    if example.command.startswith("export INVENTORY_DB="):
        run.use_exported(example)
        return None
    if example.mode == "every-line":
        command = _local_db(example.command, run.folder)
        assert not _outside(command, run.folder), f"{page}:{example.line}: {command!r} leaves the test's folder"
        done = run.shell(command, example.env, check=False)
        return done.returncode, done.stdout.split("\n"), []
    if not dx.calls_inventory(example.command):
        return None
    if example.mode == "terminal":
        return (*run.on_terminal(example), [])
    if example.mode == "follow":
        return run.follow(example)
    return (*run.run(example), [])


def _write(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
