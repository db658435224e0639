"""The ApiKey aggregate: who may call Kasal, for which tenant, with which role.

Only the SHA-256 of a key enters an event; the key itself is shown once, at issue.
"""

from __future__ import annotations

import hashlib
import secrets

from eventsourcing.domain import event

from domain.base import KasalAggregate, check_text
from domain.errors import AlreadyArchived, InvalidDefinition
from domain.vocabulary import AggregateType, Role

ROLES = tuple(role.value for role in reversed(Role))  # admin first


class ApiKey(KasalAggregate):
    AGGREGATE_TYPE = AggregateType.API_KEY

    @classmethod
    def issue(cls, tenant_id: str, name: str, role: str, key_hash: str, prefix: str) -> ApiKey:
        if role not in ROLES:
            raise InvalidDefinition(f"role must be one of {', '.join(ROLES)}")
        if len(key_hash) != 64:
            raise InvalidDefinition("key_hash must be a SHA-256 hex digest")
        return cls(
            tenant_id=check_text("tenant", tenant_id, max_length=100),
            name=check_text("name", name, max_length=200),
            role=role,
            key_hash=key_hash,
            prefix=prefix,
        )

    @event("Issued")
    def __init__(self, tenant_id: str, name: str, role: str, key_hash: str, prefix: str) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.role = role
        self.key_hash = key_hash
        self.prefix = prefix
        self.revoked = False

    def revoke(self) -> None:
        if self.revoked:
            raise AlreadyArchived(f"api key {self.id} is already revoked")
        self._revoked()

    @event("Revoked")
    def _revoked(self) -> None:
        self.revoked = True


KEY_PREFIX = "kasal_"


def generate_key() -> str:
    """A new API key: 256 random bits. Shown once; only its hash is kept."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """SHA-256 suffices: keys carry 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(key: str) -> str:
    """What lists show of a key, to tell keys apart."""
    return key[: len(KEY_PREFIX) + 6]
