"""The ApiKey aggregate: who may call Kasal, for which tenant, with which role.

Only the SHA-256 of a key enters an event; the key itself is shown once, at issue.
"""

from __future__ import annotations

from eventsourcing.domain import event

from domain.base import KasalAggregate, check_text
from domain.errors import AlreadyArchived, InvalidDefinition

ROLES = ("admin", "editor", "operator", "viewer")


class ApiKey(KasalAggregate):
    AGGREGATE_TYPE = "api_key"

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
