"""Errors of the storage adapters, kept apart so that the CLI can import them cheaply."""

from inventory_cli.domain.errors import RuleViolation


class StorageError(Exception):
    """The database cannot be used (exit 74)."""


class StorageBusy(Exception):
    """The database stayed locked by another writer (exit 75)."""


class ConnectionLost(StorageBusy):
    """The connection to the database server was lost, and could not be made again (exit 75)."""


class ConcurrencyConflict(Exception):
    """Another writer appended to the stream first; the command may be retried."""


class TargetNotEmpty(RuleViolation):
    """``restore`` loads into an empty database only (a refusal: exit 1)."""
