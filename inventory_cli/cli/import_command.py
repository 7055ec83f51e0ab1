"""The `import` command's work: open the source, run the import, report."""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from inventory_cli.cli import render
from inventory_cli.cli.boundary import EXIT_BAD_DATA, UsageProblem
from inventory_cli.cli.import_files import FORMATS, format_for, open_source, read_rows

MAX_ERRORS_SHOWN = 20


def import_file(
    settings, name: str, fmt: str | None, *, store_code: str, actor: str, batch_size: int | None,
    dry_run: bool, quiet: bool, as_json: bool,
) -> None:
    from inventory_cli.application.importer import ImportReport, run_import
    from inventory_cli.storage.empty import EmptyStore

    fmt = format_for(name, fmt)
    if fmt is None:
        raise UsageProblem(
            f"Cannot tell the format of {name!r} from its extension; "
            f"add --format {' or --format '.join(FORMATS)}."
        )
    if name == "-" and sys.stdin.isatty():
        raise UsageProblem("No input: give a FILE, or pipe rows into `inventory import -`.")
    # Not isfile(): /dev/null and named pipes (`import <(…)`) are sources too.
    if name != "-" and (os.path.isdir(name) or not os.path.exists(name)):
        what = "is a directory" if os.path.isdir(name) else "does not exist"
        raise UsageProblem(f"The import file {name} {what}; check the path.")
    try:
        source = open_source(name)
    except OSError as error:
        raise UsageProblem(f"Cannot read the import file {name}: {error.strerror}.") from None

    started = time.perf_counter()
    report = ImportReport(dry_run=dry_run)
    # Into a database that does not exist yet, a whole-file import writes a scratch
    # file beside it and links it into place only when it succeeds, so that a
    # refused import leaves nothing behind. (Batches are committed as they come.)
    fresh = not dry_run and batch_size is None and settings.is_new()
    folder_existed = os.path.isdir(os.path.dirname(os.path.abspath(settings.db)))
    try:
        with source, _progress(source, name, enabled=not quiet and sys.stderr.isatty()) as advance, \
                _fewer_collections():
            location = _scratch_path(settings.db) if fresh else settings.db
            store = settings.open(create=not dry_run, location=location)
            if dry_run and isinstance(store, EmptyStore):
                store = _scratch_store()
            try:
                run_import(
                    store, read_rows(source, fmt), default_store=store_code, actor=actor,
                    batch_size=batch_size, dry_run=dry_run, on_rows=advance, report=report,
                )
            finally:
                store.close()
                if fresh:
                    _publish(location, settings.db, keep=not report.rejected)
                    if report.rejected and not folder_existed:
                        _remove_if_empty(os.path.dirname(os.path.abspath(settings.db)))
    except (Exception, KeyboardInterrupt) as error:
        if as_json:  # scripts get their document whatever the exit code
            from inventory_cli.cli.boundary import exit_code_for

            document = report.as_dict()
            document["error"] = exit_code_for(error)[1]
            render.print_json(document)
        raise
    _finish(report, as_json, quiet, time.perf_counter() - started)


def _finish(report, as_json: bool, quiet: bool, seconds: float) -> None:
    if as_json:
        render.print_json(report.as_dict())
    else:
        _print_summary(report, seconds, quiet)
    if report.rejected:
        raise typer.Exit(EXIT_BAD_DATA)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Python's collector less often while rows are imported.

    An import holds thousands of decided events between flushes, and the default
    thresholds make the collector walk them (and every object of the start-up)
    again and again; garbage without cycles is freed at once either way.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _scratch_path(target: str) -> str:
    folder, base = os.path.split(target)
    return os.path.join(folder, f".{base}.importing-{os.getpid()}")


def _publish(scratch: str, target: str, *, keep: bool) -> None:
    """Link the scratch database into place (never over an existing file); remove it."""
    from inventory_cli.storage.errors import StorageBusy

    try:
        if keep:
            try:
                os.link(scratch, target)
            except FileExistsError:
                raise StorageBusy(
                    f"another process created {target} while this import ran; nothing was "
                    "imported. Run the import again"
                ) from None
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.remove(scratch + suffix)
            except FileNotFoundError:
                pass


def _remove_if_empty(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass


def _scratch_store():
    """A dry run on a database that does not exist yet checks against an empty log in memory."""
    from inventory_cli.storage.sqlite import open_store

    return open_store(":memory:", create=True)


def _print_summary(report, seconds: float, quiet: bool) -> None:
    if report.rejected:
        from inventory_cli.cli.render import visible

        for error in report.errors[:MAX_ERRORS_SHOWN]:
            sys.stderr.write(f"line {error['line']}: {visible(error['error'])}\n")
        if report.rejected > MAX_ERRORS_SHOWN:
            sys.stderr.write(
                f"… and {render.plural(report.rejected - MAX_ERRORS_SHOWN, 'more bad row')} "
                "(--json lists them all).\n"
            )
        written = (
            f"{render.plural(report.applied, 'row')} of earlier batches "
            f"{render.verb(report.applied, 'was', 'were')} written; "
            if report.applied else "Nothing was written: "
        )
        sys.stderr.write(
            f"inventory: {written}{render.plural(report.rejected, 'bad row')}. "
            f"Fix {render.verb(report.rejected, 'it', 'them')} and run the import again.\n"
        )
        return
    if quiet:
        return
    if report.dry_run:
        render.print_message(
            f"Dry run: {render.plural(report.would_apply, 'row')} would be applied, "
            f"{render.plural(report.duplicates, 'duplicate')}; nothing was written."
        )
    else:
        rate = report.applied / seconds if seconds else 0
        render.print_message(
            f"Imported {render.plural(report.applied, 'row')} "
            f"({render.plural(report.duplicates, 'duplicate')} skipped) "
            f"in {seconds:.1f} s ({rate:,.0f} rows/s)."
        )


class _progress:
    """A progress bar on stderr for a terminal; nothing otherwise."""

    def __init__(self, source, name: str, *, enabled: bool) -> None:
        self.source, self.name, self.enabled = source, name, enabled
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import Progress

        total = os.path.getsize(self.name) if self.name != "-" else None
        self.bar = Progress(console=Console(stderr=True), transient=True)
        self.bar.start()
        task = self.bar.add_task("Importing", total=total)

        def advance(rows: int) -> None:
            if total is None:
                self.bar.advance(task, rows)
            else:
                try:
                    self.bar.update(task, completed=self.source.tell())
                except (OSError, ValueError):
                    pass

        return advance

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
