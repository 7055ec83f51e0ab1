"""Batch import: decide every row against in-memory aggregates, write all or nothing.

Rows stream through: events are handed to storage in chunks inside the open
transaction, so memory stays flat however long the file. The first bad row
stops the writing (the transaction will be rolled back) but not the checking,
so that every bad row is reported at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import NamedTuple

from pydantic import ValidationError

from inventory_cli.application.import_rows import (
    ROW,
    BadRow,
    RowTranslator,
    describe_validation_error,
    repeated_fields,
    repeated_fields_message,
)
from inventory_cli.application.commands import Command, idempotency_key, streams_named
from inventory_cli.application.write_session import WriteSession
from inventory_cli.domain.errors import InvalidValue, RuleViolation
from inventory_cli.storage.port import EventStore

FLUSH_EVERY = 5_000
KEYS_AT_ONCE = 5_000  # rows whose idempotency keys are looked up together (a round trip on a server)
_NEEDS_ID = "with --batch-size every row needs an 'id', so that a re-run is safe"
# The validator itself: TypeAdapter's wrappers cost a measurable share per row.
_validate_json = ROW.validator.validate_json
_validate_python = ROW.validator.validate_python


class SourceRow(NamedTuple):
    """One row of an import file: its first physical line and its content.

    ``content`` is the raw JSON text (NDJSON) or a dict of fields (CSV);
    ``problem`` is set when the row could not even be read.
    """

    line: int
    content: str | bytes | dict[str, str] | None
    problem: str | None = None


@dataclass
class ImportReport:
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)
    dry_run: bool = False
    would_apply: int = 0

    def reject(self, line: int, message: str) -> None:
        self.rejected += 1
        self.errors.append({"line": line, "error": message})

    def as_dict(self) -> dict[str, object]:
        document: dict[str, object] = {
            "applied": self.applied,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": self.errors,
        }
        if self.dry_run:
            document["dry_run"] = True
            document["would_apply"] = self.would_apply
        return document


class _Refused(Exception):
    """Raised inside a batch's transaction so that it rolls back."""


def run_import(
    store: EventStore,
    rows: Iterable[SourceRow],
    *,
    default_store: str,
    actor: str = "unknown",
    batch_size: int | None = None,
    dry_run: bool = False,
    on_rows: Callable[[int], None] | None = None,
    clock: Callable[[], str] | None = None,
    report: ImportReport | None = None,
) -> ImportReport:
    """Apply the rows: all or nothing, or each batch of ``batch_size`` rows all or nothing.

    A refused batch stops the import: the rows after it are still checked for
    malformed content, and reported, but not applied. Pass ``report`` to keep
    the counts of the batches already committed if the database fails mid-way.
    """
    report = report or ImportReport(dry_run=dry_run)
    translator = RowTranslator(default_store)
    source = iter(rows)
    session: WriteSession | None = None
    require_keys = batch_size is not None
    for batch in _batches(source, None if dry_run else batch_size):
        committed = report.applied
        try:
            with store.write(bulk=True):
                # One session for all batches: streams stay in memory between them.
                now = (clock or store.now)()  # a server's clock where there is one
                if session is None:
                    session = WriteSession(store, now, actor)
                else:
                    session.begin(now)
                _decide_rows(session, batch, translator, report, require_keys, on_rows, dry_run)
                if report.rejected or dry_run:
                    raise _Refused
                session.flush()
        except _Refused:
            if dry_run and not report.rejected:
                report.would_apply = report.applied - committed
            report.applied = committed
            for row in source:
                _check_only(row, translator, report, require_keys)
            break
        except BaseException:
            report.applied = committed  # the failed batch was rolled back
            raise
    return report


def _decide_rows(
    session: WriteSession,
    rows: Iterable[SourceRow],
    translator: RowTranslator,
    report: ImportReport,
    require_keys: bool,
    on_rows: Callable[[int], None] | None,
    dry_run: bool = False,
) -> None:
    count = 0
    source = iter(rows)
    while chunk := list(islice(source, KEYS_AT_ONCE)):
        # Translated first, so that the chunk's idempotency keys are looked up in one query.
        translated = [_translated(row, translator, require_keys) for row in chunk]
        commands = [command for command, _ in translated if not isinstance(command, Exception)]
        session.prefetch_keys([key for command in commands if (key := idempotency_key(command))])
        session.prefetch_streams([key for command in commands for key in streams_named(command)])
        for row, (command, row_actor) in zip(chunk, translated):
            count += 1
            if on_rows is not None and count % 1000 == 0:
                on_rows(1000)
            _decide_row(session, row, command, row_actor, report, dry_run)


def _translated(row: SourceRow, translator: RowTranslator, require_keys: bool) -> tuple:
    """(command, actor), or (the error, None) for a row that is bad on its own."""
    try:
        command, row_actor = _command(row, translator)
        if require_keys and idempotency_key(command) is None:
            raise BadRow(_NEEDS_ID)
    except (BadRow, InvalidValue) as error:
        return error, None
    return command, row_actor


def _decide_row(session: WriteSession, row: SourceRow, command, row_actor: str | None,
                report: ImportReport, dry_run: bool) -> None:
    try:
        if isinstance(command, Exception):
            raise command
        outcome = session.execute(command, row_actor)
    except (BadRow, InvalidValue, RuleViolation) as error:
        report.reject(row.line, str(error))
        return
    if outcome.duplicate_of is not None:
        report.duplicates += 1
        return
    report.applied += 1
    if len(session.pending) >= FLUSH_EVERY:
        # When nothing will be written (a dry run, or a bad row was seen), drop the
        # events instead of writing them; the session keeps the state they made.
        session.discard_pending() if report.rejected or dry_run else session.flush(final=False)


def _command(row: SourceRow, translator: RowTranslator) -> tuple[Command, str | None]:
    if row.problem is not None:
        raise BadRow(row.problem)
    content = row.content
    try:
        if isinstance(content, dict):
            parsed = _validate_python(content)
        else:
            parsed = _validate_json(content)
            if repeated := repeated_fields(content, parsed):  # type: ignore[arg-type]
                raise BadRow(repeated_fields_message(repeated))
    except ValidationError as error:
        # A repeated field is named before anything else that is wrong with the row.
        if not isinstance(content, dict) and (repeated := repeated_fields(content, None)):  # type: ignore[arg-type]
            raise BadRow(repeated_fields_message(repeated)) from None
        raise BadRow(describe_validation_error(error)) from None
    return translator.command(parsed)


def _check_only(
    row: SourceRow, translator: RowTranslator, report: ImportReport, require_keys: bool
) -> None:
    """After a refused batch: report rows that are malformed on their own."""
    try:
        command, _ = _command(row, translator)
        if require_keys and idempotency_key(command) is None:
            raise BadRow(_NEEDS_ID)
    except BadRow as error:
        report.reject(row.line, str(error))


def _batches(source: Iterator[SourceRow], size: int | None) -> Iterator[Iterable[SourceRow]]:
    """The batches, each read before its transaction begins; a whole file streams through
    its transaction, which begins once the first row is there (a writer's locks are not
    held while a pipe stays silent)."""
    if size is None:
        first = next(source, None)
        yield source if first is None else chain((first,), source)
        return
    while batch := list(islice(source, size)):
        yield batch
