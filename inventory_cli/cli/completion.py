"""TAB completion from the database in force: product and store codes, open
reservation and transfer ids.

Each TAB press is a fresh process, so these read the projections with the plain
sqlite3 module, read-only (a missing file stays missing), and import nothing
heavier. The database is the one the command line would use: --db as parsed so
far, else INVENTORY_DB, else the configuration file's db, else the default.
Any problem completes nothing: a shell must never see a traceback.
"""

from __future__ import annotations

import os

import typer


def _database(ctx: typer.Context) -> str | None:
    node: typer.Context | None = ctx
    while node is not None:
        if node.params.get("db"):
            return node.params["db"]
        node = node.parent
    if os.environ.get("INVENTORY_DB"):
        return os.environ["INVENTORY_DB"]
    from inventory_cli.cli import config

    try:
        configured = config.load().get("db")
    except config.ConfigProblem:
        return None
    if configured:
        return configured
    if config.sys.platform.startswith("linux"):
        base = os.environ.get("XDG_DATA_HOME", "").strip() or os.path.expanduser("~/.local/share")
        return os.path.join(base, "inventory-cli", "inventory.db")
    from platformdirs import user_data_dir

    return os.path.join(user_data_dir("inventory-cli", appauthor=False), "inventory.db")


def _query(ctx: typer.Context, sql: str, parameters: tuple = ()) -> list[str]:
    import sqlite3

    path = _database(ctx)
    if not path or not os.path.isfile(path):
        return []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2)
        try:
            return [row[0] for row in conn.execute(sql, parameters)]
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def _safe(complete):
    """Any error completes nothing."""
    import functools

    @functools.wraps(complete)
    def wrapper(ctx: typer.Context, incomplete: str) -> list[str]:
        try:
            return complete(ctx, incomplete)
        except Exception:
            return []

    return wrapper


def _starting(values: list[str], incomplete: str) -> list[str]:
    return [value for value in values if value.startswith(incomplete)]


def _store_in_force(ctx: typer.Context) -> str | None:
    if ctx.params.get("all_stores"):
        return None
    source = ctx.get_parameter_source("store")
    if ctx.params.get("store") and source is not None and source.name != "DEFAULT":
        return ctx.params["store"]  # typed, or INVENTORY_STORE
    from inventory_cli.cli import config

    try:
        return config.load().get("store") or "main"
    except config.ConfigProblem:
        return "main"


@_safe
def products(ctx: typer.Context, incomplete: str) -> list[str]:
    store = _store_in_force(ctx)
    if store is None or "store" not in ctx.params:  # no --store on this command: every store's
        codes = _query(ctx, "SELECT DISTINCT product FROM stock ORDER BY product")
    else:
        codes = _query(ctx, "SELECT product FROM stock WHERE store = ? ORDER BY product", (store,))
    return _starting(codes, incomplete)


@_safe
def stores(ctx: typer.Context, incomplete: str) -> list[str]:
    return _starting(_query(ctx, "SELECT DISTINCT store FROM stock ORDER BY store"), incomplete)


@_safe
def reservations(ctx: typer.Context, incomplete: str) -> list[str]:
    return _starting(_query(
        ctx, "SELECT reservation_id FROM reservations WHERE status = 'open' ORDER BY reservation_id"
    ), incomplete)


@_safe
def transfers(ctx: typer.Context, incomplete: str) -> list[str]:
    return _starting(_query(
        ctx, "SELECT transfer_id FROM transfers WHERE status = 'open' ORDER BY transfer_id"
    ), incomplete)
