"""One writer process of the PostgreSQL commands benchmark (goal_postgresql, figure 2).

    python pg_writers.py MODE URL_OR_SCHEMA ME COMMANDS PRODUCTS

MODE is `tool` (run_command on the PostgreSQL store), `eventsourcing` (the
library's PostgreSQL persistence, one aggregate per product), `ceiling` (one-row
INSERT transactions) or `locked` (the same, each taking one advisory lock last and
holding it to its COMMIT: the ceiling of any log that keeps positions gap-free in
commit order so, the tool's included). The process connects and warms up, prints "ready", waits
for a line on stdin, runs its commands and prints how many it ran and retried.
"""

from __future__ import annotations

import sys


def plan(me: int, n: int, products: int) -> list[tuple[str, str, int]]:
    """Adds over the shared products, every fourth command a removal of one unit."""
    return [("remove" if i % 4 == 3 else "add", f"P-{(me * 37 + i) % products:04d}", 1 if i % 4 == 3 else 5)
            for i in range(n)]


def tool(url: str, commands) -> int:
    from inventory_cli.application.commands import AddStock, RemoveStock
    from inventory_cli.application.handlers import run_command
    from inventory_cli.domain.errors import RuleViolation
    from inventory_cli.storage.postgresql.store import open_store

    store = open_store(url, create=True)
    store.head_position()
    kinds = {"add": AddStock, "remove": RemoveStock}
    _ready()
    for op, product, quantity in commands:
        try:
            run_command(store, kinds[op]("main", product, quantity))
        except RuleViolation:
            pass
    store.close()
    return 0


def eventsourcing(schema: str, commands) -> int:
    from eventsourcing.application import Application
    from eventsourcing.persistence import IntegrityError

    from es_stock import Stock

    app = Application(env=es_env(schema))
    retries = 0
    _ready()
    for op, product, quantity in commands:
        while True:
            aggregate = app.repository.get(Stock.create_id(product))
            try:
                getattr(aggregate, op)(quantity)
            except ValueError:
                break
            try:
                app.save(aggregate)
                break
            except IntegrityError:  # another process saved this product's next version first
                retries += 1
    app.close()
    return retries


def es_env(schema: str, *, create_table: bool = False) -> dict[str, str]:
    """The library's settings; only the seeding creates its table and function (eight
    writers doing it at once collide in the catalog: "tuple concurrently updated")."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": "test",
        "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432", "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "", "POSTGRES_SCHEMA": schema, "POSTGRES_POOL_SIZE": "1",
        "CREATE_TABLE": "yes" if create_table else "no",
    }


def ceiling(url: str, commands) -> int:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    _ready()
    for op, product, quantity in commands:
        with conn.transaction():
            conn.execute("INSERT INTO ceiling_events (stream, data) VALUES (%s, %s)",
                         (product, f'{{"op":"{op}","quantity":{quantity}}}'))
    conn.close()
    return 0


def locked(url: str, commands) -> int:
    """The ceiling under a log lock held to COMMIT: each one-row INSERT transaction takes one
    transaction-level advisory lock last, in the same round trip as the COMMIT (pipeline mode)."""
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    _ready()
    for op, product, quantity in commands:
        with conn.pipeline():
            conn.execute("BEGIN")
            conn.execute("INSERT INTO ceiling_events (stream, data) VALUES (%s, %s)",
                         (product, f'{{"op":"{op}","quantity":{quantity}}}'))
            conn.execute("SELECT pg_advisory_xact_lock(73)")
            conn.execute("COMMIT")
    conn.close()
    return 0


def _ready() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def main() -> None:
    mode, target, me, n, products = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    commands = plan(me, n, products)
    retries = {"tool": tool, "eventsourcing": eventsourcing, "ceiling": ceiling, "locked": locked}[mode](target, commands)
    print(n, retries, flush=True)


if __name__ == "__main__":
    main()
