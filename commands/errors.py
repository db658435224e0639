"""Named errors of the command side. api/errors.py maps each to one HTTP status."""

from __future__ import annotations

from domain.errors import DomainError


class NotFound(DomainError):
    """No such aggregate for this tenant (another tenant's aggregate is not found either)."""


class IdempotencyKeyReused(DomainError):
    """A command id sent again with a different command."""


class StaleVersion(DomainError):
    """``If-Match`` names a version the aggregate has moved past."""

    def __init__(self, aggregate_id: str, expected: int, current: int) -> None:
        super().__init__(
            f"{aggregate_id} is at version {current}, not {expected}: reload and retry"
        )
        self.current = current
