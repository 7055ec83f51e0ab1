"""inventory: an event-sourced stock ledger for stores, on one SQLite file."""

__version__ = "0.1.0"
