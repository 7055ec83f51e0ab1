"""Run the real tool on a pseudo-terminal, as a person at a terminal would see it.

typer's CliRunner and pipes are not terminals, so the paths the tool takes only on a
terminal (rich tables, the import's progress bar, later the pager and Ctrl-C) need a
real one. ``Terminal`` starts ``inventory`` with stdin, stdout and stderr on the slave
side of a pty of a fixed size, the pty as its controlling terminal (so that a
``send("\\x03")`` is a Ctrl-C), and reads everything it draws from the master side.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import NamedTuple

from conftest import _existing_folder, inventory_argv, process_env

# CSI sequences (colours, cursor moves, erase), OSC sequences (titles, links), and the
# two-character escapes; what remains is the text a person reads.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


class Shown(NamedTuple):
    """What a run drew on the terminal (stdout and stderr interleaved, as on screen)."""

    raw: str  # with escape sequences and carriage returns
    exit_code: int

    @property
    def text(self) -> str:
        """The text without escape sequences, line ends as ``\\n``."""
        return strip_ansi(self.raw).replace("\r\n", "\n")


def _take_terminal() -> None:  # runs in the child between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """One ``inventory`` process on a ``rows`` x ``columns`` pseudo-terminal.

    ``with Terminal(db, "stock") as term: shown = term.finish()``; in between,
    ``send`` types keys and ``read_until`` waits for something to appear.
    """

    def __init__(self, db: Path | str, *args: str, rows: int = 40, columns: int = 120,
                 env: dict[str, str] | None = None) -> None:
        extra = {"TERM": "xterm-256color", **(env or {})}
        full_env = process_env(extra)
        for name in ("NO_COLOR", "COLUMNS", "LINES"):  # the terminal's own size and colours
            if name not in extra:
                full_env.pop(name, None)
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        try:
            self.process = subprocess.Popen(
                inventory_argv(db, *args), env=full_env, cwd=_existing_folder(db),
                stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                start_new_session=True, preexec_fn=_take_terminal,
            )
        except BaseException:
            os.close(self.master)
            raise
        finally:
            os.close(slave)  # the child holds it now; EOF comes when the child is gone
        self._received = bytearray()
        self._eof = False

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        os.close(self.master)

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def _read(self, deadline: float) -> bool:
        """Read what is there (waiting until ``deadline``); False at EOF or deadline."""
        remaining = deadline - time.monotonic()
        if self._eof or remaining <= 0:
            return False
        ready, _, _ = select.select([self.master], [], [], remaining)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError as error:  # Linux: EIO once the slave side is closed by everyone
            if error.errno != errno.EIO:
                raise
            chunk = b""
        if not chunk:
            self._eof = True
            return False
        self._received += chunk
        return True

    @property
    def raw(self) -> str:
        return self._received.decode("utf-8", errors="replace")

    def read_until(self, pattern: str, timeout: float = 60) -> str:
        """Wait until ``pattern`` (a regex) appears in the text drawn so far; return that text."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, strip_ansi(self.raw)):
            if not self._read(deadline):
                raise AssertionError(f"{pattern!r} never appeared; the terminal shows:\n{self.raw}")
        return strip_ansi(self.raw)

    def finish(self, timeout: float = 120) -> Shown:
        """Read until the process closes the terminal, then wait for its exit code."""
        deadline = time.monotonic() + timeout
        while self._read(deadline):
            pass
        if not self._eof:
            raise AssertionError(f"still running after {timeout} s; the terminal shows:\n{self.raw}")
        return Shown(self.raw, self.process.wait(timeout=timeout))


def on_terminal(db: Path | str, *args: str, rows: int = 40, columns: int = 120,
                env: dict[str, str] | None = None) -> Shown:
    """Run ``inventory --db DB ARGS`` on a pseudo-terminal to the end; what it drew."""
    with Terminal(db, *args, rows=rows, columns=columns, env=env) as term:
        return term.finish()
