"""UUIDv7 identifiers: time-ordered, so ids sort by creation."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar


def uuid7() -> uuid.UUID:
    """A RFC 9562 version 7 UUID: 48-bit Unix milliseconds, then 74 random bits."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0x0FFF) << 64  # rand_a (12 bits)
    value |= 0b10 << 62  # variant
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF  # rand_b (62 bits)
    return uuid.UUID(int=value)


def new_id() -> str:
    return str(uuid7())


# The id a creating command gives its new aggregate: derived from the tenant and the
# command id, so a retried command creates (and finds) the same aggregate. The
# distributed store detects a retry on the aggregate's own partition, which needs this.
_creation_seed: ContextVar[str | None] = ContextVar("kasal_creation_seed", default=None)


@contextmanager
def creating_for(tenant_id: str, command_id: str) -> Iterator[None]:
    """Within this block, new aggregates take ids derived from (tenant, command id)."""
    token = _creation_seed.set(f"{tenant_id}\x00{command_id}")
    try:
        yield
    finally:
        _creation_seed.reset(token)


def creation_id(aggregate_type: str) -> uuid.UUID:
    """A UUIDv7 for a new aggregate: random, or derived inside ``creating_for``.

    Derived ids keep UUIDv7's layout: the time prefix is the command id's own when that
    is a UUIDv7 (Kasal's generated command ids), so ids still sort by creation; for other
    client keys it is the hash's, and the rest of the bits come from the hash."""
    seed = _creation_seed.get()
    if seed is None:
        return uuid7()
    digest = int.from_bytes(
        hashlib.sha256(f"{seed}\x00{aggregate_type}".encode()).digest()[:16], "big"
    )
    command_id = seed.split("\x00", 1)[1]
    millis = digest >> 80
    with suppress(ValueError):
        parsed = uuid.UUID(command_id)
        if parsed.version == 7:
            millis = parsed.int >> 80
    value = (millis & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= ((digest >> 64) & 0x0FFF) << 64
    value |= 0b10 << 62
    value |= digest & 0x3FFF_FFFF_FFFF_FFFF
    return uuid.UUID(int=value)
