"""The event envelope and its per-aggregate hash chain.

Every stored event carries the same envelope (ARCHITECTURE.md, "The event envelope").
``hash = SHA-256(prev_hash || canonical_bytes(event))`` where the canonical bytes are
the sorted-key, compact JSON of every envelope field but ``hash`` and ``position``.
The payload is hashed as stored, so an encrypted payload is hashed as ciphertext and
destroying its key never breaks the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from domain.errors import TamperedEvent

GENESIS_HASH = "0" * 64
# the payload of an event whose encryption key this process does not hold (destroyed, or
# not configured): its hash still verifies, its content is gone
UNREADABLE = "$unreadable"


# The envelope's fields in order, each with the longest text it holds (None: a number; the
# payload is JSON): every store and read model that keeps envelopes sizes its columns by it.
ENVELOPE_FIELDS: dict[str, int | None] = {
    "event_id": 36,
    "aggregate_type": 32,
    "aggregate_id": 64,
    "version": None,
    "type": 100,
    "schema_version": None,
    "occurred_at": 40,
    "tenant_id": 100,
    "actor": 200,
    "command_id": 200,
    "correlation_id": 200,
    "causation_id": 200,
    "prev_hash": 64,
    "hash": 64,
}


def is_unreadable(payload: Mapping[str, Any]) -> bool:
    return UNREADABLE in payload


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def utc_now() -> str:
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class NewEvent:
    """An event ready to append: everything but its chain links and position."""

    event_id: str
    aggregate_type: str
    aggregate_id: str
    version: int
    type: str
    schema_version: int
    occurred_at: str
    tenant_id: str
    actor: str
    command_id: str
    correlation_id: str
    causation_id: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class RecordedEvent(NewEvent):
    """An event as stored: chained to its predecessor and placed in the global order.

    ``stored_payload`` holds the payload as it is stored (and hashed) when a decorating
    store decoded it (decrypted) for readers; ``None`` means it is ``payload`` itself.
    """

    prev_hash: str = GENESIS_HASH
    hash: str = ""
    position: int = 0
    stored_payload: Mapping[str, Any] | None = field(default=None, compare=False)


def hashed_fields(event: NewEvent, prev_hash: str) -> dict[str, Any]:
    payload = event.payload
    if isinstance(event, RecordedEvent) and event.stored_payload is not None:
        payload = event.stored_payload
    return {
        "event_id": event.event_id,
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "version": event.version,
        "type": event.type,
        "schema_version": event.schema_version,
        "occurred_at": event.occurred_at,
        "tenant_id": event.tenant_id,
        "actor": event.actor,
        "command_id": event.command_id,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "payload": dict(payload),
        "prev_hash": prev_hash,
    }


def compute_hash(event: NewEvent, prev_hash: str) -> str:
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(canonical_json(hashed_fields(event, prev_hash)))
    return digest.hexdigest()


def seal(event: NewEvent, prev_hash: str, position: int = 0) -> RecordedEvent:
    """Chain ``event`` to ``prev_hash``: the store calls this inside its append."""
    return RecordedEvent(
        **{name: getattr(event, name) for name in NewEvent.__dataclass_fields__},
        prev_hash=prev_hash,
        hash=compute_hash(event, prev_hash),
        position=position,
    )


def log_link(prev_link: str, position: int, event_hash: str) -> str:
    """The log chain's link at ``position``: the previous link, the position and the event's
    own hash. It binds every event to its place in the global order, which the aggregates'
    chains do not: a removed, moved or renumbered event breaks the next link."""
    return hashlib.sha256(f"{prev_link}:{position}:{event_hash}".encode("ascii")).hexdigest()


def with_position(event: RecordedEvent, position: int) -> RecordedEvent:
    return replace(event, position=position)


def verify_chain(events: Iterable[RecordedEvent]) -> int:
    """Check one aggregate's events: versions 1..n without gaps, every link and hash.

    Returns the number of events verified; raises ``TamperedEvent`` naming the first bad one.
    """
    expected_prev = GENESIS_HASH
    count = 0
    for count, event in enumerate(events, start=1):
        if event.version != count:
            raise TamperedEvent(
                f"{event.aggregate_type} {event.aggregate_id}: expected version {count}, "
                f"found {event.version}"
            )
        if event.prev_hash != expected_prev:
            raise TamperedEvent(
                f"{event.aggregate_type} {event.aggregate_id} v{event.version}: prev_hash does "
                "not match the previous event's hash"
            )
        if compute_hash(event, event.prev_hash) != event.hash:
            raise TamperedEvent(
                f"{event.aggregate_type} {event.aggregate_id} v{event.version}: hash does not "
                "match the event's content"
            )
        expected_prev = event.hash
    return count
