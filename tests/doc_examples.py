"""The `$ inventory …` examples of a documentation page: parsed, masked, rewritten.

The conventions (test_docs.py runs them):

- A fenced code block holds examples: a line starting with `$ ` is a command,
  the lines after it up to the next `$ ` line or the end of the block are its
  output (stdout and stderr as a terminal shows them; blank lines at the end
  do not count).
- `# exit N` in a command's comment, or a last output line `[exit N]`, is the
  exit code it must give; otherwise 0.
  The rest of a comment after `#` is for the reader.
- Commands that run: those that call `inventory` (alone, with `VAR=value`
  before it, or in a pipeline or a `;` list, run by bash). Other commands
  (`sqlite3`, `cp`, `python3 …`, `export …`) are not run, except `$ cat FILE`
  and `$ cat -n FILE` with a relative FILE: the output shown is written to FILE
  first, so that the page's own import files exist when it imports them.
- Every page runs in a folder of its own, on a fresh database `inventory.db`
  there (`INVENTORY_DB` points to it); the page's `export INVENTORY_DB=…` lines
  are not run (but see `postgresql` below), and an absolute `--db /some/where/x.db` becomes `x.db` in the
  page's folder.
- Masked on both sides before comparing: file sizes (`(123,456 bytes)`).
- HTML comments outside the blocks steer the run:
  `<!-- doctest: skip REASON -->` (the next block is not run: it needs files,
  processes or tampering the page does not set up),
  `<!-- doctest: every-line -->` (every `$` line of the next block runs with bash,
  `sqlite3`, `cp` and `python3 …` included, and is checked: the page's own
  tampering steps),
  `<!-- doctest: file PATH -->` (the next block's text is written to PATH in the
  page's folder, e.g. a script the page shows and then runs),
  `<!-- doctest: run-only REASON -->` (the next block runs and its exit codes are
  checked, its output is not: it depends on the wall clock),
  `<!-- doctest: sleep SECONDS -->` (wait before the next block, for expiry),
  `<!-- doctest: shell COMMAND -->` (bash runs COMMAND in the page's folder before
  the next block: the copies, tampering and set-up that the page describes in
  words; `inventory` and `python3` are this checkout's, `$DOCS_REPO` is the
  checkout and `$DOCS_RETAIL` the folder of the retail data, the page skipped
  when that is not on the machine),
  `<!-- doctest: env NAME=VALUE … -->` (variables for the rest of the page),
  `<!-- doctest: skip-page REASON -->` (no example of the page runs: a page not yet
  written for this harness; the reason says why, and it should not stay),
  `<!-- doctest: folder PATH -->` (the folder the page's text names, e.g.
  /tmp/docs-cmd: it and the test's folder both read as `<folder>` when compared).
  `<!-- doctest: terminal COLUMNS -->` (the next block's commands run on a
  pseudo-terminal COLUMNS wide, the pager off: what a person at a terminal sees),
  `<!-- doctest: follow -->` (the next block's command runs until it is stopped,
  `export --follow`: it runs as a real process; a note line of its output that
  names a command in backquotes, `(a till runs `inventory remove X 1`)`, runs that
  command once the lines above it have appeared; a line `^C` sends SIGINT there
  (its `# exit N` is the exit code); without one the harness sends SIGTERM after
  the last line shown; a line that does not appear within 30 s fails the example
  and the process is killed),
  `<!-- doctest: postgresql -->` (from here on, the page's `postgresql://…` and
  `postgres://…` URLs name a new, empty schema on the test server instead, and a
  `$ export INVENTORY_DB=URL` of the page makes it the database in force; the
  page keeps showing a chain's realistic URL).
- A line `…` in the output shown stands for any number of lines (none
  included): output the page abbreviates.
- The lines of stderr (`inventory: …`, an import's `line N: …`) are compared
  apart from the rest: their order relative to stdout is not fixed.
- Masked on both sides before comparing: times, SHA-256 hashes, generated
  reservation and transfer ids (R-XXXXXXXX, T-XXXXXXXX), the idempotency keys a
  write on a server makes (auto-…) and durations in
  seconds. A generated id or hash printed by an example is carried into the
  later commands that use the one shown on the page.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

DIRECTIVE = re.compile(r"^<!--\s*doctest:\s*(.*?)\s*-->\s*$")
EXIT_NOTE = re.compile(r"#\s*exit (\d+)")
EXIT_LINE = re.compile(r"^\[exit (\d+)\]$")
CTRL_C = re.compile(r"^\^C(\s+#.*)?$")
NOTE_RUNS = re.compile(r"^\s*\(.*`(inventory [^`]+)`.*\)\s*$")  # "(a till runs `inventory …`)"
ELIDED = "…"
CALLS_INVENTORY = re.compile(r"(^|[\s|;&(])inventory(\s|$)")

_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[+-]\d{2}:?\d{2}|Z)?"
)
_HASH = re.compile(r"\b[0-9a-f]{64}\b")
GENERATED = re.compile(r"\b[RT]-[0-9A-F]{8}\b|\b[0-9a-f]{64}\b")
_MASKS = (
    (_TIME, "<time>"),
    (_HASH, "<hash>"),
    (re.compile(r"\b[RT]-[0-9A-F]{8}\b"), "<id>"),
    (re.compile(r"\bauto-[0-9a-f]{32}\b"), "auto-<id>"),  # the key a write on a server makes
    (re.compile(r"\b\d+\.\d+ s\b"), "<secs> s"),
    (re.compile(r"\b\d[\d,]* rows/s\b"), "<n> rows/s"),
    (re.compile(r'"seconds": \d+(?:\.\d+)?'), '"seconds": <secs>'),
    (re.compile(r"\(\d[\d,]* bytes\)"), "(<size>)"),
)


@dataclass
class Example:
    line: int  # 1-based line of the `$` in the page
    command: str  # what follows `$ `
    expected: list[str]  # the output lines shown, trailing blank lines dropped
    mode: str = "check"  # check | run-only | every-line | terminal | follow | file (command is then the path)
    sleep: float = 0.0  # seconds to wait before it (the first of its block only)
    setup: list[str] = field(default_factory=list)  # shell commands before it (idem)
    env: dict[str, str] = field(default_factory=dict)
    folder: str | None = None  # the page's folder as its text names it
    columns: int = 0  # the terminal's width (mode terminal)
    schema: int = 0  # which PostgreSQL schema the page's URLs name (0: none; 1, 2…: each directive)

    @property
    def exit_code(self) -> int:
        found = EXIT_NOTE.search(self.command) or next(
            (EXIT_NOTE.search(line) for line in self.expected if CTRL_C.match(line)), None)
        return int(found.group(1)) if found else 0 if self.exit_line is None else self.exit_line

    @property
    def exit_line(self) -> int | None:
        """N when the output shown ends with a line `[exit N]`."""
        found = EXIT_LINE.match(self.expected[-1]) if self.expected else None
        return int(found.group(1)) if found else None

    @property
    def shown_output(self) -> list[str]:
        """The output lines shown (a follower's notes and `^C` left out)."""
        lines = self.expected[:-1] if self.exit_line is not None else self.expected
        if self.mode == "follow":
            lines = [line for line in lines if not (CTRL_C.match(line) or NOTE_RUNS.match(line))]
        return lines

    @property
    def output_end(self) -> int:
        """The 0-based index after the last shown output line in the page."""
        return self.line + len(self.expected)


def examples(text: str) -> list[Example]:
    """Every `$ ` example of a page in order, with the directives that apply to it."""
    lines = text.split("\n")
    found: list[Example] = []
    env: dict[str, str] = {}
    pending: list[str] = []
    in_block = False
    current: Example | None = None
    block_mode, block_sleep, skip_block = "check", 0.0, False
    block_setup: list[str] = []
    folder: str | None = None
    saved_as: str | None = None
    schema, columns = 0, 0
    for index, line in enumerate(lines):
        if line.startswith("```"):
            if in_block:
                _close(current)
                current, saved_as = None, None
            else:
                first_words = {d.split()[0] for d in pending}
                skip_block = "skip" in first_words
                block_mode = next((m for m in ("run-only", "every-line", "terminal", "follow")
                                   if m in first_words), "check")
                columns = next((int(d.split()[1]) for d in pending if d.startswith("terminal ")), 0)
                saved_as = next((d.split(None, 1)[1] for d in pending if d.startswith("file ")), None)
                if saved_as is not None:  # the whole block is the file's text
                    current = Example(index + 1, saved_as, [], "file")
                    found.append(current)
                block_sleep = next((float(d.split()[1]) for d in pending if d.startswith("sleep ")), 0.0)
                block_setup = [d[6:] for d in pending if d.startswith("shell ")]
                pending = []
            in_block = not in_block
            continue
        if not in_block:
            directive = DIRECTIVE.match(line)
            if directive:
                words = directive.group(1)
                if words.startswith("skip-page"):
                    return []
                if words.startswith("env "):
                    env.update(dict(pair.split("=", 1) for pair in shlex.split(words[4:])))
                elif words.startswith("folder "):
                    folder = words.split(None, 1)[1]
                elif words == "postgresql":
                    schema += 1
                else:
                    pending.append(words)
            continue
        if skip_block:
            continue
        if saved_as is not None:
            current.expected.append(line)
            continue
        if line.startswith("$ "):
            _close(current)
            current = Example(index + 1, line[2:], [], block_mode, block_sleep, block_setup, dict(env), folder,
                              columns, schema)
            block_sleep, block_setup = 0.0, []
            found.append(current)
        elif current is not None:
            current.expected.append(line)
    return found


def _close(example: Example | None) -> None:
    if example is not None:
        while example.expected and not example.expected[-1].strip():
            example.expected.pop()


def mask(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        for pattern, replacement in _MASKS:
            line = pattern.sub(replacement, line)
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return out


_STDERR_LINE = re.compile(r"^(inventory: |line \d+: )")


def same_output(actual: list[str], shown: list[str]) -> bool:
    """Equal once masked, a line `…` shown standing for any lines; the lines of stderr
    (`inventory: …`, `line N: …`) may come before or after those of stdout, as the two
    streams reach a terminal in any order."""
    def streams(lines: list[str]) -> tuple[list[str], list[str]]:
        masked = mask(lines)
        return ([l for l in masked if not _STDERR_LINE.match(l)], [l for l in masked if _STDERR_LINE.match(l)])

    (out, err), (shown_out, shown_err) = streams(actual), streams(shown)
    return _matches(out, shown_out) and _matches(err, shown_err)


def _matches(lines: list[str], pattern: list[str]) -> bool:
    """``lines`` as ``pattern`` shows them, each `…` of it matching any run of lines
    (a glob's `*`, over lines)."""
    i = j = 0
    elision, resume = -1, 0
    while i < len(lines):
        if j < len(pattern) and pattern[j].strip() == ELIDED:
            elision, resume, j = j, i, j + 1
        elif j < len(pattern) and pattern[j] == lines[i]:
            i, j = i + 1, j + 1
        elif elision >= 0:  # let the last `…` take one more line
            resume += 1
            i, j = resume, elision + 1
        else:
            return False
    return all(line.strip() == ELIDED for line in pattern[j:])


@dataclass
class FollowStep:
    """A point in a follower's output: the lines shown up to it, and what happens there."""

    shown: list[str]
    command: str | None = None  # another process runs it there
    stop: str | None = None  # or the follower gets this signal there: SIGINT (`^C`) or SIGTERM


def follow_steps(example: Example) -> list[FollowStep]:
    """The notes that run a command and the `^C` of a follow example, in order; the
    follower is stopped after its last line shown when the page shows no `^C`."""
    steps, shown = [], []
    lines = example.expected[:-1] if example.exit_line is not None else example.expected
    for line in lines:
        note = NOTE_RUNS.match(line)
        if note:
            steps.append(FollowStep(list(shown), command=note.group(1)))
        elif CTRL_C.match(line):
            return steps + [FollowStep(list(shown), stop="SIGINT")]
        else:
            shown.append(line)
    return steps + [FollowStep(shown, stop="SIGTERM")]


def generated_values(lines: list[str]) -> list[str]:
    return [m.group(0) for line in lines for m in GENERATED.finditer(line)]


def file_shown(command: str) -> tuple[str, bool] | None:
    """(path, numbered) when the command is `cat FILE` or `cat -n FILE` of a relative path."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return None
    if len(words) == 2 and words[0] == "cat":
        path, numbered = words[1], False
    elif len(words) == 3 and words[:2] == ["cat", "-n"]:
        path, numbered = words[2], True
    else:
        return None
    if path.startswith("/") or any(ch in path for ch in "*?$"):
        return None
    return path, numbered


def file_content(lines: list[str], numbered: bool) -> str:
    if numbered:
        lines = [re.sub(r"^\s*\d+\t?", "", line, count=1) for line in lines]
    return "\n".join(lines) + "\n"


def calls_inventory(command: str) -> bool:
    return not command.lstrip().startswith("export ") and bool(CALLS_INVENTORY.search(command))


def simple_argv(command: str) -> tuple[dict[str, str], list[str]] | None:
    """(VAR=value assignments, arguments) for `[VAR=value …] inventory ARGS`; None when
    the line needs a shell (pipes, lists, redirections, substitutions)."""
    if any(ch in command.split("#", 1)[0] for ch in "|;&<>$`()"):
        return None
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return None
    assignments: dict[str, str] = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, value = words.pop(0).split("=", 1)
        assignments[name] = value
    if not words or words[0] != "inventory":
        return None
    return assignments, words[1:]


def rewrite(text: str, outputs: dict[int, list[str]], examples_: list[Example]) -> str:
    """The page with each example's shown output replaced by what it printed."""
    lines = text.split("\n")
    for example in sorted(examples_, key=lambda e: e.line, reverse=True):
        if example.line in outputs:
            tail = example.expected[-1:] if example.exit_line is not None else []
            lines[example.line:example.output_end] = outputs[example.line] + tail
    return "\n".join(lines)
