"""Domain errors. The CLI maps each family to one exit code."""


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


class InvalidValue(DomainError, ValueError):
    """An argument is malformed: a usage error, nothing is written."""


class RuleViolation(DomainError):
    """A well-formed command that a business rule refuses."""


class InsufficientStock(RuleViolation):
    pass


class CountBelowReserved(RuleViolation):
    pass


class UnknownReservation(RuleViolation):
    pass


class ReservationClosed(RuleViolation):
    pass


class ReservationIdTaken(RuleViolation):
    pass


class IdempotencyConflict(RuleViolation):
    """The same idempotency key was used before for different content."""


class OccurredAtOutOfOrder(RuleViolation):
    """An event would be dated before the latest event of its stream."""


class UnknownTransfer(RuleViolation):
    pass


class TransferClosed(RuleViolation):
    pass


class NotRevertible(RuleViolation):
    """`revert` of an unknown position, another event type, or an event already reverted."""


class InvalidTransfer(RuleViolation):
    """A transfer to the same store, or a receipt of more than was shipped."""
