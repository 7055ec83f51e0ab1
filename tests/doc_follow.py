"""A doc example that runs until it is stopped (`inventory export --follow`), run for real.

The command runs as a process in a session of its own (as a terminal's foreground
job), stdout and stderr on one pipe. At each step of the page's output the lines
shown so far must have appeared within the deadline; then the step's command runs
(another process, the page's "a till runs …"), or the follower gets SIGINT (the
page's `^C`) or SIGTERM (no `^C` shown). Whatever happens, the process is gone
when `follow` returns.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests import doc_examples as dx

DEADLINE = 30.0  # seconds for the lines of a step to appear, and for the exit after a signal


@dataclass
class Followed:
    exit_code: int | None  # None: it had to be killed
    lines: list[str]
    trouble: list[str] = field(default_factory=list)  # what went wrong, for the report


def _default_sigint() -> None:  # in the child: Ctrl-C acts even if the test runner ignores it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class _Output:
    """The process's output so far, read without blocking past a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd, self.text, self.closed = fd, b"", False

    @property
    def lines(self) -> list[str]:
        lines = self.text.decode("utf-8", errors="replace").split("\n")
        return lines[:-1] if lines[-1] == "" else lines

    def read(self, until: float) -> bool:
        """Read what comes before ``until``; False at end of output or at the deadline."""
        remaining = until - time.monotonic()
        if self.closed or remaining <= 0:
            return False
        ready, _, _ = select.select([self.fd], [], [], remaining)
        if not ready:
            return False
        chunk = os.read(self.fd, 65536)
        self.text += chunk
        self.closed = not chunk
        return bool(chunk)


def follow(command: str, *, cwd: str, env: dict[str, str], steps: list[dx.FollowStep],
           run_elsewhere: Callable[[str], str | None]) -> Followed:
    """Run ``command`` with bash through ``steps``; ``run_elsewhere(command)`` runs a step's
    command and returns what went wrong, if anything."""
    process = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_default_sigint)
    output = _Output(process.stdout.fileno())
    trouble: list[str] = []
    try:
        for step in steps:
            until = time.monotonic() + DEADLINE
            while not dx.same_output(output.lines, step.shown):
                if not output.read(until):
                    trouble.append(f"the lines shown before this point did not all appear within {DEADLINE:g} s"
                                   if not output.closed else "it ended by itself before the lines shown")
                    return Followed(process.poll(), output.lines, trouble)
            if step.command is not None:
                problem = run_elsewhere(step.command)
                if problem:
                    trouble.append(f"`{step.command}`: {problem}")
                    return Followed(process.poll(), output.lines, trouble)
            if step.stop is not None:
                if process.poll() is not None:
                    trouble.append(f"it ended by itself (exit {process.returncode}) before its {step.stop}")
                    return Followed(process.returncode, output.lines, trouble)
                os.killpg(process.pid, getattr(signal, step.stop))
        until = time.monotonic() + DEADLINE
        while output.read(until):
            pass
        try:
            code = process.wait(timeout=max(0.0, until - time.monotonic()))
        except subprocess.TimeoutExpired:
            trouble.append(f"still running {DEADLINE:g} s after it was told to stop")
            return Followed(None, output.lines, trouble)
        return Followed(code, output.lines, trouble)
    finally:
        if process.poll() is None:  # the whole group: a pipeline's other processes too
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()

