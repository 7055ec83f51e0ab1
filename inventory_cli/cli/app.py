"""The `inventory` command: parse, build a command or query, run it, render.

Heavier modules (the application, storage, rich) are imported inside the
commands that use them, so that `--help` and TAB completion stay fast.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from typing import Annotated, Optional

import typer

from inventory_cli import __version__
from inventory_cli.cli.boundary import EXIT_REFUSED, UsageProblem, guarded

# Typer draws help and usage errors with rich boxes; plain text where that would
# end up in a pipe, a log file or a terminal that asked for no colour.
_PLAIN = not sys.stderr.isatty() or "NO_COLOR" in os.environ

_APP_SETTINGS: dict = dict(
    name="inventory",
    rich_markup_mode=None if _PLAIN else "rich",
    help="Stock of a store as an append-only event log in one SQLite file.\n\n"
    "Example: inventory add SKU-1 10 && inventory stock SKU-1",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app = typer.Typer(**_APP_SETTINGS)

# Quantities are read as text and validated by the domain, so that "-5" or "1.5"
# get the same clear message as "abc" instead of "No such option".
QUANTITY_CONTEXT = {"ignore_unknown_options": True}

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]
Store = Annotated[
    str,
    typer.Option("--store", "-s", envvar="INVENTORY_STORE", help="The store acted on.", show_default=True),
]
Key = Annotated[
    Optional[str],
    typer.Option("--id", help="Idempotency key: running again with the same id changes nothing."),
]
User = Annotated[
    Optional[str],
    typer.Option("--user", envvar="INVENTORY_USER", help="Who does this (default: your login name).", show_default=False),
]
Product = Annotated[str, typer.Argument(metavar="PRODUCT", help="The product code (SKU).", show_default=False)]
QuantityArg = Annotated[str, typer.Argument(metavar="QUANTITY", help="A whole number of units, 1 to 1,000,000,000.", show_default=False)]


class Settings:
    """Where the database is and how long a writer waits for it."""

    def __init__(self, db: str | None) -> None:
        self.db = db or os.environ.get("INVENTORY_DB") or _default_db()

    @staticmethod
    def busy_timeout() -> float:
        raw = os.environ.get("INVENTORY_BUSY_TIMEOUT", "30")
        try:
            seconds = float(raw)
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= 86_400:
            raise UsageProblem(
                f"INVENTORY_BUSY_TIMEOUT must be a number of seconds from 0 to 86400; got {raw!r}."
            )
        return seconds

    def is_new(self) -> bool:
        """True when the database file does not exist yet."""
        return not self.db.startswith("file:") and not os.path.exists(self.db)

    def open(self, *, create: bool, location: str | None = None):  # -> SqliteEventStore | None
        from inventory_cli.storage.sqlite_store import open_store

        return open_store(location or self.db, create=create, busy_timeout=self.busy_timeout())


def _default_db() -> str:
    from platformdirs import user_data_dir

    return os.path.join(user_data_dir("inventory-cli", appauthor=False), "inventory.db")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"inventory {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Annotated[
        Optional[str],
        typer.Option(
            "--db",
            envvar="INVENTORY_DB",
            help="The SQLite file (default: inventory.db in the user data folder).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    ctx.obj = Settings(db)


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj if isinstance(ctx.obj, Settings) else Settings(None)


# -- write commands -----------------------------------------------------------------


def _actor(user: str | None) -> str:
    """--user or INVENTORY_USER, else the operating system's login name."""
    from inventory_cli.domain.values import Actor

    if user is None:
        import getpass

        try:
            user = getpass.getuser() or "unknown"
        except (OSError, KeyError):
            user = "unknown"
    return Actor(user)


def _write(ctx: typer.Context, command, as_json: bool, describe, user: str | None) -> None:
    from inventory_cli.application.handlers import run_command
    from inventory_cli.cli import render

    actor = _actor(user)
    settings = _settings(ctx)
    if settings.is_new():
        # Decide against an empty log in memory first, so that a refused first
        # command leaves no database file behind.
        from inventory_cli.storage.sqlite_store import open_store

        from contextlib import closing

        with closing(open_store(":memory:", create=True)) as probe:
            run_command(probe, command, actor)
    store = settings.open(create=True)
    try:
        result = run_command(store, command, actor)
    finally:
        store.close()
    if as_json:
        render.print_json(render.write_result_json(result))
    else:
        from inventory_cli.application.commands import idempotency_key

        prefix = f"Already done earlier (id {idempotency_key(command)}): " if result.duplicate else ""
        render.print_message(prefix + describe(result) + " " + render.balance_sentence(result.line))


@app.command(context_settings=QUANTITY_CONTEXT, epilog="Example: inventory add SKU-1 10 --reason delivery")
@guarded
def add(
    ctx: typer.Context,
    product: Product,
    quantity: QuantityArg,
    reason: Annotated[str, typer.Option(help="Why the stock arrived.")] = "received",
    store: Store = "main",
    key: Key = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """Stock arrives: add QUANTITY units of PRODUCT."""
    from inventory_cli.application.commands import AddStock
    from inventory_cli.domain import values as v

    command = AddStock(v.StoreCode(store), v.ProductCode(product), v.Quantity(quantity),
                       v.Reason(reason), _key(key))
    _write(ctx, command, as_json, lambda r: f"Added {command.quantity} × {command.product} ({command.reason}).", user)


@app.command(context_settings=QUANTITY_CONTEXT, epilog="Example: inventory remove SKU-1 2 --reason damaged")
@guarded
def remove(
    ctx: typer.Context,
    product: Product,
    quantity: QuantityArg,
    reason: Annotated[str, typer.Option(help="Why the stock left: sold, damaged, lost…")] = "sold",
    store: Store = "main",
    key: Key = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """Stock leaves: remove QUANTITY units of PRODUCT (refused beyond what is available)."""
    from inventory_cli.application.commands import RemoveStock
    from inventory_cli.domain import values as v

    command = RemoveStock(v.StoreCode(store), v.ProductCode(product), v.Quantity(quantity),
                          v.Reason(reason), _key(key))
    _write(ctx, command, as_json, lambda r: f"Removed {command.quantity} × {command.product} ({command.reason}).", user)


@app.command(context_settings=QUANTITY_CONTEXT, epilog="Example: inventory reserve SKU-1 2 --customer c-17")
@guarded
def reserve(
    ctx: typer.Context,
    product: Product,
    quantity: QuantityArg,
    customer: Annotated[str, typer.Option(help="Who the units are held for.", show_default=False)],
    reservation_id: Annotated[
        Optional[str],
        typer.Option("--id", help="The reservation id to use; also the idempotency key."),
    ] = None,
    ttl: Annotated[
        Optional[str],
        typer.Option("--ttl", metavar="DURATION", help="Release it by itself after 90s, 30m, 2h, 3d…", show_default=False),
    ] = None,
    store: Store = "main",
    user: User = None,
    as_json: Json = False,
) -> None:
    """Hold QUANTITY units of PRODUCT for a customer; prints the reservation id."""
    from inventory_cli.application.commands import ReserveStock
    from inventory_cli.domain import values as v

    command = ReserveStock(
        v.StoreCode(store), v.ProductCode(product), v.Quantity(quantity), v.CustomerCode(customer),
        None if reservation_id is None else v.ReservationId(reservation_id),
        ttl_seconds=None if ttl is None else v.duration_seconds(ttl),
    )
    _write(ctx, command, as_json, lambda r: (
        f"Reserved {r.details['quantity']} × {r.line.product} for {r.details['customer']}: "
        f"reservation {r.details['reservation_id']}"
        + (f", expires {r.details['expires_at']}." if r.details.get("expires_at") else ".")
    ), user)


@app.command(epilog="Example: inventory release R-1A2B3C4D --reason 'customer cancelled'")
@guarded
def release(
    ctx: typer.Context,
    reservation_id: Annotated[str, typer.Argument(metavar="RID", help="The reservation id.", show_default=False)],
    reason: Annotated[str, typer.Option(help="Why the reservation ends.")] = "released",
    key: Key = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """Give a reservation's units back to available."""
    from inventory_cli.application.commands import ReleaseReservation
    from inventory_cli.domain import values as v

    command = ReleaseReservation(v.ReservationId(reservation_id), v.Reason(reason), _key(key))
    _write(ctx, command, as_json, lambda r: (
        f"Released reservation {command.reservation_id} "
        f"({r.details['quantity']} × {r.line.product} for {r.details['customer']})."
    ), user)


@app.command(epilog="Example: inventory fulfill R-1A2B3C4D")
@guarded
def fulfill(
    ctx: typer.Context,
    reservation_id: Annotated[str, typer.Argument(metavar="RID", help="The reservation id.", show_default=False)],
    key: Key = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """The reserved units leave the store: on hand and reserved both drop."""
    from inventory_cli.application.commands import FulfillReservation
    from inventory_cli.domain import values as v

    command = FulfillReservation(v.ReservationId(reservation_id), _key(key))
    _write(ctx, command, as_json, lambda r: (
        f"Fulfilled reservation {command.reservation_id} "
        f"({r.details['quantity']} × {r.line.product} to {r.details['customer']})."
    ), user)


@app.command(context_settings=QUANTITY_CONTEXT, epilog="Example: inventory count SKU-1 7")
@guarded
def count(
    ctx: typer.Context,
    product: Product,
    quantity: Annotated[str, typer.Argument(metavar="QUANTITY", help="The units counted, 0 to 1,000,000,000.", show_default=False)],
    store: Store = "main",
    key: Key = None,
    user: User = None,
    as_json: Json = False,
) -> None:
    """A physical count: set on hand to QUANTITY and record the difference."""
    from inventory_cli.application.commands import CountStock
    from inventory_cli.domain import values as v

    command = CountStock(v.StoreCode(store), v.ProductCode(product), v.CountedQuantity(quantity), _key(key))
    _write(ctx, command, as_json, lambda r: f"Counted {command.quantity} × {command.product}.", user)


def _key(key: str | None) -> str | None:
    from inventory_cli.domain.values import IdempotencyKey

    return None if key is None else IdempotencyKey(key)


# -- queries ---------------------------------------------------------------------------

AllStores = Annotated[bool, typer.Option("--all-stores", help="Every store, not only --store.")]
OptionalProduct = Annotated[Optional[str], typer.Argument(metavar="PRODUCT", help="One product code; all when omitted.", show_default=False)]


@app.command(epilog="Example: inventory stock SKU-1 --all-stores")
@guarded
def stock(
    ctx: typer.Context,
    product: OptionalProduct = None,
    all_stores: AllStores = False,
    low: Annotated[bool, typer.Option("--low", help="Only lines whose available is at or below their reorder point.")] = False,
    store: Store = "main",
    as_json: Json = False,
) -> None:
    """Current stock, from the projections."""
    from inventory_cli.application import queries
    from inventory_cli.domain import values as v

    store_code = None if all_stores else v.StoreCode(store)
    product_code = None if product is None else v.ProductCode(product)
    lines = _read(ctx, lambda s: queries.stock(s, store_code, product_code, low=low))
    if low:
        empty = "No line is at or below its reorder point" + (f" in store {store_code}." if store_code else ".")
    else:
        empty = "No stock recorded yet" + (f" in store {store_code}." if store_code else ".")
    _print_lines(lines, as_json, empty)


@app.command(epilog="Example: inventory history SKU-1 --since 2026-11-01 --limit 20\n\n"
             "Example (the whole store, for an end-of-day review): inventory history --since 2026-11-27")
@guarded
def history(
    ctx: typer.Context,
    product: OptionalProduct = None,
    since: Annotated[Optional[str], typer.Option(help="From this date or time on (inclusive; local time unless an offset is given).", show_default=False)] = None,
    until: Annotated[Optional[str], typer.Option(help="Up to this date or time (inclusive).", show_default=False)] = None,
    limit: Annotated[Optional[int], typer.Option(min=0, help="Keep only the latest N events (oldest first).", show_default=False)] = None,
    store: Store = "main",
    as_json: Json = False,
) -> None:
    """Events in order, each with the balances after it: of one product, or of the whole store."""
    from inventory_cli.application import queries
    from inventory_cli.cli import render
    from inventory_cli.domain import values as v

    store_code = v.StoreCode(store)
    product_code = None if product is None else v.ProductCode(product)
    since_at, until_at = _time(since, "--since"), _time(until, "--until", end_of_day=True)
    if product_code is None:
        entries = _read(ctx, lambda s: queries.store_history(s, store_code, since=since_at,
                                                            until=until_at, limit=limit))
    else:
        entries = _read(ctx, lambda s: queries.history(s, store_code, product_code, since=since_at,
                                                      until=until_at, limit=limit))
    if as_json:
        render.print_json([render.history_json(e) for e in entries])
    elif not entries:
        subject = f"{product_code} in store {store_code}" if product_code else f"store {store_code}"
        render.print_message(f"No events for {subject}" + (" in that period." if since or until else "."))
    else:
        render.print_history_table(entries, with_product=product_code is None)


@app.command(epilog="Example: inventory replay SKU-1 --until 2026-11-01T18:00")
@guarded
def replay(
    ctx: typer.Context,
    product: OptionalProduct = None,
    all_stores: AllStores = False,
    until: Annotated[Optional[str], typer.Option(help="Stock as it was at this date or time (on occurred_at, inclusive).", show_default=False)] = None,
    position: Annotated[Optional[int], typer.Option(min=0, help="Stock as it was after the event at this log position.", show_default=False)] = None,
    store: Store = "main",
    as_json: Json = False,
) -> None:
    """Time travel: stock as it was, computed from the event log alone."""
    from inventory_cli.application import queries
    from inventory_cli.domain import values as v

    if until is not None and position is not None:
        raise UsageProblem("Give either --until or --position, not both.")
    store_code = None if all_stores else v.StoreCode(store)
    product_code = None if product is None else v.ProductCode(product)
    until_at = _time(until, "--until", end_of_day=True)
    lines = _read(ctx, lambda s: queries.replay(s, store_code, product_code, position=position, until=until_at))
    _print_lines(lines, as_json, "No stock at that point.")


@app.command("rebuild-projections", epilog="Example: inventory rebuild-projections --check --json")
@guarded
def rebuild_projections(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option("--check", help="Only compare the projections with the log; exit 1 on any difference.")] = False,
    as_json: Json = False,
) -> None:
    """Rebuild every projection from the log (safe to run from cron while people work)."""
    from inventory_cli.cli import render

    started = time.perf_counter()
    store = _settings(ctx).open(create=False)
    try:
        if store is None:
            events = streams = 0
            differences: list = []
        else:
            report = store.check_projections() if check else store.rebuild_projections()
            events, streams, differences = report.events, report.streams, report.differences
    finally:
        if store is not None:
            store.close()
    document: dict = {"events": events, "streams": streams, "seconds": round(time.perf_counter() - started, 3)}
    if check:
        document["ok"] = not differences
        document["differences"] = differences
    if as_json:
        render.print_json(document)
    elif check:
        render.print_message(
            f"Projections match the log ({events} events, {streams} streams)." if not differences
            else f"{render.plural(len(differences), 'projection row')} "
                 f"{'differs' if len(differences) == 1 else 'differ'} from the log; run "
                 "`inventory rebuild-projections` to rebuild them."
        )
    else:
        render.print_message(f"Rebuilt the projections from {events} events over {streams} streams "
                             f"in {document['seconds']} s.")
    if differences:
        raise typer.Exit(EXIT_REFUSED)


@app.command("import", epilog="Example: inventory import deliveries.csv --batch-size 5000")
@guarded
def import_(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="CSV or NDJSON file, or - for stdin (the default).")] = "-",
    fmt: Annotated[Optional[str], typer.Option("--format", help="csv or ndjson (default: from the extension; ndjson for stdin).", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Commit every N rows (each batch all or nothing); every row then needs an id.", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report without writing.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary on success.")] = False,
    store: Store = "main",
    user: User = None,
    as_json: Json = False,
) -> None:
    """Apply a batch of commands from a file, all or nothing."""
    from inventory_cli.cli.import_command import import_file
    from inventory_cli.domain import values as v

    if fmt is not None and fmt not in ("csv", "ndjson"):
        raise UsageProblem(f"--format must be csv or ndjson, not {fmt!r}.")
    import_file(_settings(ctx), file, fmt, store_code=v.StoreCode(store), actor=_actor(user),
                batch_size=batch_size, dry_run=dry_run, quiet=quiet, as_json=as_json)


def _read(ctx: typer.Context, query):
    store = _settings(ctx).open(create=False)
    try:
        return query(store)
    finally:
        if store is not None:
            store.close()


def _print_lines(lines, as_json: bool, empty_message: str) -> None:
    from inventory_cli.cli import render

    if as_json:
        render.print_json([line.as_dict() for line in lines])
    elif not lines:
        render.print_message(empty_message)
    else:
        render.print_stock_table(lines)


@app.command(epilog="Example: inventory verify --anchor 1200:3f5a…\n\n"
             "Exit 0 when the chain and the projections hold; 1 naming the first bad position.")
@guarded
def verify(
    ctx: typer.Context,
    anchor: Annotated[Optional[str], typer.Option(metavar="POSITION:HASH", help="A head written down earlier (from `verify --json`) that the chain must still pass through.", show_default=False)] = None,
    as_json: Json = False,
) -> None:
    """Recompute the hash chain of the log and compare the projections with it."""
    from inventory_cli.cli import render

    anchor_point = _anchor(anchor)
    store = _settings(ctx).open(create=False)
    try:
        if store is None:
            document = {"ok": anchor_point is None, "events": 0, "first_bad_position": None,
                        "projections_ok": True, "head_position": 0, "head_hash": None}
            if anchor_point is not None:
                document["anchor_ok"] = False
        else:
            chain = store.verify_chain(anchor_point)
            projections_ok = not store.check_projections().differences
            document = {
                "ok": chain.first_bad_position is None and projections_ok and chain.anchor_ok is not False,
                "events": chain.events,
                "first_bad_position": chain.first_bad_position,
                "projections_ok": projections_ok,
                "head_position": chain.head_position,
                "head_hash": chain.head_hash,
            }
            if chain.anchor_ok is not None:
                document["anchor_ok"] = chain.anchor_ok
    finally:
        if store is not None:
            store.close()
    if as_json:
        render.print_json(document)
    else:
        render.print_message(render.verify_sentence(document, anchor))
    if not document["ok"]:
        raise typer.Exit(EXIT_REFUSED)


def _anchor(text: str | None) -> tuple[int, str] | None:
    if text is None:
        return None
    position, _, digest = text.partition(":")
    digest = digest.strip().lower()
    if not position.strip().isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise UsageProblem(
            f"--anchor must be POSITION:HASH, e.g. 1200:{'0' * 64} (from `inventory verify --json`); "
            f"got {text!r}."
        )
    return int(position), digest


@app.command(epilog="Example: inventory diff --since 2026-11-26 --until 2026-11-27\n\n"
             "Example: inventory diff SKU-1 --from-position 100 --to-position 250 --json")
@guarded
def diff(
    ctx: typer.Context,
    product: OptionalProduct = None,
    all_stores: AllStores = False,
    since: Annotated[Optional[str], typer.Option(help="Compare from the state at this date or time …", show_default=False)] = None,
    until: Annotated[Optional[str], typer.Option(help="… to the state at this one (default: now).", show_default=False)] = None,
    from_position: Annotated[Optional[int], typer.Option(min=0, help="Compare from the state after this log position …", show_default=False)] = None,
    to_position: Annotated[Optional[int], typer.Option(min=0, help="… to the state after this one (default: now).", show_default=False)] = None,
    store: Store = "main",
    as_json: Json = False,
) -> None:
    """What changed in each stock line between two times or two log positions."""
    from inventory_cli.application import queries
    from inventory_cli.cli import render
    from inventory_cli.domain import values as v

    by_time = since is not None or until is not None
    by_position = from_position is not None or to_position is not None
    if by_time and by_position:
        raise UsageProblem("Compare either times (--since/--until) or positions (--from-position/--to-position), not both.")
    if since is None and from_position is None:
        raise UsageProblem("Say where to start: --since TIME or --from-position N.")
    store_code = None if all_stores else v.StoreCode(store)
    product_code = None if product is None else v.ProductCode(product)
    since_at, until_at = _time(since, "--since", end_of_day=True), _time(until, "--until", end_of_day=True)
    changes = _read(ctx, lambda s: queries.diff(
        s, store_code, product_code, from_position=from_position, to_position=to_position,
        since=since_at, until=until_at,
    ))
    documents = [change.as_dict() for change in changes]
    if as_json:
        render.print_json(documents)
    elif not documents:
        render.print_message("No stock line changed between those points.")
    else:
        render.print_diff_table(documents)


@app.command(epilog="Example: inventory export --after-position 1200 > events.ndjson")
@guarded
def export(
    ctx: typer.Context,
    after_position: Annotated[int, typer.Option(min=0, help="Only events after this position (resume from the last one you saw).")] = 0,
    until: Annotated[Optional[str], typer.Option(help="Only events that occurred up to this date or time.", show_default=False)] = None,
) -> None:
    """Write the events as NDJSON in position order: the feed for backups and other systems."""
    from inventory_cli.cli import render

    until_at = _time(until, "--until", end_of_day=True)
    store = _settings(ctx).open(create=False)
    if store is None:
        return
    try:
        with store.snapshot():
            render.write_ndjson(render.export_json(e) for e in store.read_log(after_position=after_position, until_time=until_at))
    finally:
        store.close()


def _time(text: str | None, option: str, *, end_of_day: bool = False) -> str | None:
    from inventory_cli.timestamps import parse_user_time

    if text is None:
        return None
    try:
        return parse_user_time(text, end_of_day=end_of_day)
    except ValueError as error:
        raise UsageProblem(f"{option}: {error}") from None


def main() -> None:
    try:
        _only_the_command_asked_for(sys.argv[1:])(prog_name="inventory")
    finally:
        # The process ends here, and Python's exit would walk every object that typer,
        # pydantic and rich created, collection after collection (25-40 ms, a sixth
        # of a command). Frozen, they are left to the operating system; the rest of
        # a normal exit (flushing, closing) runs as usual. Every store is closed by now.
        gc.freeze()


def _only_the_command_asked_for(args: list[str]) -> typer.Typer:
    """The app with just the command being run, when that is clear from the arguments.

    Typer builds every command's parameters at each start (~15 ms for all of
    them), and each command here is a fresh process: building one is enough.
    Help, completion and unknown names get the whole app.
    """
    if any(name.endswith("_COMPLETE") for name in os.environ):
        return app
    position = 0
    while position < len(args) and args[position].startswith("-"):
        if args[position] in ("--help", "-h", "--version"):
            return app
        position += 2 if args[position] == "--db" else 1
    if position >= len(args):
        return app
    name = args[position]
    commands = [c for c in app.registered_commands if _command_name(c) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:
        return app
    lite = typer.Typer(**_APP_SETTINGS)
    lite.registered_callback = app.registered_callback
    lite.registered_commands = commands
    lite.registered_groups = groups
    return lite


def _command_name(info) -> str:
    return info.name or info.callback.__name__.replace("_", "-")


# Registers the store-operation commands on `app` (it imports the helpers above).
from inventory_cli.cli import store_operations  # noqa: E402, F401
