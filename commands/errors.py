"""Named errors of the command side. api/errors.py maps each to one HTTP status."""

from __future__ import annotations

from domain.errors import DomainError


class NotFound(DomainError):
    """No such aggregate for this tenant (another tenant's aggregate is not found either)."""


class IdempotencyKeyReused(DomainError):
    """A command id sent again with a different command."""


class MissingCredentials(DomainError):
    """A run's model needs provider credentials this deployment does not have."""


class StaleVersion(DomainError):
    """``If-Match`` names a version the aggregate has moved past."""

    def __init__(self, aggregate_id: str, expected: int, current: int) -> None:
        super().__init__(
            f"{aggregate_id} is at version {current}, not {expected}: reload and retry"
        )
        self.aggregate_id = aggregate_id
        self.expected = expected
        self.current = current


# --- the event store's errors (every EventStore raises these) --------------------------
class StoreError(Exception):
    """Base of the event store's named errors."""


class ConcurrencyError(StaleVersion, StoreError):
    """The store found the aggregate past the expected version (a concurrent change): the
    bus retries the command on the fresh state, or answers ``StaleVersion``."""


class DuplicateCommand(StoreError):
    """A command id that the store has already recorded (a concurrent retry won the race)."""


class StoreUnavailable(StoreError):
    """The store could not confirm that an append is durable (a broker down, no writer).

    The append may still happen: retry the command with the same id, which either
    finds the first result or appends once."""
