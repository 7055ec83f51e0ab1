"""What every command needs around it: where the store is, who acts, how to run.

`Settings` is made once by the app's callback (from --db) and reached through
`settings_of(ctx)`; `write` and `read` open the store, run, close it.
"""

from __future__ import annotations

import os
import sys

import typer

from inventory_cli.cli.boundary import UsageProblem


class Settings:
    """Where the database is, how long a writer waits for it, whether long output pages."""

    def __init__(self, db: str | None, *, pager: bool = True, configured_db: str | None = None,
                 problem: str | None = None) -> None:
        """--db, else INVENTORY_DB, else the configuration file's `db`, else the default.
        ``problem``: why no command can run as asked (a broken configuration file, an
        empty location), if none can; their help still shows."""
        self.problem = problem
        self.db = db or os.environ.get("INVENTORY_DB") or configured_db or _default_db()
        self.pager = pager

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

    @property
    def is_postgres(self) -> bool:
        return self.db.startswith(("postgresql://", "postgres://"))

    def is_new(self) -> bool:
        """True when the database file does not exist yet (a symbolic link that leads
        nowhere, a loop included, is not new: opening it says what is wrong). A server's
        schema is checked on opening."""
        return not self.is_postgres and not self.db.startswith("file:") and not os.path.lexists(self.db)

    def open(self, *, create: bool, location: str | None = None, tables_now: bool = False):
        """The store (an EmptyStore where there is none yet and ``create`` is false).

        On a server, ``create`` makes the tables in the first write's own transaction
        (a refused one leaves none behind), or at once with ``tables_now`` (migrate).
        """
        location = location or self.db
        if location.startswith(("postgresql://", "postgres://")):
            return _open_postgres(location, create=create, busy_timeout=self.busy_timeout(),
                                  defer_tables=not tables_now)
        from inventory_cli.storage.sqlite import open_store

        seconds = self.busy_timeout()
        store = open_store(location, create=create, busy_timeout=seconds)
        if hasattr(store, "on_wait") and sys.stderr.isatty():
            store.on_wait = lambda: _say_waiting(seconds)
        return store

    def open_feed(self):  # -> LogFeed (SqliteLogFeed | EmptyFeed)
        """The log as a feed, for export --follow/--consumer, consumers and metrics."""
        if self.is_postgres:
            from inventory_cli.storage.postgresql.feed import feed_of

            return feed_of(_open_postgres(self.db, create=False, busy_timeout=self.busy_timeout()))
        from inventory_cli.storage.sqlite.feed import open_feed

        return open_feed(self.db, busy_timeout=self.busy_timeout())


def _say_waiting(seconds: float) -> None:
    sys.stderr.write(f"inventory: waiting for another writer… (up to {seconds:g} s, "
                     "INVENTORY_BUSY_TIMEOUT)\n")
    sys.stderr.flush()


def _open_postgres(url: str, *, create: bool, busy_timeout: float, defer_tables: bool = False):
    """The PostgreSQL store; without the driver installed, a usage error saying how to get it."""
    from importlib.util import find_spec

    if find_spec("psycopg") is None:
        raise UsageProblem(
            "--db is a PostgreSQL URL, but PostgreSQL support is not installed. Install it with "
            "pip install 'inventory-cli[postgresql]' (or pip install -e '.[postgresql]' in a checkout)."
        )
    from inventory_cli.storage.postgresql.store import open_store

    return open_store(url, create=create, busy_timeout=busy_timeout, defer_tables=defer_tables)


def _default_db() -> str:
    from platformdirs import user_data_dir

    return os.path.join(user_data_dir("inventory-cli", appauthor=False), "inventory.db")


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.obj if isinstance(ctx.obj, Settings) else Settings(None)


def actor(user: str | None) -> str:
    """--user or INVENTORY_USER, else the operating system's login name."""
    from inventory_cli.domain.values import Actor

    if user is None:
        import getpass

        try:
            user = getpass.getuser() or "unknown"
        except (OSError, KeyError):
            user = "unknown"
    return Actor(user)


def optional_key(key: str | None) -> str | None:
    """The --id option as an idempotency key, when given."""
    from inventory_cli.domain.values import IdempotencyKey

    return None if key is None else IdempotencyKey(key)


def parse_time(text: str | None, option: str, *, end_of_day: bool = False) -> str | None:
    """A --since/--until value as a timestamp; a usage error naming the option."""
    from inventory_cli.timestamps import parse_user_time

    if text is None:
        return None
    try:
        return parse_user_time(text, end_of_day=end_of_day)
    except ValueError as error:
        raise UsageProblem(f"{option}: {error}") from None


def write(ctx: typer.Context, command, as_json: bool, describe, user: str | None):
    """Run a write command, then print its result: JSON, or describe(result) and the balance.
    Returns the result."""
    from inventory_cli.application.commands import idempotency_key
    from inventory_cli.application.handlers import run_command
    from inventory_cli.cli import render

    who = actor(user)
    settings = settings_of(ctx)
    made_key = settings.is_postgres and idempotency_key(command) is None
    if made_key:
        # A retry after a lost connection must not apply the command twice: on a
        # server every write carries a key, made for this invocation if not given.
        import uuid

        command = command._replace(key=f"auto-{uuid.uuid4().hex}")
    if settings.is_new():
        # Decide against an empty log in memory first, so that a refused first
        # command leaves no database file behind.
        from inventory_cli.storage.sqlite import open_store

        from contextlib import closing

        with closing(open_store(":memory:", create=True)) as probe:
            run_command(probe, command, who)
    store = settings.open(create=True)
    try:
        result = run_command(store, command, who)
    finally:
        store.close()
    if made_key and result.duplicate:
        result = result._replace(duplicate=False)  # our own retry found the command applied
    if as_json:
        render.print_json(render.write_result_json(result))
    else:
        prefix = f"Already done earlier (id {idempotency_key(command)}): " if result.duplicate else ""
        render.print_message(prefix + describe(result) + " " + render.balance_sentence(result.line))
    return result


def read(ctx: typer.Context, query):
    """query(store) on the store opened for reading (an empty one when there is no database yet)."""
    store = settings_of(ctx).open(create=False)
    try:
        return store.run_read(query)  # on a server, once more if the connection is lost
    finally:
        store.close()
