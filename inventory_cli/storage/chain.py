"""The hash chain that makes the event log tamper-evident.

Each event's ``hash`` is the SHA-256 (lowercase hex) of the UTF-8 text made of
the previous event's hash (64 zeros before the first event) and the event's
stored fields, one per line, in this order:

    previous_hash, position, store, product, version, type, quantity, data,
    occurred_at, recorded_at, actor, idempotency_key

``data`` is the JSON text exactly as stored in ``events.data``; an absent
idempotency key is the empty string. No field can contain a line break (codes
refuse control characters and JSON escapes them), so the text is unambiguous.
docs/audit.md shows a ten-line script that checks a whole file.
"""

from __future__ import annotations

from hashlib import sha256

GENESIS = "0" * 64


def event_hash(
    previous: str,
    position: int,
    store: str,
    product: str,
    version: int,
    type_name: str,
    quantity: int,
    data: str,
    occurred_at: str,
    recorded_at: str,
    actor: str,
    idempotency_key: str | None,
) -> str:
    text = (
        f"{previous}\n{position}\n{store}\n{product}\n{version}\n{type_name}\n{quantity}\n"
        f"{data}\n{occurred_at}\n{recorded_at}\n{actor}\n{idempotency_key or ''}"
    )
    return sha256(text.encode()).hexdigest()


# The columns, in event_hash's order after `previous`, as SQL over events e JOIN streams s.
HASHED_COLUMNS_SQL = (
    "e.position, s.store, s.product, e.version, e.type, e.quantity, e.data,"
    " e.occurred_at, e.recorded_at, e.actor, e.idempotency_key"
)
