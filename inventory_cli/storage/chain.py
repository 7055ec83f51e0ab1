"""How events are stored: their JSON payload, and the hash chain that makes the log tamper-evident.

Backend-neutral: every storage adapter encodes, decodes and chains events the same way.

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

import json
from hashlib import sha256

from inventory_cli.domain.events import Event, event_data, event_from_record

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


# -- how an event is stored: its payload as JSON text, and back ---------------------------

# Built once: json.dumps with options builds a new encoder at every call.
_PAYLOAD_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_PAYLOADS: dict[tuple[object, ...], str] = {}


def payload(event: Event) -> str:
    """The event's JSON payload (``data``); repeated payloads (same type and reason) are encoded once."""
    key = (type(event), event[1:])
    text = _PAYLOADS.get(key)
    if text is None:
        text = _PAYLOAD_ENCODER.encode(event_data(event))
        if len(_PAYLOADS) > 4096:
            _PAYLOADS.clear()
        _PAYLOADS[key] = text
    return text


_SHAPES: dict[tuple[str, str], tuple[type, tuple[object, ...]]] = {}
_EVENTS: dict[tuple[str, int, str], Event] = {}


def stored_event(type_name: str, quantity: int, data: str) -> Event:
    """A stored event as a domain event. The common short payloads ("{}", a reason)
    are parsed and checked once per type, and a frequent event (same type, quantity
    and payload) is built once: events are immutable, so one instance serves all."""
    key = (type_name, quantity, data)
    event = _EVENTS.get(key)
    if event is not None:
        return event
    shape = _SHAPES.get((type_name, data))
    if shape is None:
        event = event_from_record(type_name, quantity, json.loads(data))
        if len(data) > 40:
            return event
        if len(_SHAPES) > 4096:
            _SHAPES.clear()
        _SHAPES[type_name, data] = (type(event), tuple(event)[1:])
    else:
        cls, rest = shape
        event = tuple.__new__(cls, (quantity, *rest))  # type: ignore[assignment]
    if len(_EVENTS) > 4096:
        _EVENTS.clear()
    _EVENTS[key] = event
    return event
