"""Validated value objects: codes, free text and quantities.

They subclass ``str`` and ``int`` so that they flow unchanged into SQL and JSON,
and can only be built valid.
"""

from __future__ import annotations

import unicodedata

from inventory_cli.domain.errors import InvalidValue

MAX_QUANTITY = 1_000_000_000
# Line breaks and lone surrogates are refused everywhere; codes also refuse every
# format character (zero-width spaces, direction marks, soft hyphens), so that two
# codes that look the same are the same.
_LINE_BREAKS = frozenset({"Cc", "Zl", "Zp"})
_CODE_REFUSED = _LINE_BREAKS | {"Cf"}
# Free text may hold format characters (a zero-width joiner in a name), but not the
# ones that reorder what follows them on the screen.
_DIRECTION_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class Text(str):
    """Validated text: NFC, 1 to ``max_length`` characters, no outer white space,
    no control characters. Subclasses say what else they refuse."""

    what = "text"
    max_length = 200

    def __new__(cls, value: object) -> Text:
        if type(value) is cls:
            return value  # type: ignore[return-value]
        return str.__new__(cls, cls._clean(value))

    @classmethod
    def checked(cls, value: object) -> str:
        """The value checked and normalised like ``cls(value)``, as a plain ``str``."""
        text = cls._clean(value)
        return text if type(text) is str else str.__str__(text)

    @classmethod
    def _clean(cls, value: object) -> str:
        what = cls.what
        if not isinstance(value, str):
            raise InvalidValue(f"{what} must be text, not {type(value).__name__}.")
        if value.isascii():
            text = value  # NFC already
        else:
            if not value.isprintable() and any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
                # Bytes that are not UTF-8 (an argument or a file in another encoding).
                raise InvalidValue(
                    f"{what} {value[:80]!r} is not valid text: it holds bytes that are not UTF-8; "
                    "give it in UTF-8."
                )
            text = unicodedata.normalize("NFC", value)
        if not text:
            raise InvalidValue(f"{what} must not be empty.")
        if len(text) > cls.max_length:
            raise InvalidValue(
                f"{what} is {len(text)} characters long; at most {cls.max_length} are allowed."
            )
        if text != text.strip():
            raise InvalidValue(f"{what} {text!r} has leading or trailing white space; remove it.")
        if not text.isprintable():
            refused = cls._refused(text)
            if refused is not None:
                raise InvalidValue(f"{what} {text!r} contains {refused}; remove it.")
        return text

    @classmethod
    def _refused(cls, text: str) -> str | None:
        """What the text holds that it may not (None: nothing); only called for text
        that is not all printable."""
        for ch in text:
            if unicodedata.category(ch) in _LINE_BREAKS:
                return f"a control character (U+{ord(ch):04X})"
            if ch in _DIRECTION_OVERRIDES:
                return f"a direction override or isolate (U+{ord(ch):04X})"
        return None


class Code(Text):
    """An identifier: 1 to 64 characters, no control or format characters (Cc, Cf)."""

    what = "code"
    max_length = 64

    @classmethod
    def _refused(cls, text: str) -> str | None:
        for ch in text:
            category = unicodedata.category(ch)
            if category in _CODE_REFUSED:
                kind = "an invisible format character" if category == "Cf" else "a control character"
                return f"{kind} (U+{ord(ch):04X})"
        return None


class FreeText(Text):
    """Free text (reasons, names, customers, users): control characters and direction
    overrides or isolates are refused; other format characters are kept."""


class ProductCode(Code):
    what = "product code"


class StoreCode(Code):
    what = "store code"


class CustomerCode(FreeText):
    what = "customer"
    max_length = 64


class ReservationId(Code):
    what = "reservation id"


class TransferId(Code):
    what = "transfer id"


class ProductName(FreeText):
    what = "product name"
    max_length = 200


class Actor(FreeText):
    what = "user"
    max_length = 64


class IdempotencyKey(Code):
    what = "id"
    max_length = 128


class Reason(FreeText):
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

    @classmethod
    def checked(cls, value: object) -> int:
        """The value checked like ``cls(value)``, as a plain ``int``."""
        return int(cls(value))


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


class ConsumerName(Code):
    """The name a follower of the log saves its position under (``export --consumer``)."""

    what = "consumer name"
