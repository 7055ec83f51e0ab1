"""Errors of the application layer (the domain's own are in ``domain.errors``)."""


class RetriesExhausted(Exception):
    """A write kept conflicting with other writers (exit 75)."""
