"""Run the performance benchmarks of `inventory` and print each figure beside its baseline.

    python benchmarks/run.py             # everything (about ten minutes)
    python benchmarks/run.py --quick     # smaller sizes, fewer repetitions
    python benchmarks/run.py --only reads
    python benchmarks/run.py --rev HEAD  # the committed code, not the working tree

Run it with the project's virtual environment active (the `inventory` console
script beside the interpreter is what gets timed). Work files go to
benchmarks/.work/ (git-ignored); the generated 1,000,000-event log is built
once there and reused while the code that writes it (storage, domain, import
path: common.LOG_CODE) is unchanged. The results of the last run are also
written to benchmarks/.work/results.json. See docs/performance.md for what
each goal means and what was measured.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import WORK, Result, say  # noqa: E402

GOALS = {
    "import": "goal_import",      # 1: import speed against plain executemany
    "memory": "goal_memory",      # 2: peak RSS of a 1M-row import
    "startup": "goal_startup",    # 3: everyday commands against hello-world typer
    "rebuild": "goal_rebuild",    # 4: rebuild / replay --all-stores against reading the log
    "reads": "goal_reads",        # 5: history / replay of one product against stock
    "commands": "goal_commands",  # 6: in-process commands against eventsourcing
    "retail": "retail",           # 7: the Online Retail year
    "feed": "goal_feed",          # the feed: follower latency, metrics against stock (SQLite, PostgreSQL)
    "reports": "goal_reports",    # 8: report movements against rebuild-projections
    "postgresql": "goal_postgresql",  # issue 16: import, 8 writers, stock on the shared log
    "streams": "goal_streams",    # issue 15, 1: a command on streams of 1K-1M events
    "verify": "goal_verify",      # issue 15, 5: verify against a plain chain loop
    "pipes": "goal_pipes",        # issue 15, 2: peak memory of whole-log reads into a pipe
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repetitions")
    parser.add_argument("--only", choices=GOALS, action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--rev", help="measure the code committed at this git revision (exported under .work/)")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    commit = _use_revision(args.rev) if args.rev else None
    try:
        import inventory_cli  # noqa: F401
    except ImportError:
        sys.exit("inventory_cli is not importable: activate the project's venv (. .venv/bin/activate).")

    from common import git_state

    source = f"{commit} (committed, {args.rev}; exported to .work/src-{commit})" if commit else git_state()
    header = [
        f"machine: {os.cpu_count()} cores, {platform.machine()}, {platform.platform()}",
        f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}",
        f"code: {source}",
        f"mode: {'quick' if args.quick else 'full'}; load average at start {_load()}",
    ]
    print("\n".join(header), flush=True)
    results: list[Result] = []
    started = time.perf_counter()
    for name in args.only or GOALS:
        module = importlib.import_module(GOALS[name])
        try:
            new = module.bench(args.quick)
        except Exception as error:  # one broken benchmark must not hide the others
            say(f"{name}: FAILED: {error}")
            new = [Result("?", f"{name}: failed", float("nan"), "", "", None, None, "-", False,
                          note=str(error)[:300])]
        say(_table(new))
        results += new
    print()
    print(_table(results))
    print(f"\n{time.perf_counter() - started:.0f} s; load average at end {_load()}")
    (WORK / "results.json").write_text(json.dumps(
        {"header": header, "quick": args.quick, "results": [r.as_dict() for r in results]}, indent=1))


def _use_revision(rev: str) -> str:
    """Export the revision with git archive and put it first on the import path (also for children)."""
    root = Path(__file__).resolve().parent.parent
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", rev],
                            capture_output=True, text=True, check=True).stdout.strip()
    tree = WORK / f"src-{commit}"
    if not tree.exists():
        tree.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(root), "archive", commit, "inventory_cli"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    os.environ["PYTHONPATH"] = str(tree) + os.pathsep + os.environ.get("PYTHONPATH", "")
    sys.path.insert(0, str(tree))
    return commit


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _table(results: list[Result]) -> str:
    rows = [("goal", "measurement", "value", "baseline", "ratio", "target", "verdict")]
    for r in results:
        value = f"{r.value:,.{_digits(r.value)}f} {r.unit}"
        base = "" if r.baseline is None else f"{r.baseline:,.{_digits(r.baseline)}f} ({r.baseline_what})"
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
        verdict = "-" if r.ok is None else ("ok" if r.ok else "MISSED")
        if r.ok and "aim" in r.target:
            aim = float(r.target.split("aim ")[1].rstrip(")"))
            verdict += ", aim met" if r.ratio is not None and r.ratio <= aim else ", aim not met"
        rows.append((r.goal, r.what, value, base, ratio, r.target, verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  [{r.goal}] {r.what.strip()}: {r.note}" for r in results if r.note]
    return "\n".join(lines + (["", "notes:"] + notes if notes else []))


def _digits(value: float) -> int:
    return 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2


if __name__ == "__main__":
    main()
