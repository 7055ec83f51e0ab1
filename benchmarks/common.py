"""Helpers shared by the benchmarks: paths, timing child processes, data files.

Every figure is a median over repetitions in which the tool and its baseline
run interleaved (their order rotating), so that load from other people's work
on the machine falls on both alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
SCRIPTS = HERE / "scripts"
MIB = 1024 * 1024


# -- results ---------------------------------------------------------------------------


@dataclass
class Result:
    """One figure beside its baseline; ``ratio`` is value / baseline (or / the limit)."""

    goal: str
    what: str
    value: float
    unit: str
    baseline_what: str
    baseline: float | None
    ratio: float | None
    target: str  # e.g. "<= 2.0 (aim 1.5)"
    ok: bool | None  # None: information only, no goal
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def ratio_result(goal: str, what: str, value: float, unit: str, baseline_what: str,
                 baseline: float, *, limit: float, aim: float | None = None,
                 higher_is_better: bool = False, note: str = "") -> Result:
    ratio = value / baseline if baseline else float("inf")
    if higher_is_better:
        ok = ratio >= limit
        target = f">= {limit:g}" + (f" (aim {aim:g})" if aim else "")
    else:
        ok = ratio <= limit
        target = f"<= {limit:g}" + (f" (aim {aim:g})" if aim else "")
    return Result(goal, what, value, unit, baseline_what, baseline, ratio, target, ok, note)


def info_result(goal: str, what: str, value: float, unit: str, baseline_what: str = "",
                baseline: float | None = None, note: str = "") -> Result:
    ratio = value / baseline if baseline else None
    return Result(goal, what, value, unit, baseline_what, baseline, ratio, "-", None, note)


# -- running things ----------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    max_rss: int  # bytes, of that child alone (wait4)
    returncode: int
    stdout: str
    stderr: str


def inventory_argv() -> list[str]:
    """The installed console script beside this interpreter (the way users run it)."""
    script = Path(sys.executable).parent / "inventory"
    return [str(script)] if script.exists() else [sys.executable, "-m", "inventory_cli"]


def run(argv: list[str], *, capture: bool = False, check: bool = True,
        env: dict[str, str] | None = None) -> Run:
    """Run a child process; its wall time and its own peak resident memory."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out if capture else subprocess.DEVNULL,
            stderr=err, env=env or child_env(),
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = Run(seconds, usage.ru_maxrss * 1024, child.returncode,
                     out.read().decode(errors="replace"), err.read().decode(errors="replace"))
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr[-2000:]}"
        )
    return result


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("INVENTORY_DB", "INVENTORY_STORE", "INVENTORY_DEBUG"):
        env.pop(name, None)
    # Users' Pythons cache bytecode; without it every start compiles the project's modules.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["NO_COLOR"] = "1"
    return env


def interleaved(cases: dict[str, Callable[[], float]], reps: int, warmup: bool = True
                ) -> dict[str, list[float]]:
    """Run each case ``reps`` times, round-robin with a rotating order; the samples per case.

    Each case does its own set-up and returns the seconds it measured. One
    unmeasured round first warms the page cache and the bytecode cache.
    """
    names = list(cases)
    if warmup:
        for name in names:
            cases[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(cases[name]())
    return samples


def import_cases(source: Path, db_tool: Path, db_plain: Path) -> dict[str, Callable[[], float]]:
    """The tool's `import` of ``source`` and the plain executemany script's, each on a fresh database."""

    def tool() -> float:
        remove_db(db_tool)
        return run([*inventory_argv(), "--db", str(db_tool), "import", str(source), "-q"]).seconds

    def plain() -> float:
        remove_db(db_plain)
        return run([sys.executable, str(SCRIPTS / "plain_import.py"), str(source), str(db_plain)]).seconds

    return {"tool": tool, "plain": plain}


def median(values: list[float]) -> float:
    return statistics.median(values)


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- data files (cached in .work) -------------------------------------------------------------


def adds_file(rows: int, products: int = 2000, *, ids: bool = False) -> Path:
    """NDJSON: ``rows`` add rows spread round-robin over ``products`` products
    (with ``ids``, each row carries a unique ``id``, as scripts send them)."""
    path = WORK / f"adds-{rows}-{products}{'-ids' if ids else ''}.ndjson"
    if not path.exists():
        rng = random.Random(rows)
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as out:
            for i in range(rows):
                key = f'"id":"delivery-{i:07d}",' if ids else ""
                out.write(f'{{{key}"op":"add","product":"P-{i % products:05d}","quantity":{rng.randint(1, 50)}}}\n')
        tmp.rename(path)
    return path


LOG_START = datetime(2025, 1, 1, tzinfo=timezone.utc)
HOT = "HOT-1"


def log_at(index: int) -> str:
    """The occurred_at of row ``index`` (0-based) of a generated log: one row a second."""
    return (LOG_START + timedelta(seconds=index)).isoformat()


def log_file(rows: int) -> Path:
    """NDJSON of a realistic mixed log: two stores, 2,000 products plus one hot product.

    ``main`` gets 75% of the rows, ``north`` 25%; the product HOT-1 (in main)
    takes 5% of all rows. Ops: adds, removes, reservations later fulfilled or
    released, the odd physical count, every row dated one second after the one
    before. Every row is valid, so the import applies all of them and the
    event at position N is row N.
    """
    path = WORK / f"log-{rows}.ndjson"
    if path.exists():
        return path
    rng = random.Random(rows)
    state: dict[tuple[str, str], list] = {}  # stream -> [on_hand, reserved, open [(rid, qty)]]
    tmp = path.with_suffix(".tmp")
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    with tmp.open("w") as out:
        for i in range(rows):
            if rng.random() < 0.05:
                store, product = "main", HOT
            else:
                store = "main" if rng.random() < 0.75 else "north"
                product = f"P-{rng.randrange(2000):05d}"
            s = state.setdefault((store, product), [0, 0, []])
            on_hand, reserved, open_ = s
            available = on_hand - reserved
            row: dict[str, object] = {"store": store, "product": product, "at": log_at(i)}
            r = rng.random()
            if open_ and r < 0.15:
                rid, qty = open_.pop(0)
                if rng.random() < 0.8:
                    row.update(op="fulfill", reservation_id=rid)
                    s[0] -= qty
                else:
                    row.update(op="release", reservation_id=rid)
                s[1] -= qty
                del row["product"], row["store"]
            elif r < 0.55 or available <= 0:
                qty = rng.randint(1, 20)
                row.update(op="add", quantity=qty)
                s[0] += qty
            elif r < 0.75:
                qty = rng.randint(1, min(5, available))
                row.update(op="remove", quantity=qty)
                s[0] -= qty
            elif r < 0.95:
                qty = rng.randint(1, min(3, available))
                rid = f"R{i}"
                row.update(op="reserve", quantity=qty, customer=f"C{rng.randint(1, 500)}",
                           reservation_id=rid)
                s[1] += qty
                open_.append((rid, qty))
            else:
                counted = max(reserved, on_hand + rng.randint(-2, 2))
                row.update(op="count", quantity=counted)
                s[0] = counted
            out.write(dumps(row) + "\n")
    tmp.rename(path)
    return path


# The code whose changes can change what an import writes to a database: the
# storage package (schema, append), the domain (events and their payloads) and
# the import / write path of the application. A cached log is keyed on all of it.
LOG_CODE = ("storage", "domain", "application/importer.py", "application/import_rows.py",
            "application/write_session.py")


def code_tag() -> str:
    """A short hash of the code that writes a log (LOG_CODE), so a cached log is rebuilt when it changes."""
    import inventory_cli

    root = Path(inventory_cli.__file__).resolve().parent
    digest = hashlib.sha256()
    for part in LOG_CODE:
        path = root / part
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            if file.exists():
                digest.update(file.relative_to(root).as_posix().encode() + b"\0")
                digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:8]


def log_db(rows: int) -> Path:
    """A database holding the generated log of ``rows`` events, imported once by the tool itself."""
    return imported_db(WORK / f"log-{rows}-{code_tag()}.db", lambda: log_file(rows), rows)


def imported_db(path: Path, source: Callable[[], Path], rows: int) -> Path:
    """``path``, made once (cached while the schema stays) by the tool importing ``source()``."""
    if path.exists() and _user_version(path) != _code_schema_version():
        remove_db(path)  # migrated by other code since it was built
    if not path.exists():
        file = source()
        say(f"  building {path.name}: importing {rows:,} rows with the tool (once, cached)…")
        tmp = path.with_name(path.name + ".building")
        remove_db(tmp)
        took = run([*inventory_argv(), "--db", str(tmp), "import", str(file), "-q"])
        # Fold the WAL into the main file so that every later run starts alike.
        import sqlite3

        conn = sqlite3.connect(tmp)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        remove_db(path)
        tmp.rename(path)
        remove_db(tmp)
        say(f"  built in {took.seconds:.1f} s")
    return path


def _user_version(path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def _code_schema_version() -> int:
    from inventory_cli.storage.sqlite import schema

    return schema.CURRENT_VERSION


def git_state() -> str:
    """The commit measured, and whether the working tree differed from it."""
    import inventory_cli

    root = Path(inventory_cli.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "inventory_cli"],
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"{root} (not a git checkout)"
    return f"{commit}{' + uncommitted changes in inventory_cli/' if dirty else ''} ({root})"
