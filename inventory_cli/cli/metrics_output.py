"""`inventory metrics`: the figures in the Prometheus text format, via prometheus_client.

prometheus_client is imported here only, when the command runs; without it the
command says how to install it (exit 2).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from inventory_cli.cli.boundary import UsageProblem
from inventory_cli.domain.events import EVENT_TYPES
from inventory_cli.storage.port import FeedFigures

PREFIX = "inventory_"
INSTALL_HINT = (
    "`inventory metrics` needs the package prometheus_client: install it with "
    "pip install 'inventory-cli[metrics]' (or pip install prometheus_client)."
)

# (name without the prefix, help, the StoreFigures field)
_PER_STORE = (
    ("stock_lines", "Stock lines (store + product) in the store.", "stock_lines"),
    ("low_stock_lines", "Stock lines whose available is at or below their reorder point.",
     "low_stock_lines"),
    ("open_reservations", "Open reservations, overdue ones included.", "open_reservations"),
    ("overdue_reservations", "Open reservations past their expiry (`inventory expire` releases them).",
     "overdue_reservations"),
    ("incoming_transfers", "Open transfers on their way to the store.", "incoming_transfers"),
)


def _prometheus() -> Any:
    try:
        import prometheus_client.core as core
    except ImportError:
        raise UsageProblem(INSTALL_HINT) from None
    return core


def check_installed() -> None:
    """Refuse early (exit 2, nothing read) when prometheus_client is missing."""
    _prometheus()


class _FiguresCollector:
    """A one-shot collector: the figures already read, as metric families."""

    def __init__(self, figures: FeedFigures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Any]:
        core = _prometheus()
        figures = self.figures
        events = core.CounterMetricFamily(
            PREFIX + "events", "Events in the log, by type.", labels=["type"]
        )
        counted = dict(figures.events_by_type)
        for name in sorted(EVENT_TYPES.keys() | counted.keys()):
            events.add_metric([name], counted.get(name, 0))
        yield events
        yield core.GaugeMetricFamily(
            PREFIX + "head_position", "Position of the last event in the log.",
            value=figures.head_position,
        )
        for name, text, field in _PER_STORE:
            family = core.GaugeMetricFamily(PREFIX + name, text, labels=["store"])
            for store in figures.stores:
                family.add_metric([store.store], getattr(store, field))
            yield family
        lag = core.GaugeMetricFamily(
            PREFIX + "consumer_lag", "Events a consumer (export --consumer) is behind the head.",
            labels=["consumer"],
        )
        position = core.GaugeMetricFamily(
            PREFIX + "consumer_position", "Position a consumer saved last.", labels=["consumer"]
        )
        for consumer in figures.consumers:
            lag.add_metric([consumer.consumer], consumer.lag)
            position.add_metric([consumer.consumer], consumer.position)
        yield lag
        yield position


def _registry(figures: FeedFigures) -> Any:
    core = _prometheus()
    registry = core.CollectorRegistry(auto_describe=False)
    registry.register(_FiguresCollector(figures))
    return registry


def exposition(figures: FeedFigures) -> str:
    """The text format, as Prometheus scrapes it."""
    from prometheus_client import generate_latest

    return generate_latest(_registry(figures)).decode("utf-8")


def write_textfile(figures: FeedFigures, path: str) -> None:
    """Write atomically for node_exporter's textfile collector, with a new file's permissions.

    write_to_textfile writes a temporary file beside PATH and renames it; the mode
    is then checked against what the umask in force gives a new file, and set if a
    version of the library made its temporary file otherwise (mkstemp's 0600).
    """
    registry = _registry(figures)
    from prometheus_client import write_to_textfile

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageProblem(f"--textfile {path}: the folder {folder} does not exist; create it first.")
    if os.path.isdir(path):
        raise UsageProblem(f"--textfile {path} is a folder; give a file path ending in .prom.")
    try:
        write_to_textfile(path, registry)
        wanted = 0o666 & ~_umask()
        if os.stat(path).st_mode & 0o777 != wanted:
            os.chmod(path, wanted)
    except OSError as error:
        raise UsageProblem(f"Cannot write --textfile {path}: {error.strerror}.") from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
