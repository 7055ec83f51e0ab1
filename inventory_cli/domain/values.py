"""Validated value objects: codes, free text and quantities.

They subclass ``str`` and ``int`` so that they flow unchanged into SQL and JSON,
and can only be built valid.
"""

from __future__ import annotations

import unicodedata

from inventory_cli.domain.errors import InvalidValue

MAX_QUANTITY = 1_000_000_000
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _clean_text(value: object, what: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidValue(f"{what} must be text, not {type(value).__name__}.")
    text = unicodedata.normalize("NFC", value)
    if not text:
        raise InvalidValue(f"{what} must not be empty.")
    if len(text) > max_length:
        raise InvalidValue(
            f"{what} is {len(text)} characters long; at most {max_length} are allowed."
        )
    if text != text.strip():
        raise InvalidValue(f"{what} {text!r} has leading or trailing white space; remove it.")
    if not text.isprintable() and any(
        unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in text
    ):
        raise InvalidValue(f"{what} {text!r} contains a control character; remove it.")
    return text


class Code(str):
    """An identifier: 1 to 64 characters, NFC, no outer white space, no control characters."""

    what = "code"
    max_length = 64

    def __new__(cls, value: object) -> Code:
        if type(value) is cls:
            return value  # type: ignore[return-value]
        return super().__new__(cls, _clean_text(value, cls.what, cls.max_length))


class ProductCode(Code):
    what = "product code"


class StoreCode(Code):
    what = "store code"


class CustomerCode(Code):
    what = "customer"


class ReservationId(Code):
    what = "reservation id"


class TransferId(Code):
    what = "transfer id"


class ProductName(Code):
    what = "product name"
    max_length = 200


class Actor(Code):
    what = "user"


class IdempotencyKey(Code):
    what = "id"
    max_length = 128


class Reason(Code):
    what = "reason"
    max_length = 200


class Quantity(int):
    """A number of units moved: a whole number from 1 to 1,000,000,000."""

    minimum = 1
    what = "quantity"

    def __new__(cls, value: object) -> Quantity:
        number = _whole_number(value, cls.what, cls.minimum)
        if not cls.minimum <= number <= MAX_QUANTITY:
            raise InvalidValue(
                f"{cls.what} must be a whole number from {cls.minimum:,} to {MAX_QUANTITY:,}; "
                f"got {value}."
            )
        return super().__new__(cls, number)


class CountedQuantity(Quantity):
    """A physical count: a whole number from 0 to 1,000,000,000."""

    minimum = 0
    what = "counted quantity"


class ReorderPoint(Quantity):
    minimum = 0
    what = "reorder point"


def _whole_number(value: object, what: str, minimum: int) -> int:
    if isinstance(value, bool):
        raise InvalidValue(f"{what} must be a whole number, not {value}.")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        if len(value) > 12:  # far beyond the maximum; avoid huge int parsing
            raise InvalidValue(f"{what} must be at most {MAX_QUANTITY:,}; got {value[:20]}….")
        return int(value)
    shown = repr(value) if isinstance(value, str) else str(value)
    raise InvalidValue(
        f"{what} must be a whole number from {minimum} to {MAX_QUANTITY:,}; got {shown[:40]}."
    )


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TTL_SECONDS = 366 * 86400


def duration_seconds(text: str) -> int:
    """A duration like 90s, 30m, 2h or 3d, in seconds (at most a year)."""
    value = text.strip().lower()
    unit = _DURATION_UNITS.get(value[-1:]) if value else None
    if unit is None or not value[:-1].isascii() or not value[:-1].isdigit():
        raise InvalidValue(f"a duration is a whole number and a unit, like 90s, 30m, 2h or 3d; got {text!r}.")
    seconds = int(value[:-1]) * unit
    if not 0 < seconds <= MAX_TTL_SECONDS:
        raise InvalidValue(f"a duration must be more than 0 and at most 366d; got {text!r}.")
    return seconds
