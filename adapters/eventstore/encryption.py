"""AES-256-GCM payload encryption, as a decorator around any event store.

Payloads are encrypted before the inner store hashes them, so the hash chain covers the
ciphertext and stays verifiable without the key (and after the key is destroyed).
Readers get the plaintext in ``payload`` and the stored form in ``stored_payload``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from cryptography.exceptions import InvalidTag
from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment

from commands.ports import AppendResult, CommandRecord, EventStore
from domain.envelope import UNREADABLE, NewEvent, RecordedEvent, canonical_json

MARKER = "$encrypted"
ALGORITHM = "AES-256-GCM"


def new_key() -> str:
    """A fresh base64 key for ``KASAL_ENCRYPTION_KEY``."""
    return str(AESCipher.create_key(32))


class PayloadCipher:
    def __init__(self, key: str) -> None:
        try:
            raw = base64.b64decode(key, validate=True)
        except ValueError:
            raise ValueError("the encryption key must be base64 (kasal keygen makes one)") from None
        if len(raw) != 32:
            raise ValueError("the encryption key must be 32 bytes (AES-256), base64-encoded")
        self.cipher = AESCipher(Environment(env={"CIPHER_KEY": key}))

    def encrypt(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        sealed = self.cipher.encrypt(canonical_json(dict(payload)))
        return {MARKER: ALGORITHM, "data": base64.b64encode(sealed).decode("ascii")}

    def decrypt(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        if stored.get(MARKER) != ALGORITHM:
            return dict(stored)  # written before encryption was turned on
        try:
            plain = self.cipher.decrypt(base64.b64decode(stored["data"]))
        except (InvalidTag, ValueError):
            return {UNREADABLE: "the payload's key is not available"}
        result: dict[str, Any] = json.loads(plain)
        return result


class EncryptingEventStore:
    def __init__(self, inner: EventStore, cipher: PayloadCipher) -> None:
        self.inner = inner
        self.cipher = cipher

    def _open(self, event: RecordedEvent) -> RecordedEvent:
        return replace(
            event, payload=self.cipher.decrypt(event.payload), stored_payload=event.payload
        )

    async def append(self, events: Sequence[NewEvent], *, expected_version: int,
                     command: CommandRecord | None = None) -> AppendResult:
        sealed = [replace(e, payload=self.cipher.encrypt(e.payload)) for e in events]
        return await self.inner.append(sealed, expected_version=expected_version, command=command)

    async def read_stream(self, aggregate_id: str) -> list[RecordedEvent]:
        return [self._open(e) for e in await self.inner.read_stream(aggregate_id)]

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        return [self._open(e) for e in await self.inner.read_all(after, limit)]

    async def find_command(self, tenant_id: str, command_id: str) -> CommandRecord | None:
        return await self.inner.find_command(tenant_id, command_id)

    async def head_position(self) -> int:
        return await self.inner.head_position()

    async def close(self) -> None:
        await self.inner.close()
