"""A pager for output longer than the screen, the way git does it.

Only when stdout is a terminal: what a query writes is held back until it is longer
than the screen; then the pager starts and gets it all, and the rest as it comes.
Shorter output goes straight to the terminal when the query ends. The pager is
INVENTORY_PAGER, else PAGER, else `less -FRX`; `cat` or an empty value means none.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO


def pager_command() -> str | None:
    """The pager to run, or None when it is turned off."""
    for name in ("INVENTORY_PAGER", "PAGER"):
        if name in os.environ:
            command = os.environ[name].strip()
            return None if command in ("", "cat") else command
    return "less -FRX"


@contextmanager
def paging(enabled: bool) -> Iterator[None]:
    """Within this block, stdout goes through the pager once it outgrows the screen."""
    command = pager_command() if enabled else None
    if command is None or not sys.stdout.isatty():
        yield
        return
    terminal = sys.stdout
    screen = _PagedOutput(terminal, command, shutil.get_terminal_size())
    sys.stdout = screen  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout = terminal
        screen.close()


class _PagedOutput:
    """A text stream for sys.stdout: the terminal until a screenful, then the pager."""

    def __init__(self, terminal: IO[str], command: str, size: os.terminal_size) -> None:
        self.terminal = terminal
        self.command = command
        self.columns = max(size.columns, 1)
        self.room = max(size.lines - 1, 1)  # rows left on the screen; the last is the prompt's
        self.partial = ""  # the line being written
        self.held: list[str] = []
        self.pager: subprocess.Popen[str] | None = None

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.terminal.fileno()

    @property
    def encoding(self) -> str:
        return self.terminal.encoding

    def write(self, text: str) -> int:
        if self.pager is not None:
            return self.pager.stdin.write(text)  # type: ignore[union-attr]
        self.held.append(text)
        *ended, self.partial = (self.partial + text).split("\n")
        # A line longer than the screen is wide takes several rows of it.
        self.room -= sum(1 + max(len(line) - 1, 0) // self.columns for line in ended)
        if self.room < 0 or len(self.partial) > self.columns * (self.room + 1):
            self._start_pager()
        return len(text)

    def flush(self) -> None:
        if self.pager is not None:
            self.pager.stdin.flush()  # type: ignore[union-attr]

    def _start_pager(self) -> None:
        self.terminal.flush()
        env = dict(os.environ)
        env.setdefault("LESS", "FRX")  # as git does: colours through, quit if one screen
        env.setdefault("LV", "-c")
        self.pager = subprocess.Popen(
            self.command, shell=True, stdin=subprocess.PIPE, env=env, text=True,
            encoding=self.terminal.encoding, errors="replace",
        )
        held, self.held = "".join(self.held), []
        self.pager.stdin.write(held)  # type: ignore[union-attr]

    def close(self) -> None:
        """Hand over what is held, and wait for the pager (the person may still be reading)."""
        if self.pager is None:
            self.terminal.write("".join(self.held))
            return
        try:
            self.pager.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:  # the person quit the pager before the end
            pass
        while True:
            try:
                self.pager.wait()
                return
            except KeyboardInterrupt:  # Ctrl-C reaches the pager too; it decides when to end
                continue
